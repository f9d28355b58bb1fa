/** PassLoop (recipes/pass-loop.ts): single flight, coalesced kicks, retry after failure, stop on abort. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PassLoop } from '../../src/recipes/pass-loop.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

test('kicks during a pass make exactly one more pass, and passes never overlap', async () => {
  const ac = new AbortController();
  let running = 0;
  let most = 0;
  let release!: () => void;
  let calls = 0;
  const loop = new PassLoop(
    async () => {
      calls++;
      running++;
      most = Math.max(most, running);
      if (calls === 1) await new Promise<void>((r) => (release = r));
      running--;
    },
    { what: 'test pass', signal: ac.signal, log: quiet },
  );
  loop.kick();
  for (let i = 0; i < 5; i++) loop.kick();
  release();
  for (let i = 0; i < 100 && loop.passes < 2; i++) await sleep(5);
  await sleep(20);
  assert.equal(calls, 2, 'five kicks during the first pass make one more pass');
  assert.equal(most, 1, 'never two passes at once');
  ac.abort();
});

test('a failed pass is logged and tried again; after abort nothing runs', async () => {
  const ac = new AbortController();
  const warned: string[] = [];
  let calls = 0;
  const loop = new PassLoop(
    async () => {
      calls++;
      if (calls < 3) throw new Error(`boom ${calls}`);
    },
    {
      what: 'test pass',
      signal: ac.signal,
      log: { ...quiet, warn: (_o: object, m?: string) => void warned.push(m ?? '') },
      backoff: { initialMs: 1, maxMs: 2 },
    },
  );
  loop.kick();
  for (let i = 0; i < 200 && loop.passes < 1; i++) await sleep(5);
  assert.equal(calls, 3);
  assert.match(warned[0]!, /test pass failed; trying again: boom 1/);
  ac.abort();
  loop.kick();
  loop.wakeAt(Date.now());
  await sleep(30);
  assert.equal(calls, 3, 'an aborted loop runs no pass');
});

test('wakeAt runs a pass at the earliest time asked for', async () => {
  const ac = new AbortController();
  const at: number[] = [];
  const loop = new PassLoop(async () => void at.push(Date.now()), {
    what: 't',
    signal: ac.signal,
    log: quiet,
  });
  const t0 = Date.now();
  loop.wakeAt(t0 + 5000);
  loop.wakeAt(t0 + 40);
  loop.wakeAt(t0 + 3000);
  for (let i = 0; i < 200 && at.length < 1; i++) await sleep(5);
  assert.equal(at.length, 1);
  assert.ok(at[0]! >= t0 + 40, 'not before its time');
  ac.abort();
});
