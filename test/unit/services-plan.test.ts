/** The reconciler's decisions (services/plan.ts), rule by rule, without ZooKeeper. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type InstanceRecord,
  parseServiceSpec,
  type RunRecord,
  type ServiceSpecInput,
} from '../../src/services/model.js';
import { type Action, plan, type ServiceView, type WorkerView } from '../../src/services/plan.js';

const worker = (name: string, host: string, extra: Partial<WorkerView> = {}): WorkerView => ({
  name,
  host,
  capacity: 4,
  shell: true,
  handlers: [],
  queues: ['default'],
  draining: false,
  ...extra,
});

function service(
  input: Partial<ServiceSpecInput>,
  instances: Record<number, Partial<InstanceRecord>> = {},
  running: Record<number, Partial<RunRecord>> = {},
  revision = 1,
): ServiceView {
  const spec = parseServiceSpec({ name: 'web', cmd: 'serve', instances: 3, ...input });
  const inst = new Map(
    Object.entries(instances).map(([n, r]) => [
      Number(n),
      { worker: 'w1', revision: 1, placedAt: 0, failedOn: [], state: 'placed' as const, ...r },
    ]),
  );
  const runs = new Map(
    Object.entries(running).map(([n, r]) => [
      Number(n),
      { worker: 'w1', host: 'h1', revision: 1, state: 'healthy' as const, restarts: 0, since: 0, ...r },
    ]),
  );
  return { name: spec.name, record: { spec, revision, updatedAt: 0 }, instances: inst, running: runs };
}

const run = (
  services: ServiceView[],
  workers: WorkerView[],
  now = 100_000,
  gone = new Map<string, number>(),
) => plan({ now, workers, services, goneSince: gone, mayStillRun: () => 2000 });
const places = (a: Action[]) => a.filter((x) => x.kind === 'place');

test('places every missing instance, spread over hosts first, never more than desired', () => {
  const a = run([service({})], [worker('w1', 'h1'), worker('w2', 'h1'), worker('w3', 'h2')]);
  const p = places(a);
  assert.deepEqual(
    p.map((x) => x.instance),
    [0, 1, 2],
  );
  const hosts = p.map((x) => (x.kind === 'place' && x.worker === 'w3' ? 'h2' : 'h1'));
  assert.ok(hosts.includes('h2'), 'one instance on the second host');
  assert.equal(run([service({}, { 0: {}, 1: {}, 2: {} })], [worker('w1', 'h1')]).length, 0, 'nothing to do');
});

test('maxPerHost, shell and queues restrict placement; capacity bounds it', () => {
  const w = [
    worker('w1', 'h1'),
    worker('w2', 'h2', { shell: false }),
    worker('w3', 'h3', { queues: ['gpu'] }),
  ];
  assert.deepEqual(
    places(run([service({ placement: { maxPerHost: 1 } })], w)).map((x) =>
      x.kind === 'place' ? x.worker : '',
    ),
    ['w1', 'w3'],
  );
  assert.deepEqual(
    places(run([service({ placement: { queues: ['gpu'] } })], w)).map((x) =>
      x.kind === 'place' ? x.worker : '',
    ),
    ['w3', 'w3', 'w3'],
  );
  assert.equal(places(run([service({})], [worker('w1', 'h1', { capacity: 2 })])).length, 2);
});

test('scale down removes the highest numbers', () => {
  const a = run([service({ instances: 1 }, { 0: {}, 1: {}, 2: {} })], [worker('w1', 'h1')]);
  assert.deepEqual(
    a.map((x) => `${x.kind}:${'instance' in x ? x.instance : ''}`),
    ['remove:1', 'remove:2'],
  );
});

test("a gone worker's instance moves only once it may no longer run", () => {
  const s = service({}, { 0: { worker: 'gone' }, 1: {}, 2: {} });
  const w = [worker('w1', 'h1')];
  assert.equal(places(run([s], w, 101_000, new Map([['gone', 100_000]]))).length, 0, 'too early');
  const later = places(run([s], w, 102_000, new Map([['gone', 100_000]])));
  assert.equal(later.length, 1);
  assert.equal(later[0]!.kind === 'place' && later[0]!.from, 'gone');
});

test('a crash loop moves the instance away, then fails it for good', () => {
  const w = [worker('w1', 'h1'), worker('w2', 'h2')];
  const first = run(
    [service({}, { 0: {}, 1: {}, 2: {} }, { 0: { state: 'failed', reason: 'crash loop' } })],
    w,
  );
  assert.equal(first.length, 1);
  assert.ok(first[0]!.kind === 'place' && first[0]!.worker === 'w2' && first[0]!.failedOn.join() === 'w1');
  const second = run(
    [
      service(
        {},
        { 0: { worker: 'w2', failedOn: ['w1'] }, 1: {}, 2: {} },
        { 0: { worker: 'w2', state: 'failed', reason: 'crash loop' } },
      ),
    ],
    w,
  );
  assert.equal(second.length, 1);
  assert.ok(second[0]!.kind === 'fail' && second[0]!.failedOn.join() === 'w1,w2');
});

test('a rolling update goes one instance at a time, waits for health, and stops on a failure', () => {
  const w = [worker('w1', 'h1')];
  const healthy = { 0: {}, 1: {}, 2: {} };
  const start = run([service({}, { 0: {}, 1: {}, 2: {} }, healthy, 2)], w);
  assert.deepEqual(
    places(start).map((x) => x.kind === 'place' && [x.instance, x.revision]),
    [[0, 2]],
  );
  const waiting = service(
    {},
    { 0: { revision: 2, placedAt: 99_000 }, 1: {}, 2: {} },
    { ...healthy, 0: { revision: 2, state: 'running' } },
    2,
  );
  assert.equal(places(run([waiting], w)).length, 0, 'waits for instance 0 to be healthy');
  const next = service({}, { 0: { revision: 2 }, 1: {}, 2: {} }, { ...healthy, 0: { revision: 2 } }, 2);
  assert.deepEqual(
    places(run([next], w)).map((x) => x.kind === 'place' && x.instance),
    [1],
  );
  const bad = service(
    {},
    { 0: { revision: 2, placedAt: 99_000 }, 1: {}, 2: {} },
    { ...healthy, 0: { revision: 2, state: 'failed', reason: 'crash loop' } },
    2,
  );
  const a = run([bad], w);
  assert.equal(places(a).length, 0, 'no further instance is updated');
  const status = a.find((x) => x.kind === 'status');
  assert.ok(status?.kind === 'status' && status.status.rollout?.state === 'failed', JSON.stringify(a));
});

const statusOf = (a: Action[]) => a.find((x) => x.kind === 'status');
const unplacedOf = (a: Action[]) => {
  const s = statusOf(a);
  return s?.kind === 'status' ? (s.status.unplaced ?? []) : undefined;
};

test('an instance that cannot be placed says why: no worker, no match, no room, one per host', () => {
  const one = (input: Partial<ServiceSpecInput>, workers: WorkerView[]) =>
    unplacedOf(run([service({ instances: 1, ...input })], workers))?.[0];
  assert.equal(one({}, [])?.code, 'no-workers');
  assert.equal(one({}, [worker('w1', 'h1', { draining: true })])?.code, 'no-workers');
  const noShell = one({}, [worker('w1', 'h1', { shell: false })]);
  assert.equal(noShell?.code, 'no-match');
  assert.match(noShell!.reason, /--allow-shell/);
  const healthCmd = one({ cmd: undefined, handler: 'serve', health: { type: 'cmd', cmd: 'true' } }, [
    worker('w1', 'h1', { shell: false, handlers: ['serve'] }),
  ]);
  assert.equal(healthCmd?.code, 'no-match', 'a cmd health check is a shell command too');
  assert.match(healthCmd!.reason, /health check needs/);
  assert.equal(
    one({ cmd: undefined, handler: 'serve' }, [worker('w1', 'h1', { shell: false })])?.code,
    'no-match',
  );
  const queue = one({ placement: { queues: ['gpu'] } }, [worker('w1', 'h1')]);
  assert.equal(queue?.code, 'no-match');
  assert.match(queue!.reason, /placement\.queues \(gpu\)/);
  assert.equal(one({ placement: { hosts: ['h9'] } }, [worker('w1', 'h1')])?.code, 'no-match');
  assert.equal(
    unplacedOf(run([service({}, { 0: {} })], [worker('w1', 'h1', { capacity: 1 })]))
      ?.map((u) => [u.instance, u.code])
      .join(),
    '1,no-room,2,no-room',
  );
  const perHost = unplacedOf(
    run([service({ placement: { maxPerHost: 1 } })], [worker('w1', 'h1'), worker('w2', 'h1')]),
  );
  assert.deepEqual(
    perHost?.map((u) => [u.instance, u.code]),
    [
      [1, 'max-per-host'],
      [2, 'max-per-host'],
    ],
  );
  assert.match(perHost![0]!.reason, /maxPerHost \(1\)/);
});

test('the status is planned only when what it says changes, and the reason goes once the instance has a place', () => {
  const w = [worker('w1', 'h1', { capacity: 2 })];
  const first = run([service({})], w);
  const said = statusOf(first);
  assert.ok(said?.kind === 'status');
  assert.equal(said.status.unplaced?.length, 1);
  const again = service({}, { 0: {}, 1: {} });
  const stored = { ...again, status: said.status };
  assert.equal(statusOf(run([stored], w, 200_000)), undefined, 'the same reason is not written again');
  const room = run([stored], [worker('w1', 'h1', { capacity: 3 })]);
  assert.equal(places(room).length, 1);
  const cleared = statusOf(room);
  assert.ok(cleared?.kind === 'status' && cleared.status.unplaced === undefined, 'the reason is cleared');
  assert.equal(statusOf(run([service({}, { 0: {}, 1: {}, 2: {} })], w)), undefined, 'nothing to say');
});

test('a worker that handed its instances over has them moved at once, not after the fence bound', () => {
  const s = service({}, { 0: { worker: 'gone' }, 1: {}, 2: {} });
  const w = [worker('w1', 'h1')];
  const gone = new Map([['gone', 100_000]]);
  const at = (handedOver: Set<string>) =>
    plan({ now: 100_000, workers: w, services: [s], goneSince: gone, mayStillRun: () => 60_000, handedOver });
  assert.equal(places(at(new Set())).length, 0, 'a gone worker that did not hand over: wait');
  const moved = places(at(new Set(['gone'])));
  assert.equal(moved.length, 1);
  assert.ok(moved[0]!.kind === 'place' && moved[0]!.from === 'gone' && /handed it over/.test(moved[0]!.why));
});
