/**
 * Traces (src/farm/tracing.ts, src/exec/trace-context.ts) across threads, with the SDK's in-memory
 * exporter in the test's thread and, in the host's role threads and the handler pool's threads, an SDK
 * registered through ZKFARM_THREAD_IMPORT that posts finished spans back here: the caller's span →
 * zkfarm submit (this thread) → zkfarm queue wait, run, complete (the worker's role thread) → the
 * handler's own span (a Piscina thread), one trace, each parent as documented; and an inline handler's
 * span nests under the run span of a worker in this thread.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BroadcastChannel, threadId } from 'node:worker_threads';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { encode, PATHS } from '../src/farm/protocol.js';
import { Host } from '../src/host/index.js';
import { createLogger } from '../src/host/logging.js';
import { sourceThreads } from '../src/testing/index.js';
import { CreateMode } from '../src/zk/index.js';
import { summary } from './fixtures/otel-thread-setup.mjs';
import { useCleanups } from './helpers/cleanups.js';
import { useFarm } from './helpers/farm.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-traces-'));
cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir: join(tmp, 'work') });

const local = new InMemorySpanExporter();
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(local)] }));
const tracer = trace.getTracer('test');

type SpanSeen = ReturnType<typeof summary>;
const remote: SpanSeen[] = [];
const channel = new BroadcastChannel('zkfarm-test-spans');
channel.onmessage = (e) => remote.push((e as { data: SpanSeen }).data);
cleanups.push(() => channel.close());

function seen(): SpanSeen[] {
  return [...local.getFinishedSpans().map((s) => summary(s)), ...remote];
}

const one = (name: string, id?: string): SpanSeen => {
  const all = seen().filter(
    (s) => s.name === name && (id === undefined || s.attributes['zkfarm.task.id'] === id),
  );
  assert.equal(all.length, 1, `one ${name} span${id ? ` of ${id}` : ''}, got ${all.length}`);
  return all[0]!;
};

test('a task submitted under a span: submit here, queue wait / run / complete in the role thread, the handler in a pool thread, one trace', async () => {
  const root = await zk.chroot('traces');
  process.env['ZKFARM_THREAD_IMPORT'] = join(import.meta.dirname, 'fixtures', 'otel-thread-setup.mjs');
  cleanups.push(() => delete process.env['ZKFARM_THREAD_IMPORT']);
  const host = await Host.start(
    {
      connect: root,
      sessionTimeout: 4000,
      workdir: join(tmp, 'host'),
      roles: [
        { kind: 'master', name: 'm1' },
        {
          kind: 'worker',
          name: 'w1',
          handlerModules: [join(import.meta.dirname, 'fixtures', 'traced-handlers.mjs')],
        },
      ],
    },
    { logger: createLogger({ level: 'warn', pretty: false }), spawn: sourceThreads },
  );
  cleanups.push(() => host.stop({ drain: false }));
  const sub = await farm.submitter(root);
  const raw = await zk.rawClient(root);

  let id = '';
  await tracer.startActiveSpan('client request', async (span) => {
    id = await sub.submit({ handler: 'traced' });
    span.end();
  });
  const result = await sub.waitFor(id, { timeoutMs: 30_000 });
  assert.equal(result.state, 'succeeded', String(result.error));
  await until(
    () => seen().some((s) => s.name === 'zkfarm complete' && s.attributes['zkfarm.task.id'] === id),
    15_000,
    'the completion span',
  );

  const request = one('client request');
  const submit = one('zkfarm submit');
  const wait = one('zkfarm queue wait', id);
  const run = one('zkfarm run', id);
  const done = one('zkfarm complete', id);
  const work = one('fixture work');
  assert.equal(submit.parentSpanId, request.spanId, "submit is a child of the caller's span");
  for (const s of [submit, wait, run, done, work])
    assert.equal(s.traceId, request.traceId, `${s.name} in the one trace`);
  for (const s of [wait, run, done]) {
    assert.equal(s.parentSpanId, submit.spanId, `${s.name} is a child of the submit span`);
    assert.notEqual(s.thread, threadId, `${s.name} was made in the role thread`);
  }
  assert.equal(work.parentSpanId, run.spanId, "the handler's span is a child of the run span");
  assert.notEqual(work.thread, run.thread, 'made in a pool thread, not the role thread');
  assert.equal(run.attributes['zkfarm.worker'], 'w1');
  const handlerSaw = (result.result as { traceparent: string }).traceparent;
  assert.equal(handlerSaw.split('-')[2], run.spanId, "the handler's context.traceparent names the run span");

  // The task in ZooKeeper carried the submit span's context (what a foreign worker would read).
  const status = JSON.parse(
    (await raw.getData(`${PATHS.status}/${id.slice(-10, -4)}/${id}`)).data.toString(),
  );
  assert.equal(status.state, 'succeeded');
});

test('an inline handler runs with the run span active: its own span nests under it', async () => {
  const root = await zk.chroot('traces-inline');
  local.reset();
  remote.length = 0;
  await farm.master(root, 'm1');
  await farm.worker(root, 'w1', {
    handlers: {
      inline: () => tracer.startActiveSpan('inline work', (span) => span.end()),
    },
  });
  const sub = await farm.submitter(root);
  const id = await sub.submit({ handler: 'inline' });
  assert.equal((await sub.waitFor(id, { timeoutMs: 30_000 })).state, 'succeeded');
  await until(
    () => seen().some((s) => s.name === 'zkfarm complete' && s.attributes['zkfarm.task.id'] === id),
    10_000,
    'the completion span',
  );
  const run = one('zkfarm run', id);
  const work = one('inline work');
  assert.equal(work.parentSpanId, run.spanId);
  assert.equal(run.parentSpanId, one('zkfarm submit').spanId, 'with no span active, submit starts the trace');
});

test('a task without a trace context, from a plain ZooKeeper client: its worker, with an SDK, starts one trace at the run', async () => {
  const root = await zk.chroot('traces-foreign');
  local.reset();
  remote.length = 0;
  await farm.master(root, 'm1');
  await farm.worker(root, 'w1');
  const raw = await zk.rawClient(root);
  const path = await raw.create(
    `${PATHS.tasks}/task-`,
    encode({ handler: 'echo', input: 'untraced' }),
    CreateMode.PERSISTENT_SEQUENTIAL,
  );
  const id = path.split('/').pop()!;
  await until(
    () => seen().some((s) => s.name === 'zkfarm complete' && s.attributes['zkfarm.task.id'] === id),
    30_000,
    'the completion span',
  );
  const run = one('zkfarm run', id);
  assert.equal(run.parentSpanId, undefined, 'no parent: the run starts the trace');
  const complete = one('zkfarm complete', id);
  assert.equal(complete.traceId, run.traceId, 'one trace');
  assert.equal(complete.parentSpanId, run.spanId);
});
