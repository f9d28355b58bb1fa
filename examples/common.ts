/**
 * What the one-role-per-process examples share: argument errors, a logger, and stopping on Ctrl-C.
 */
import type pino from 'pino';
import { createLogger } from '../src/host/logging.js';

export const DEFAULT_ZK = '127.0.0.1:2181';

/** Run a `parseArgs` call; on a mistake print it with the usage and exit 2. */
export function parseOrExit<T>(usage: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\nusage: ${usage}\n`);
    process.exit(2);
  }
}

export function die(message: string, code = 2): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

export function logger(): pino.Logger {
  return createLogger({ level: process.env['LOG_LEVEL'] ?? 'info' });
}

/** First Ctrl-C (or SIGTERM): run `stop`, then exit 0. A second one exits at once. */
export function stopOnSignal(stop: () => Promise<void>): void {
  let signals = 0;
  const onSignal = () => {
    if (++signals > 1) process.exit(130);
    stop().then(
      () => process.exit(0),
      (err) => die(`stop failed: ${(err as Error).message}`, 1),
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
