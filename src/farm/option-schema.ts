/**
 * Options defined once. A field is a zod schema (its type and range) with what a reader needs: a
 * description, its default, and, where the schema cannot say it, what is expected in words. Tables of
 * fields (options.ts for the roles, host/options.ts for the host, its config file and its flags) feed:
 *
 * - the checks: `checkOptions(fields, value, how)` fills the defaults and refuses a bad value with one
 *   line that names the option, what was expected and what was received, e.g.
 *   `capacity: expected a whole number >= 1, got 0` (the caller chooses the error code and a prefix);
 * - the config file's parser (strict mappings: unknown keys are refused, with a "did you mean");
 * - the command line's parsers (`parseFlagValue`, option-text.ts);
 * - the options tables of docs/configuration.md (`renderTable`, option-text.ts, used by
 *   scripts/options-docs.ts).
 *
 * A field's schema is built the first time it is read (lazy-zod.ts): a table of fields costs a thread
 * nothing until something is checked against it, and a role thread whose options the host checked never
 * builds one (options.ts, `trustHostCheckedOptions`). A field made from another is made with `like`, not
 * spread (a spread reads the schema). The common rules (whole numbers, connect strings, credentials) are
 * also plain predicates (`plain`), so options and flags made only of such values never load zod.
 */
import type { z } from 'zod';
import { ZkfarmError } from '../errors.js';
import { type Zod, zod } from '../lazy-zod.js';

export interface Field<T = unknown> {
  /** Type and range. Fields are optional in a mapping unless `required`. */
  readonly schema: z.ZodType<T>;
  /** One line: what it does. */
  readonly description: string;
  /** The value used when the field is absent. */
  readonly default?: T;
  /** The default in words, when there is no fixed value ("the session timeout", "none"). */
  readonly defaultText?: string;
  /** What is expected, in words, when the schema cannot say it (a connect string, a name). */
  readonly expected?: string;
  /** Numbers of milliseconds or of bytes: said so in messages and docs. */
  readonly unit?: 'ms' | 'bytes';
  readonly required?: boolean;
  /** Never repeat the value in a message (credentials). */
  readonly secret?: boolean;
  /** A mapping of its own fields (see `group`). */
  readonly fields?: Fields;
  /** A list of mappings of these fields (see `list`). */
  readonly items?: Fields;
  /**
   * The schema's rule as a plain predicate, from its builder (`plain`): a value it accepts is checked
   * without zod. Never wider than the schema; a value it refuses goes through the schema, for the message.
   */
  readonly accepts?: (value: unknown) => boolean;
}

export type Fields = Readonly<Record<string, Field<never> | Field<unknown>>>;

type ValueOf<F> = F extends Field<infer T> ? T : never;
/** The options a table of fields takes: every field optional. */
export type OptionsOf<F extends Fields> = { [K in keyof F]?: ValueOf<F[K]> };
/** The same after `checkOptions`: fields with a default are always there. */
export type ResolvedOf<F extends Fields> = {
  [K in keyof F as F[K] extends { default: unknown } ? K : never]-?: ValueOf<F[K]>;
} & { [K in keyof F as F[K] extends { default: unknown } ? never : K]?: ValueOf<F[K]> };

/** What makes a field's schema, given zod (called once, on the schema's first use). */
export type SchemaBuilder<T> = ((z: Zod) => z.ZodType<T>) & {
  readonly accepts?: (value: unknown) => boolean;
};

/**
 * A schema builder whose rule is also the predicate `accepts` (the same rule, for a value zod would take
 * unchanged): options made only of such values are checked without loading zod (`checkOptions`), which
 * is ~45 ms of every short-lived command's start. test/unit/option-schema.test.ts holds the two to agree.
 */
export function plain<T>(
  accepts: (value: unknown) => boolean,
  build: (z: Zod) => z.ZodType<T>,
): SchemaBuilder<T> {
  return Object.assign((z: Zod) => build(z), { accepts });
}

export function field<T, const M extends Omit<Field<T>, 'schema'>>(
  build: SchemaBuilder<T>,
  meta: M,
): Field<T> & M {
  return withSchema(() => build(zod()), build.accepts ? { ...meta, accepts: build.accepts } : meta);
}

/**
 * A field made from `base` with `meta` over it (a flag, a description or default of its own), its schema
 * still built on first read. Spreading a field (`{ ...base, flag }`) reads its schema, and so loads zod,
 * when the module that spreads it loads: every command would pay for zod (~45 ms) at start.
 */
export function like<B extends Field<never> | Field<unknown>, const M extends object>(
  base: B,
  meta: M,
): Omit<B, keyof M> & M {
  const rest: Record<string, unknown> = {};
  for (const [key, d] of Object.entries(Object.getOwnPropertyDescriptors(base))) {
    if (key !== 'schema') rest[key] = d.value;
  }
  return withSchema(() => base.schema, { ...rest, ...meta }) as unknown as Omit<B, keyof M> & M;
}

