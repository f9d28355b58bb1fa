/**
 * Keeping the code V8 optimized for one object valid for the next of its kind. A role thread optimizes
 * its per-task code for the role objects of the rehearsal; when the real role's objects differ in a way
 * V8 can see and a reader cannot, that code is thrown away at its first task and compiled again, in each
 * thread, during a new user's first tasks (benchmarks/README.md, "Warm code across the switch").
 *
 * The commonest difference is an array that starts empty: V8 makes an empty array literal an array of
 * small integers, and its first object makes it an array of another kind (another map). An array made
 * here starts as the kind it becomes, so a new owner's array has the map the optimized code expects.
 */

/** An empty array, already of V8's kind for objects: for a field that only ever holds objects. */
export function objectArray<T extends object>(): T[] {
  const a: T[] = [undefined as unknown as T];
  a.pop();
  return a;
}
