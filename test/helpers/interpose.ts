/**
 * Stage a race around one multi: `before` runs just before the next transaction `client` commits is
 * sent, `after` once its answer is in and before the caller sees it. Another client's writes there land
 * between the caller's read and its multi, or between the multi and the caller handling its outcome.
 */
import type { ZkClient } from '../../src/zk/index.js';

export interface Interposed {
  /** The hooks have run (the race was staged). */
  readonly fired: boolean;
}

export function aroundNextCommit(
  client: ZkClient,
  hooks: { before?: () => Promise<unknown>; after?: () => Promise<unknown> },
): Interposed {
  const transaction = client.transaction.bind(client);
  const state = { fired: false };
  client.transaction = () => {
    const tx = transaction();
    if (state.fired) return tx;
    state.fired = true;
    const commit = tx.commit.bind(tx);
    tx.commit = async () => {
      await hooks.before?.();
      try {
        return await commit();
      } finally {
        await hooks.after?.();
      }
    };
    return tx;
  };
  return state;
}
