/**
 * OpenTelemetry spans of a task's life, through `@opentelemetry/api` (no-ops unless an SDK is registered
 * in the thread: see ZKFARM_THREAD_IMPORT in exec/trace-context.ts).
 *
 *   zkfarm submit       submitter  child of the caller's active span; its context is written in the task
 *                                  as `traceparent` (and `tracestate`) unless the task carries one already
 *   zkfarm queue wait   worker     from the task's submittedAt to the start of its run
 *   zkfarm run          worker     the run; active while an inline handler runs, handed to a pool thread as
 *                                  its handler's parent (so the handler's own spans nest under it)
 *   zkfarm complete     worker     from the run's end to its completion written (or fenced, or dropped)
 * The three worker spans are children of the task's `traceparent`; a task without one starts a new trace
 * at its run span, and its queue-wait and complete spans are the run's children.
 *
 * Znodes: none. Cost on the hot path: a task without `traceparent` in a thread without an SDK makes no
 * span; one with `traceparent` makes a non-recording span that carries it to the run (and a pool thread).
 */
import {
  type Attributes,
  type Context,
  context,
  ProxyTracerProvider,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import type { ExecOutcome } from '../exec/index.js';
import { carrierOf, contextFrom, type TraceCarrier } from '../exec/trace-context.js';
import { queueOf, type Task } from './protocol.js';

const tracer = trace.getTracer('zkfarm');

/** What a ProxyTracerProvider delegates to while no SDK is registered: the API's no-op provider. */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/**
 * Whether this thread has registered a tracer provider (an SDK). Asked per task, so that one registered
 * late still counts; a provider from another copy of the API is not our proxy, and counts as one.
 */
function sdkRegistered(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NOOP_PROVIDER;
}

/**
 * Run `fn` inside a `zkfarm submit` span (a child of the active span); `fn` gets the W3C fields of the
 * span to write into its tasks.
 */
export async function inSubmitSpan<T>(
  attributes: Attributes,
  fn: (carrier: TraceCarrier) => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan('zkfarm submit', { kind: SpanKind.PRODUCER, attributes }, async (span) => {
    try {
      const out = await fn(carrierOf(trace.setSpan(context.active(), span)));
      if (typeof out === 'string') span.setAttribute('zkfarm.task.id', out);
      return out;
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  });
}

/** The task with the submit span's fields, unless it carries a trace context of its own (or there is none). */
export function stamped(task: Task, carrier: TraceCarrier): Task {
  if (carrier.traceparent === undefined || typeof task !== 'object' || task === null) return task;
  if (task.traceparent !== undefined) return task;
  return { ...task, ...carrier };
}

interface Traced {
  parent: Context;
  run: Span;
  runContext: Context;
  complete?: Span;
}

/** The worker's spans of the tasks it holds, by task id. */
export class TaskTraces {
  readonly #tasks = new Map<string, Traced>();
  readonly #worker: string;

  constructor(worker: string) {
    this.#worker = worker;
  }

  /**
   * A run starts: its queue-wait span (when the submit time is known) and its run span. Returns the
   * context to run it in and the W3C fields of its run span (for a pool thread), or undefined when the
   * task is not traced (no trace context, no SDK).
   */
  started(id: string, task: Task, attempt: number): { context: Context; carrier: TraceCarrier } | undefined {
    // Nothing to record and nothing to pass on: no span at all (a non-recording one is made, checked
    // and dropped otherwise, on every task of every farm that does not trace).
    if (task.traceparent === undefined && !sdkRegistered()) return undefined;
    const parent = contextFrom(task);
    const attributes = {
      'zkfarm.task.id': id,
      'zkfarm.worker': this.#worker,
      'zkfarm.attempt': attempt,
      'zkfarm.queue': queueOf(task),
      ...(task.handler !== undefined ? { 'zkfarm.handler': task.handler } : { 'zkfarm.shell': true }),
    };
    const run = tracer.startSpan('zkfarm run', { kind: SpanKind.CONSUMER, attributes }, parent);
    if (!run.isRecording() && task.traceparent === undefined) return undefined;
    const runContext = trace.setSpan(parent, run);
    // A task with no (valid) trace context: its run starts the trace, and its other spans join it.
    const family = trace.getSpanContext(parent) === undefined ? runContext : parent;
    const submittedAt = task._zkfarm?.submittedAt;
    if (submittedAt !== undefined && attempt === 1)
      tracer
        .startSpan(
          'zkfarm queue wait',
          { startTime: submittedAt, attributes: { 'zkfarm.task.id': id } },
          family,
        )
        .end();
    this.#tasks.set(id, { parent: family, run, runContext });
    return { context: runContext, carrier: carrierOf(runContext) };
  }

  /** The run ended with `outcome`: the run span ends, the completion span starts. */
  ran(id: string, outcome: ExecOutcome): void {
    const t = this.#tasks.get(id);
    if (!t) return;
    if (outcome.state === 'failed')
      t.run.setStatus({
        code: SpanStatusCode.ERROR,
        message: outcome.errorCode ?? outcome.error ?? 'failed',
      });
    t.run.end();
    t.complete = tracer.startSpan('zkfarm complete', { attributes: { 'zkfarm.task.id': id } }, t.parent);
  }

  /** Its completion was written (`how`: completed, requeued, fenced, dropped): the last span ends. */
  ended(id: string, how: string): void {
    const t = this.#tasks.get(id);
    if (!t) return;
    this.#tasks.delete(id);
    if (!t.complete) t.run.end();
    t.complete?.setAttribute('zkfarm.completion', how);
    if (how === 'fenced' || how === 'dropped')
      t.complete?.setStatus({ code: SpanStatusCode.ERROR, message: how });
    t.complete?.end();
  }
}
