/**
 * The handlers an executor knows, by name: built-ins and the `handlers` option run inline on the
 * calling thread; the functions exported by `handlerModules` run on the handler pool. A module that
 * cannot be loaded, exports no function, or defines a name twice is a configuration error naming it.
 */
import { configError, describeError, ErrorCodes } from '../errors.js';
import { TaskFailure } from './failure.js';
import { resolveHandlerModule } from './handler-module.js';
import type { HandlerPool } from './handler-pool.js';
import type { Handler } from './types.js';

export type HandlerEntry = { kind: 'inline'; fn: Handler } | { kind: 'pool'; module: string };

/**
 * The pool handlers of `modules`, listed by the pool (ZKFARM_CONFIG_INVALID naming a module that is
 * missing, fails to load, exports no function, or redefines a name of another module or of `inline`).
 */
export async function loadModuleHandlers(
  pool: HandlerPool,
  modules: readonly string[],
  inline: Readonly<Record<string, Handler>>,
): Promise<Array<[string, HandlerEntry]>> {
  const found = new Map<string, string>(); // handler name → module as the user wrote it
  const entries: Array<[string, HandlerEntry]> = [];
  for (const spec of modules) {
    const module = await resolveHandlerModule(spec);
    let names: string[];
    try {
      names = await pool.listHandlers(module);
    } catch (err) {
      throw configError(`handler module ${JSON.stringify(spec)} could not be loaded: ${describeError(err)}`);
    }
    if (names.length === 0) {
      throw configError(
        `handler module ${JSON.stringify(spec)} exports no functions: export each handler by name, ` +
          'or export default an object of functions',
      );
    }
    for (const name of names) {
      const clash = found.get(name) ?? (Object.hasOwn(inline, name) ? 'the handlers option' : undefined);
      if (clash !== undefined) {
        throw configError(
          `handler ${JSON.stringify(name)} is defined twice, by ${JSON.stringify(spec)} and by ${clash}: rename one`,
        );
      }
      found.set(name, JSON.stringify(spec));
      entries.push([name, { kind: 'pool', module }]);
    }
  }
  return entries;
}

/** The failure of a task that names a handler this worker does not have (`known`: every name, sorted). */
export function unknownHandler(name: string, known: readonly string[]): TaskFailure {
  const shown =
    known.length > 40 ? `${known.slice(0, 40).join(', ')}, … (${known.length} in all)` : known.join(', ');
  return new TaskFailure(
    ErrorCodes.UNKNOWN_HANDLER,
    `unknown handler ${JSON.stringify(name)}: this worker knows ${shown}. ` +
      'Register it with the handlers or handlerModules option',
    { retryable: false },
  );
}
