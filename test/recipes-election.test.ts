/**
 * Election against a real ZooKeeper: one leader, the line in order of joining, each candidate watching
 * only its predecessor, the leader's session expiring, a term whose work fails (stopped cleanly, then
 * handed over), the announcement going with the candidate, a candidate node of an earlier session.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Election, type Term } from '../src/recipes/election.js';
import { CreateMode, connect, type Session, type Supervisor } from '../src/zk/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { expireSession } from './helpers/faults.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();

async function candidate(
  root: string,
  name: string,
  work: (term: Term, session: Session) => Promise<void> = async () => {},
  options: { pastSessions?: Set<string> } = {},
) {
  const sup: Supervisor = connect({ connect: root, sessionTimeout: 4000 });
  cleanups.push(() => sup.stop());
  const session = await sup.ready;
  await session.client.ensurePath('/election');
  const terms: Term[] = [];
  const election = new Election(
    session,
    {
      path: '/election',
      name,
      leaderPath: '/leader',
      leaderData: () => Buffer.from(name),
      pastSessions: options.pastSessions,
      backoff: { initialMs: 50, maxMs: 200 },
    },
    async (term) => {
      terms.push(term);
      await work(term, session);
    },
  );
  cleanups.push(() => election.stop());
  election.start();
  return { sup, session, election, terms };
}

test('one leader; the line is the order of joining; each waits on its predecessor only', async () => {
  const root = await zk.chroot('election-line');
  const a = await candidate(root, 'a');
  await until(() => a.election.leading, 10_000, 'a to lead');
  const b = await candidate(root, 'b');
  const c = await candidate(root, 'c');
  await until(() => b.election.leaderName === 'a' && c.election.leaderName === 'a', 10_000, 'all to see a');
  assert.deepEqual(
    [a, b, c].map((x) => x.election.leading),
    [true, false, false],
  );
  const admin = await zk.rawClient(root);
  assert.equal(String((await admin.getData('/leader')).data), 'a');

  // a leaves: b (next in line) leads; c, whose predecessor is b, does not even look.
  const cRequests = c.session.client.requests;
  await a.election.stop();
  await until(() => b.election.leading, 10_000, 'b to lead');
  assert.equal(String((await admin.getData('/leader')).data), 'b');
  assert.equal(c.election.leading, false);
  assert.equal(c.session.client.requests, cRequests, 'c sent nothing: no herd');
  assert.equal(a.terms[0]!.signal.aborted, true);
  // a joins again: at the end of the line, behind c.
  const again = await candidate(root, 'a');
  // start() joins in the background; `joined` resolves once its candidate node is in line.
  await again.election.joined;
  assert.ok(again.election.node?.startsWith('a-'), `a's node once joined: ${again.election.node}`);
  const line = (await admin.getChildren('/election')).sort(
    (x, y) => Number(x.slice(-10)) - Number(y.slice(-10)),
  );
  assert.deepEqual(
    line.map((n) => n.slice(0, -11)),
    ['b', 'c', 'a'],
  );
  assert.equal(again.election.leading, false);
});

test("the leader's session expires: its term ends at once and the next in line leads", async () => {
  const root = await zk.chroot('election-expiry');
  const a = await candidate(root, 'a');
  await until(() => a.election.leading, 10_000, 'a to lead');
  const b = await candidate(root, 'b');
  await until(() => b.election.leaderName === 'a', 10_000, 'b to see a');
  const term = a.terms[0]!;
  await expireSession(a.sup);
  // Ended with the session. (Whether a's client gives the session up before the server expires it is a
  // race ZooKeeper does not settle: a leader's writes must be conditional, and the farm's are.)
  assert.equal(term.signal.aborted, true);
  assert.equal((term.signal.reason as { code?: string }).code, 'ZKFARM_SESSION_LOST');
  await until(() => b.election.leading, 20_000, 'b to lead');
  assert.equal(a.election.leading, false);
  const admin = await zk.rawClient(root);
  assert.equal(String((await admin.getData('/leader')).data), 'b');
});

test('a term whose work fails is stopped (watches closed, timers cleared) before anything else; the next candidate leads', async () => {
  const root = await zk.chroot('election-failed-term');
  const log: string[] = [];
  let failures = 2;
  const a = await candidate(root, 'a', async (term, session) => {
    const watch = session.watchChildren('/election', () => {});
    const timer = setInterval(() => log.push(`a tick in term ${term.number}`), 5);
    term.signal.addEventListener('abort', () => {
      watch.close();
      clearInterval(timer);
      log.push(`a term ${term.number} stopped`);
    });
    log.push(`a term ${term.number} started`);
    if (failures-- > 0) throw new Error('recovery failed');
  });
  await until(() => a.terms.length >= 1, 10_000, 'a first term');
  const b = await candidate(root, 'b', async (term) => {
    log.push(`b term ${term.number} started`);
  });
  await until(() => b.election.leading || a.terms.length >= 3, 20_000, 'a hand-over or a third term');
  // Each failed term of a was stopped before the next term (of a or of b) started.
  const starts = log.filter((l) => / started$/.test(l));
  const stops = log.filter((l) => / stopped$/.test(l));
  assert.ok(stops.length >= 1);
  for (const [i, line] of log.entries()) {
    if (!/ started$/.test(line) || starts.indexOf(line) === 0) continue;
    const before = log.slice(0, i);
    const openTerms =
      before.filter((l) => /^a term \d+ started$/.test(l)).length -
      before.filter((l) => / stopped$/.test(l)).length;
    assert.equal(openTerms, 0, `a term of a was still running when "${line}" happened:\n${log.join('\n')}`);
  }
  // No tick of a term after it was stopped.
  for (const t of a.terms) {
    const stoppedAt = log.indexOf(`a term ${t.number} stopped`);
    if (stoppedAt >= 0) assert.ok(!log.slice(stoppedAt).includes(`a tick in term ${t.number}`));
  }
  assert.ok(a.terms.slice(0, -1).every((t) => t.signal.aborted));
});

test('an announcement goes with its candidate in one multi; a candidate node of an earlier session is removed', async () => {
  const root = await zk.chroot('election-stale');
  const admin = await zk.rawClient(root);
  await admin.ensurePath('/election');
  // An earlier session of "a" left its candidate (its session not yet expired), first in line.
  const old = connect({ connect: root, sessionTimeout: 20_000 });
  cleanups.push(() => old.stop());
  const oldSession = await old.ready;
  await oldSession.client.create('/election/a-', null, CreateMode.EPHEMERAL_SEQUENTIAL);
  const a = await candidate(root, 'a', async () => {}, { pastSessions: new Set([oldSession.id]) });
  await until(() => a.election.leading, 10_000, 'a to lead although its old node was first');
  assert.equal((await admin.getChildren('/election')).length, 1);
  assert.equal((await admin.exists('/leader'))?.ephemeralOwner, a.session.id);
  await a.election.stop();
  assert.equal(await admin.exists('/leader'), null);
  assert.deepEqual(await admin.getChildren('/election'), []);
});

test('a candidate stopped while it reads its turn after the leader left stops, and never leads', async () => {
  // The stop lands at a different moment of the takeover each time (the read of the line is a round
  // trip of a few ms); a stop that came while the turn was read used to leave the term running for ever.
  for (let delay = 0; delay < 16; delay++) {
    const root = await zk.chroot(`election-stop-${delay}`);
    const a = await candidate(root, 'a');
    await until(() => a.election.leading, 10_000, 'a to lead');
    const b = await candidate(root, 'b');
    await until(() => b.election.leaderName === 'a', 10_000, 'b to wait on a');
    void a.election.stop();
    await new Promise((resolve) => setTimeout(resolve, delay));
    const stopped = await Promise.race([
      b.election.stop().then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000)),
    ]);
    assert.ok(stopped, `b's stop returned (stopped ${delay} ms after a's)`);
    assert.equal(b.election.leading, false);
  }
});