/**
 * `meta` with a `schema` built on its first read and kept. The getter is enumerable, so a spread copy
 * carries the schema, built then (`like` makes a copy that does not build it).
 */
function withSchema<T, M extends object>(build: () => z.ZodType<T>, meta: M): Field<T> & M {
  let schema: z.ZodType<T> | undefined;
  const get = () => {
    schema ??= build();
    return schema;
  };
  return Object.defineProperty({ ...meta }, 'schema', { get, enumerable: true }) as Field<T> & M;
}

/** A whole number in a range (`unit: 'ms'` for durations). */
export const wholeNumber = (min: number, max = Number.MAX_SAFE_INTEGER): SchemaBuilder<number> =>
  plain(
    (v) => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max,
    (z) => z.int().min(min).max(max),
  );

/** The largest value ZooKeeper's int32 fields (timeouts) can carry. */
export const INT32_MAX = 2_147_483_647;

/** The zod schema of a mapping of `fields`: unknown keys refused unless `strict` is false. */
export function mappingOf(fields: Fields, strict = true): z.ZodObject {
  const shape: Record<string, z.ZodType> = {};
  for (const [key, f] of Object.entries(fields)) shape[key] = f.required ? f.schema : f.schema.optional();
  return strict ? zod().strictObject(shape) : zod().object(shape);
}

/** A field that is a mapping of its own fields (config file: `retention: {maxCount, ...}`). */
export function group<F extends Fields>(
  fields: F,
  meta: Omit<Field<OptionsOf<F>>, 'schema' | 'fields'>,
): Field<OptionsOf<F>> & { fields: F } {
  return withSchema(() => mappingOf(fields) as unknown as z.ZodType<OptionsOf<F>>, { fields, ...meta });
}

/** A field that is a list of mappings (config file: `roles: [{type: worker, count: 4}, ...]`). */
export function list<F extends Fields>(
  items: F,
  meta: Omit<Field<OptionsOf<F>[]>, 'schema' | 'items'>,
): Field<OptionsOf<F>[]> & { items: F } {
  return withSchema(() => zod().array(mappingOf(items)) as unknown as z.ZodType<OptionsOf<F>[]>, {
    items,
    ...meta,
  });
}

// ---------------------------------------------------------------------------------------------------
// Words
// ---------------------------------------------------------------------------------------------------

/** A short, readable form of a value someone gave. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `a list (${value.length} item${value.length === 1 ? '' : 's'})`;
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'function') return 'a function';
  return typeof value;
}

/** What a message says instead of a secret value someone gave. */
export const SECRET = 'a value that is not shown';

/** `a or b`, `a, b or c` */
function either(words: string[]): string {
  return words.length <= 1 ? (words[0] ?? '') : `${words.slice(0, -1).join(', ')} or ${words.at(-1)}`;
}

type Json = {
  type?: string;
  minimum?: number;
  maximum?: number;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Json[];
  items?: Json;
};

function jsonWords(j: Json, unit: string): string | undefined {
  if (j.anyOf) {
    const parts = j.anyOf.map((x) => jsonWords(x, unit));
    return parts.every(Boolean) ? parts.join(', or ') : undefined;
  }
  if (j.const !== undefined) return JSON.stringify(j.const);
  if (j.enum) return either(j.enum.map((v) => JSON.stringify(v)));
  if (j.type === 'boolean') return 'true or false';
  if (j.type === 'integer' || j.type === 'number') {
    const what = j.type === 'integer' ? `a whole number${unit}` : `a number${unit}`;
    const hasMax = j.maximum !== undefined && j.maximum < Number.MAX_SAFE_INTEGER;
    if (j.minimum !== undefined && hasMax) return `${what} from ${j.minimum} to ${j.maximum}`;
    if (j.minimum !== undefined) return `${what} >= ${j.minimum}`;
    if (hasMax) return `${what} <= ${j.maximum}`;
    return what;
  }
  return undefined;
}

/** What a field expects, in words: its own `expected`, or read from its schema. */
export function expectedOf(f: Field<unknown>): string {
  if (f.expected) return f.expected;
  if (f.fields) return `a mapping with ${either(Object.keys(f.fields))}`.replace(/ or (\w+)$/, ' and/or $1');
  const unit = f.unit === 'ms' ? ' of milliseconds' : f.unit === 'bytes' ? ' of bytes' : '';
  const words = jsonWords(zod().toJSONSchema(f.schema, { unrepresentable: 'any' }) as Json, unit);
  if (!words) throw new Error(`option field "${f.description}" needs its expected value in words`);
  return words;
}

/** A field's default, in words, for docs and help. */
export function defaultOf(f: Field<unknown>): string {
  if (f.defaultText !== undefined) return f.defaultText;
  if (f.default === undefined) return f.required ? 'required' : 'none';
  return typeof f.default === 'string' ? `\`${f.default}\`` : `\`${JSON.stringify(f.default)}\``;
}

// ---------------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------------

