/**
 * Strict JSON for handler results: what a handler returns is stored in result.json and in the
 * task's status znode, so it must survive `JSON.stringify` without silently losing parts.
 *
 * Refused: BigInt and circular structures (JSON.stringify throws), functions and symbols anywhere
 * (JSON.stringify would drop them without a word). Accepted: `undefined` at the top level (stored as
 * `null`), and everything plain JSON keeps (objects, arrays, strings, finite numbers, booleans, null).
 * Values with a `toJSON` (Date, Buffer) are stored as their JSON form.
 */

/** Thrown by `toJson` when a value cannot be stored as JSON. */
export class NotSerializableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NotSerializableError';
  }
}

function strictReplacer(key: string, value: unknown): unknown {
  const type = typeof value;
  if (type === 'function' || type === 'symbol') {
    throw new NotSerializableError(`it holds a ${type}${key === '' ? '' : ` at key ${JSON.stringify(key)}`}`);
  }
  return value;
}

/** `value` as a JSON string (`undefined` → `"null"`), or a `NotSerializableError` saying why not. */
export function toJson(value: unknown): string {
  if (value === undefined || value === null) return 'null';
  const type = typeof value;
  try {
    // Primitives need no walk; only objects pay for the replacer that catches nested functions.
    const json =
      type === 'object' || type === 'function'
        ? JSON.stringify(value, strictReplacer)
        : JSON.stringify(value);
    if (json === undefined) throw new NotSerializableError(`it is a ${type}`);
    return json;
  } catch (err) {
    if (err instanceof NotSerializableError) throw err;
    // BigInt: "Do not know how to serialize a BigInt"; cycles: "Converting circular structure to JSON ..."
    const why = err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err);
    throw new NotSerializableError(why, { cause: err });
  }
}
