// Handlers for a farm: every exported function becomes a handler of that name, run on a thread pool.
// Name this file in the config (handlerModules: [./handlers.mjs]) and submit:
//   npx runtime submit '{"handler":"fib","input":30}' --wait

/** The n-th Fibonacci number, the slow way: a CPU-bound task that shows the pool at work. */
export function fib(n) {
  if (!Number.isInteger(n) || n < 0 || n > 40)
    throw new Error(`fib needs a whole number 0..40, got ${JSON.stringify(n)}`);
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

/** Count the words of a text: `{"handler": "wordcount", "input": "the quick brown fox"}`. */
export function wordcount(text) {
  return String(text).split(/\s+/).filter(Boolean).length;
}
