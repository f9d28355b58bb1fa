/**
 * One log writer for the whole host.
 *
 * Role threads do not write fd 1 themselves (pino in a thread buffers asynchronously, loses lines when the
 * thread is terminated, and interleaves with other threads): each posts its lines to the host, which
 * writes them through this logger's stream. Pretty in a terminal, JSON lines otherwise.
 */
import pino from 'pino';
import pinoPretty from 'pino-pretty';

export interface LoggerOptions {
  /** @defaultValue 'info' */
  level?: string;
  /** @defaultValue whether stdout is a terminal */
  pretty?: boolean;
  /** Where lines go. @defaultValue stdout */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions = {}): pino.Logger {
  const level = options.level ?? 'info';
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  if (pretty) {
    const stream = pinoPretty({
      colorize: true,
      sync: true,
      destination: options.destination ?? 1,
      ignore: 'pid,hostname',
      messageFormat: '{if role}[{role}] {end}{msg}',
      translateTime: 'HH:MM:ss.l',
    });
    return pino({ level, base: undefined }, stream);
  }
  const dest = options.destination ?? pino.destination({ fd: 1, sync: false });
  return pino({ level, base: undefined }, dest as pino.DestinationStream);
}

/** Write a line a role thread produced (already JSON, already filtered by level) through `logger`'s stream. */
export function writeThreadLine(logger: pino.Logger, line: string): void {
  const stream = (logger as unknown as Record<symbol, { write(s: string): void }>)[pino.symbols.streamSym];
  stream?.write(line.endsWith('\n') ? line : `${line}\n`);
}

/** Flush buffered lines (before exit). */
export function flushLogger(logger: pino.Logger): void {
  try {
    logger.flush();
  } catch {
    // a sync pretty stream has nothing to flush
  }
}
