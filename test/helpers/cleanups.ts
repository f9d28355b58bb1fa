import { after } from 'node:test';

export type Cleanup = () => Promise<unknown> | unknown;

/**
 * Clean-ups for a test file, run after its tests, newest first. One that fails is reported and the
 * others still run, so a broken test cannot leave servers or processes behind.
 */
export function useCleanups(): Cleanup[] {
  const cleanups: Cleanup[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (err) {
        console.error('clean-up failed:', err);
      }
    }
  });
  return cleanups;
}
