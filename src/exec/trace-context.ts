/**
 * W3C trace context (`traceparent`, `tracestate`) carried with a task, through OpenTelemetry's API: a
 * no-op unless the process (or thread) registered an SDK. Always W3C, whatever propagator the user
 * registered, because the task's fields are part of the farm's public contract (docs/protocol.md).
 */
import { createRequire } from 'node:module';
import {
  type Context,
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  trace,
} from '@opentelemetry/api';
import type { W3CTraceContextPropagator } from '@opentelemetry/core';

let w3c: W3CTraceContextPropagator | undefined;

/**
 * The propagator, loaded on first use: most role threads never see a traced task, and
 * @opentelemetry/core is a cost in every thread that loads it. It is a CommonJS package (no `exports`,
 * no `type`), so `require` here returns the very module a static `import` would, and synchronously,
 * which keeps contextFrom and carrierOf synchronous.
 */
function propagator(): W3CTraceContextPropagator {
  if (w3c === undefined) {
    const core = createRequire(import.meta.url)(
      '@opentelemetry/core',
    ) as typeof import('@opentelemetry/core');
    w3c = new core.W3CTraceContextPropagator();
  }
  return w3c;
}

/** The two W3C fields, as a task (or a pool call) carries them. */
export interface TraceCarrier {
  traceparent?: string;
  tracestate?: string;
}

/** A context whose remote parent is the carrier's span (or `base` unchanged when it holds none). */
export function contextFrom(carrier: TraceCarrier, base: Context = ROOT_CONTEXT): Context {
  if (typeof carrier.traceparent !== 'string') return base;
  return propagator().extract(base, carrier, defaultTextMapGetter);
}

/** The W3C fields of the span active in `ctx` (empty when there is no valid span). */
export function carrierOf(ctx: Context = context.active()): TraceCarrier {
  const out: TraceCarrier = {};
  // The propagator writes nothing for an invalid span context, which is what every span is without an
  // SDK: checked here, so that a process that traces nothing never loads @opentelemetry/core.
  const span = trace.getSpanContext(ctx);
  if (span === undefined || !trace.isSpanContextValid(span)) return out;
  propagator().inject(ctx, out, defaultTextMapSetter);
  return out;
}

/**
 * Modules named in ZKFARM_THREAD_IMPORT (comma-separated specifiers; paths are resolved against the
 * current directory), imported first in every thread zkfarm starts (role threads, handler-pool threads):
 * `node --import` reaches the main thread only, and each thread has its own OpenTelemetry globals, so
 * this is where an SDK is registered for them. A module that fails to load is a process warning.
 */
export async function importThreadModules(): Promise<void> {
  const list = process.env['ZKFARM_THREAD_IMPORT'];
  if (!list) return;
  const { pathToFileURL } = await import('node:url');
  const { resolve } = await import('node:path');
  for (const spec of list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const url = /^[./]/.test(spec) ? pathToFileURL(resolve(spec)).href : spec;
    try {
      await import(url);
    } catch (err) {
      process.emitWarning(
        `zkfarm: ZKFARM_THREAD_IMPORT module ${spec} failed to load: ${(err as Error).message}`,
      );
    }
  }
}
