/**
 * What every command shares: option parsers that say what they expected, exit codes, how an error
 * becomes one line on stderr, and connecting a short-lived client to the farm's ZooKeeper.
 *
 * Exit codes: 0 ok, 1 a runtime failure (a task failed with --wait, ZooKeeper unreachable, ...),
 * 2 a usage or configuration error (nothing was started).
 */
import { InvalidArgumentError, Option } from 'commander';
import { describeError, ErrorCodes, hasCode, ZkfarmError } from '../errors.js';
import { defaultOf, type Field, like } from '../farm/option-schema.js';
import { parseFlagValue } from '../farm/option-text.js';
import { roleFields } from '../farm/options.js';
import { type ConnectSource, describeSource } from '../host/discovery.js';
import { type Supervisor, connect as zkConnect } from '../zk/supervisor.js';
import type { ZkTlsOptions } from '../zk/transport.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Codes that mean "the command or its input is wrong": exit 2. */
const USAGE_CODES: readonly string[] = [
  ErrorCodes.CONFIG_INVALID,
  ErrorCodes.INVALID_ARGUMENT,
  ErrorCodes.INVALID_NAME,
  ErrorCodes.INVALID_TASK,
  ErrorCodes.INVALID_SERVICE,
  ErrorCodes.INVALID_SCHEDULE,
];

export function exitCodeFor(err: unknown): number {
  return USAGE_CODES.some((c) => hasCode(err, c)) ? EXIT_USAGE : EXIT_FAILURE;
}

/** Where a command writes: stdout for results, stderr for messages. Replaceable in tests. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
}

export const processIo: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** One line for an error: its message without the stack, on a single line. */
export function errorLine(err: unknown): string {
  // zkfarm's own messages say what to do; their code (kept across thread boundaries) adds nothing.
  const ours = err instanceof Error && /^ZKFARM_/.test(String((err as { code?: unknown }).code));
  const text = ours ? (err as Error).message : describeError(err);
  return text.split('\n')[0]!.trim();
}

/** A field that is a command-line flag: `flag` is commander's `--name <value>`. */
export type FlagField = Field<unknown> & { flag: string };

/**
 * A commander option made from a field: its help from the field's description, its value checked by the
 * field (a mistake says what was expected and what was given). The field's default is applied only when
 * `applyDefault` (a flag that overrides the config file must stay undefined when not given); otherwise
 * the help just says what it is.
 */
export function flagOption(
  spec: FlagField,
  options: { applyDefault?: boolean; description?: string } = {},
): Option {
  const takesValue = /[<[]/.test(spec.flag);
  const isBoolean = !takesValue;
  const shownDefault = defaultOf(spec).replace(/`/g, '');
  const description =
    (options.description ?? spec.description).replace(/`/g, '') +
    (takesValue && !options.applyDefault && shownDefault !== 'none' ? ` (default: ${shownDefault})` : '');
  const opt = new Option(spec.flag, description);
  if (takesValue) {
    opt.argParser((text: string) => {
      const r = parseFlagValue(spec, text);
      if ('problem' in r) throw new InvalidArgumentError(r.problem);
      return r.value;
    });
  }
  if (options.applyDefault && spec.default !== undefined && !isBoolean) opt.default(spec.default);
  return opt;
}

/** Connect timeout for client commands (ms). */
export const DEFAULT_CONNECT_TIMEOUT = 10_000;

/** The flags client commands (submit, status, dashboard) share. */
export const clientFlags = {
  zk: like(roleFields.connect, {
    flag: '--zk <connect>',
    defaultText: '$ZKFARM_ZK, a running runtime, 127.0.0.1:2181',
    description: 'ZooKeeper connect string',
  }),
  auth: like(roleFields.auth, {
    flag: '--auth <user:password>',
    description: 'digest credentials of an access-controlled farm',
  }),
  connectTimeout: like(roleFields.connectTimeout, {
    flag: '--connect-timeout <ms>',
    default: DEFAULT_CONNECT_TIMEOUT,
    description: 'give up connecting after this long',
  }),
} satisfies Record<string, FlagField>;

/** Open a session for a client command; fail with a message that says where the connect string came from. */
export async function openSession(
  connect: string,
  source: ConnectSource | 'config',
  options: { auth?: string; tls?: ZkTlsOptions; connectTimeout?: number } = {},
): Promise<Supervisor> {
  const connectTimeout = options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT;
  const sup = zkConnect({
    connect,
    connectTimeout,
    auth: options.auth,
    tls: options.tls,
    sessionTimeout: 10_000,
  });
  try {
    await Promise.race([
      sup.ready,
      sup.done.then(() => Promise.reject(unreachable(connect, source, connectTimeout))),
    ]);
    return sup;
  } catch (err) {
    await sup.stop();
    if (hasCode(err, ErrorCodes.ZK_UNREACHABLE)) throw unreachable(connect, source, connectTimeout);
    throw err;
  }
}

export function unreachable(connect: string, source: ConnectSource | 'config', ms: number): ZkfarmError {
  const hint =
    source === 'default'
      ? 'start a farm with `npx runtime` (it embeds a ZooKeeper), or pass --zk host:port'
      : 'check that the server runs and the connect string is right, or pass --zk host:port';
  return new ZkfarmError(
    ErrorCodes.ZK_UNREACHABLE,
    `cannot reach ZooKeeper at ${connect} (${source === 'config' ? 'from the config file' : describeSource(source)}) ` +
      `within ${ms} ms: ${hint}`,
  );
}

/**
 * Close a client command's session without waiting long for the server's answer: the close request is
 * sent at once, and a command's session holds no ephemeral nodes, so nothing depends on the answer.
 */
export async function closeQuickly(close: () => Promise<void>, waitMs = 300): Promise<void> {
  await Promise.race([close().catch(() => {}), new Promise((r) => setTimeout(r, waitMs).unref())]);
}

/** Rows as columns padded to their widest cell (the first row is the header). */
export function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}
