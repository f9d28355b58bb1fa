import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkRuns, RunLog } from '../helpers/run-log.js';

const line = (o: Record<string, unknown>) => ({ msg: 'task started', role: 'w1', attempt: 1, ...o });

test('the execution log: an assignment run twice, and a run from an assignment of a lost session, are violations', () => {
  const log = new RunLog();
  log.record(line({ task: 't1', assignment: '10', heldOn: 's1', session: 's1' }));
  log.record({ msg: 'something else', task: 't9' });
  assert.deepEqual(checkRuns(log.runs), []);
  // Given back and assigned again (a new assignment): a second run is fine.
  log.record(line({ task: 't1', assignment: '20', heldOn: 's2', session: 's2', attempt: 2, role: 'w2' }));
  assert.deepEqual(checkRuns(log.runs), []);
  // The same assignment again: not fine.
  log.record(line({ task: 't1', assignment: '20', heldOn: 's2', session: 's2', role: 'w2' }));
  // A task held on session s1 started on s3: its old assignment ran after the master gave it back.
  log.record(line({ task: 't2', assignment: '30', heldOn: 's1', session: 's3' }));
  const problems = checkRuns(log.runs);
  assert.equal(problems.length, 2);
  assert.match(problems[0]!, /t1: its assignment 20 ran twice \(on w2 and w2\)/);
  assert.match(problems[1]!, /t2: started on w1's session s3 from an assignment read on its session s1/);
  assert.deepEqual(log.workersOf().get('t1'), ['w1', 'w2', 'w2']);
});

test('an in-process worker logs through the run log', () => {
  const log = new RunLog();
  const seen: string[] = [];
  const logger = log.logger('w7', { debug() {}, info: (_o, m) => seen.push(m ?? ''), warn() {}, error() {} });
  logger.debug({ task: 't', attempt: 1, assignment: '5', heldOn: 'a', session: 'a' }, 'task started');
  logger.info({}, 'hello');
  assert.deepEqual(log.runs, [
    { task: 't', worker: 'w7', attempt: 1, assignment: '5', heldOn: 'a', session: 'a' },
  ]);
  assert.deepEqual(seen, ['hello']);
});