/** `roles[1].type` from `['roles', 1, 'type']`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

/** The field at `path` in `fields` (through groups and lists), and the mapping it belongs to. */
export function fieldAt(fields: Fields, path: readonly PropertyKey[]): Field<unknown> | undefined {
  let table: Fields | undefined = fields;
  let found: Field<unknown> | undefined;
  for (const p of path) {
    if (typeof p === 'number') {
      if (!found?.items) return found;
      table = found.items;
      continue;
    }
    found = table?.[String(p)] as Field<unknown> | undefined;
    if (!found) return undefined;
    table = found.fields;
  }
  return found;
}

/** The keys a mapping at `path` takes (for unknown-key hints). */
export function keysAt(fields: Fields, path: readonly PropertyKey[]): string[] {
  if (path.length === 0) return Object.keys(fields);
  const f = fieldAt(fields, path);
  const table = typeof path.at(-1) === 'number' ? f?.items : f?.fields;
  return table ? Object.keys(table) : [];
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
    }
  }
  return d[a.length]![b.length]!;
}

/** The key of `keys` closest to `key`, if it is a likely typo. */
export function closestKey(key: string, keys: readonly string[]): string | undefined {
  return keys.filter((k) => distance(key, k) <= 2).sort((a, b) => distance(key, a) - distance(key, b))[0];
}

export interface CheckHow {
  /** The error code of a refusal (ZKFARM_INVALID_ARGUMENT from code, ZKFARM_CONFIG_INVALID from a file). */
  code: string;
  /** Put before the option's path: `farm.yaml: `. */
  prefix?: string;
  /** How an option is named in messages (a flag: `--capacity`); the path by default. */
  name?: (path: readonly PropertyKey[]) => string;
  /** An unknown key's hint, when the caller knows better than a "did you mean". */
  unknownKey?: (key: string, path: readonly PropertyKey[]) => string | undefined;
}

/**
 * A problem inside one branch of a union (`false` or a mapping) told as that branch's own problem, when
 * the branch got further than the others: `outputRetention.maxCount: ...`, not `outputRetention: ...`.
 */
function deepest(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  let out = issue;
  while (out.code === 'invalid_union') {
    const inner = out.errors
      .map((branch) => branch[0])
      .find((i) => i !== undefined && (i.path.length > 0 || i.code === 'unrecognized_keys'));
    if (!inner) break;
    out = { ...inner, path: [...out.path, ...inner.path] } as z.core.$ZodIssue;
  }
  return out;
}

/** One line for the first problem zod found (and how many more there are). */
export function problemLine(fields: Fields, error: z.ZodError, raw: unknown, how: CheckHow): string {
  const issues = error.issues;
  const issue = deepest(issues[0]!);
  const more =
    issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
  const name = how.name ?? ((p: readonly PropertyKey[]) => formatPath(p) || '(top level)');
  const prefix = how.prefix ?? '';
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const known = keysAt(fields, issue.path);
    const close = closestKey(key, known);
    const hint =
      how.unknownKey?.(key, issue.path) ??
      (close ? `did you mean "${close}"?` : `expected one of ${known.join(', ')}`);
    return `${prefix}${name([...issue.path, key])}: unknown key "${key}" (${hint})${more}`;
  }
  const f = fieldAt(fields, issue.path);
  const expected = f ? expectedOf(f) : issue.message;
  const value = valueAt(raw, issue.path);
  if (value === undefined) return `${prefix}${name(issue.path)}: missing: expected ${expected}${more}`;
  const got = f?.secret ? SECRET : describeValue(value);
  return `${prefix}${name(issue.path)}: expected ${expected}, got ${got}${more}`;
}

/**
 * Check `value` against `fields` (keys that are not fields are left alone: a role's options also carry a
 * logger, handlers, a pool) and return the fields' values with every default filled in. A bad value is a
 * ZkfarmError with `how.code` and one line (see problemLine).
 */
export function checkOptions<F extends Fields>(fields: F, value: unknown, how: CheckHow): ResolvedOf<F> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ZkfarmError(
      how.code,
      `${how.prefix ?? ''}expected a mapping of options, got ${describeValue(value)}`,
    );
  }
  const own: Record<string, unknown> = {};
  let plainOnly = true;
  for (const [key, f] of Object.entries(fields)) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) own[key] = v;
    if (v === undefined ? f.required === true : f.accepts?.(v) !== true) plainOnly = false;
  }
  if (plainOnly) return withDefaults(fields, own);
  const parsed = mappingOf(fields).safeParse(own);
  if (!parsed.success) throw new ZkfarmError(how.code, problemLine(fields, parsed.error, own, how));
  return withDefaults(fields, parsed.data);
}

/**
 * The fields' values of `value` with every default filled in, checking nothing: for options already
 * checked against the same fields (a role thread's, checked by its host). Keys that are not fields are
 * left out, as checkOptions leaves them.
 */
export function withDefaults<F extends Fields>(fields: F, value: object): ResolvedOf<F> {
  const out: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(fields)) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = v;
    else if (f.default !== undefined) out[key] = f.default;
  }
  return out as ResolvedOf<F>;
}
