import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { QueueAdmin } from '../src/farm/queue-admin.js';
import { useCleanups } from './helpers/cleanups.js';
import { useFarm } from './helpers/farm.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const farm = useFarm(cleanups, { workdir: mkdtempSync(join(tmpdir(), 'x-')) });
const logger = (n: string) => ({
  debug() {},
  info: (o: object, m?: string) => console.log(n, 'INFO', m, JSON.stringify(o)),
  warn: (o: object, m?: string) => console.log(n, 'WARN', m),
  error: (o: object, m?: string) => console.log(n, 'ERR', m),
});

test('takeover', async () => {
  const root = await zk.chroot('rate');
  const admin = await farm.admin(root);
  const qa = new QueueAdmin(admin);
  await qa.update('c', { concurrency: 2 });
  const m1 = await farm.master(root, 'm1', { logger: logger('m1') });
  await farm.master(root, 'm2', { logger: logger('m2') });
  await farm.worker(root, 'w1', {
    queues: ['c'],
    handlers: {
      cap: async () => {
        await new Promise((r) => setTimeout(r, 300));
      },
    },
  });
  const sub = await farm.submitter(root);
  const ids = await sub.submitMany(Array.from({ length: 8 }, () => ({ handler: 'cap', queue: 'c' })));
  await sub.waitFor(ids[0]!);
  await m1.stop();
  console.log('m1 stopped');
  await Promise.all(ids.map((id) => sub.waitFor(id, { timeoutMs: 20000 })));
  assert.ok(true);
});
