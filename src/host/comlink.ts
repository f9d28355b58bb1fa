/**
 * Comlink on worker_threads, set up once for the host and its role threads.
 *
 * Comlink sends a thrown Error as name/message/stack only; zkfarm errors carry a stable `code` that
 * users match on, so the 'throw' transfer handler is replaced by one that keeps `code` (and `retryable`).
 * The receiving side's default deserializer copies every field it gets onto a new Error.
 */
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';

const original = Comlink.transferHandlers.get('throw')!;
Comlink.transferHandlers.set('throw', {
  canHandle: original.canHandle,
  serialize(thrown: unknown): [unknown, Transferable[]] {
    const value = (thrown as { value: unknown }).value;
    if (value instanceof Error) {
      const extra = value as Error & { code?: unknown; retryable?: unknown };
      return [
        {
          isError: true,
          value: {
            message: value.message,
            name: value.name,
            stack: value.stack,
            ...(typeof extra.code === 'string' ? { code: extra.code } : {}),
            ...(typeof extra.retryable === 'boolean' ? { retryable: extra.retryable } : {}),
          },
        },
        [],
      ];
    }
    return original.serialize(thrown) as [unknown, Transferable[]];
  },
  deserialize: original.deserialize,
});

export { Comlink, nodeEndpoint };
