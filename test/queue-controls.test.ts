/**
 * Per-queue controls honoured across two `runtime` host processes on one ZooKeeper, including a change
 * of leader: pause (nothing starts), a rate limit (starts per second) and a concurrency cap (runs at
 * once), counted from the tasks' own logs (each shell task appends its start and end time to one file).
 *
 * The rate limit is checked from below (the starts of N tasks span at least (N - 1 - bursts) / rate
 * seconds: a slow machine only makes it longer) and from above per second, with room for the start
 * delays of a loaded machine; the cap by the most runs overlapping in the log.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type MasterInfo, PATHS } from '../src/farm/protocol.js';
import { QueueAdmin } from '../src/farm/queue-admin.js';
import { Submitter } from '../src/farm/submitter.js';
import { connect } from '../src/zk/index.js';
import { type RuntimeProcess, spawnRuntime, until } from './helpers/chaos.js';
import { useCleanups } from './helpers/cleanups.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();

const RATE = 2;
const RATED = 20;
const CAP = 2;
const CAPPED = 14;

interface Run {
  label: string;
  start: number;
  end?: number;
}

/** The runs in the tasks' log: `<label> start <ms>` and `<label> end <ms>` lines. */
function readRuns(file: string): Run[] {
  if (!existsSync(file)) return [];
  const runs: Run[] = [];
  const open = new Map<string, Run[]>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [label, what, ms] = line.trim().split(' ');
    if (!label || !ms) continue;
    if (what === 'start') {
      const r: Run = { label, start: Number(ms) };
      runs.push(r);
      open.set(label, [...(open.get(label) ?? []), r]);
    } else if (what === 'end') {
      const r = open.get(label)?.find((x) => x.end === undefined);
      if (r) r.end = Number(ms);
    }
  }
  return runs;
}

/** The most runs that overlap at one instant. */
function maxOverlap(runs: Run[]): number {
  const edges = runs.flatMap((r) => [
    [r.start, 1],
    [r.end ?? Number.POSITIVE_INFINITY, -1],
  ]);
  edges.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let now = 0;
  let most = 0;
  for (const [, d] of edges) {
    now += d!;
    most = Math.max(most, now);
  }
  return most;
}

test('pause, rate limit and concurrency cap hold across two hosts and a change of leader', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-queue-controls-'));
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
  const xdg = join(tmp, 'xdg');
  mkdirSync(xdg);
  const log = join(tmp, 'runs.log');
  const root = await zk.chroot('queue-controls');
  const common = [
    '--zk',
    root,
    '--workdir',
    join(tmp, 'work'),
    '--allow-shell',
    '--capacity',
    '4',
    '--queues',
    'rated,capped',
  ];
  const start = async (args: string[]) => {
    const p = spawnRuntime([...common, '--session-timeout', '4000', '--log-level', 'warn', ...args], {
      xdgDir: xdg,
    });
    cleanups.push(() => p.stop('SIGKILL', 5000));
    await p.waitForOutput(/runtime: ready/, 90_000);
    return p;
  };
  const alpha: RuntimeProcess = await start(['--masters', '1', '--workers', '2', '--name-prefix', 'alpha']);
  const beta = await start([
    '--masters',
    '1',
    '--workers',
    '2',
    '--name-prefix',
    'beta',
    '--log-level',
    'debug',
  ]);

  const sup = connect({ connect: root, sessionTimeout: 10_000 });
  cleanups.push(() => sup.stop());
  const admin = (await sup.ready).client;
  const leader = () => admin.getJson<MasterInfo>(PATHS.master).then((r) => r.value);
  assert.match((await leader()).name, /^alpha-master-/);
  const queues = new QueueAdmin(admin);
  for (const q of ['rated', 'capped']) await queues.pause(q);
  await queues.update('rated', { rateLimit: RATE });
  await queues.update('capped', { concurrency: CAP });

  const sub = await Submitter.open({ connect: root });
  cleanups.push(() => sub.close());
  const shell = (label: string, sleep: string) => ({
    cmd: `echo "${label} start $(date +%s%3N)" >> ${log}; sleep ${sleep}; echo "${label} end $(date +%s%3N)" >> ${log}`,
  });
  const ids = await sub.submitMany([
    ...Array.from({ length: RATED }, (_, i) => ({ ...shell(`r${i}`, '0'), queue: 'rated' })),
    ...Array.from({ length: CAPPED }, (_, i) => ({ ...shell(`c${i}`, '0.5'), queue: 'capped' })),
  ]);

  // Paused: the leader has read them all and holds them, saying why; none has started.
  await until(
    async () => {
      const q = (await leader()).queue?.queues ?? [];
      const held = (name: string, n: number) =>
        q.find((x) => x.queue === name)?.blocked.some((b) => b.tasks === n && /paused/.test(b.reason));
      return held('rated', RATED) === true && held('capped', CAPPED) === true;
    },
    60_000,
    'the leader to hold both paused queues',
  );
  assert.deepEqual(readRuns(log), [], 'nothing of a paused queue starts');

  for (const q of ['rated', 'capped']) await queues.resume(q);
  await until(() => readRuns(log).filter((r) => r.end !== undefined).length >= 8, 120_000, 'eight runs done');
  // The leader's host stops (its workers drain); the other host's master takes over.
  await alpha.stop('SIGTERM', 60_000);
  await until(
    async () => /^beta-master-/.test((await leader().catch(() => ({ name: '' }))).name),
    60_000,
    'beta leads',
  );
  const statuses = await Promise.all(ids.map((id) => sub.waitFor(id, { timeoutMs: 60_000 }))).catch(
    async (e) => {
      console.log('DEBUG', JSON.stringify(await leader()), await admin.getChildren(PATHS.tasks));
      for (const w of await admin.getChildren(PATHS.assign))
        console.log('DEBUG', w, await admin.getChildren(`${PATHS.assign}/${w}`));
      console.log(
        'DEBUG',
        beta
          .stdout()
          .split('\n')
          .filter((l) => /master/.test(l) && !/task started/.test(l))
          .slice(-60)
          .join('\n'),
      );
      throw e;
    },
  );
  assert.ok(statuses.every((s) => s.state === 'succeeded'));

  const runs = readRuns(log);
  const rated = runs
    .filter((r) => r.label.startsWith('r'))
    .map((r) => r.start)
    .sort((a, b) => a - b);
  const capped = runs.filter((r) => r.label.startsWith('c'));
  assert.ok(rated.length >= RATED && capped.length >= CAPPED, 'every task ran');
  // Rate: the starts span at least (N - 1 - one burst per leader) / rate seconds.
  const span = rated[rated.length - 1]! - rated[0]!;
  assert.ok(
    span >= ((rated.length - 1 - 2) / RATE) * 1000,
    `${rated.length} starts at ${RATE}/s took ${span} ms`,
  );
  // And no second holds many more than the rate (a loaded machine may delay some starts into one).
  for (const t of rated) {
    const inSecond = rated.filter((s) => s >= t && s < t + 1000).length;
    assert.ok(inSecond <= RATE + 4, `${inSecond} starts within a second from ${t}`);
  }
  assert.ok(maxOverlap(capped) <= CAP, `at most ${CAP} capped runs at once, saw ${maxOverlap(capped)}`);
  assert.ok(maxOverlap(capped) === CAP, 'the cap is used (two runs at once)');
});
