// Loaded into every role thread through ZKFARM_THREAD_IMPORT by benchmarks/alloc-per-task.ts: V8's
// sampling heap profiler, counting objects the scavenger and the full collector took as well, so that it
// measures what a thread allocates, not what it keeps. It starts when `<ALLOC_PROBE_DIR>/start` exists
// and writes `<kind>-<threadId>.json` (bytes in all, and the top allocating functions) when `stop` does.
import { existsSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { threadId } from 'node:worker_threads';

const dir = process.env.ALLOC_PROBE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  const post = (method, params) =>
    new Promise((resolve, reject) => session.post(method, params, (e, r) => (e ? reject(e) : resolve(r))));
  let state = 'waiting';
  const timer = setInterval(async () => {
    if (state === 'waiting' && existsSync(`${dir}/start`)) {
      state = 'sampling';
      await post('HeapProfiler.enable');
      await post('HeapProfiler.startSampling', {
        samplingInterval: 4096,
        includeObjectsCollectedByMinorGC: true,
        includeObjectsCollectedByMajorGC: true,
      });
    } else if (state === 'sampling' && existsSync(`${dir}/stop`)) {
      state = 'done';
      clearInterval(timer);
      const { profile } = await post('HeapProfiler.stopSampling');
      const sites = new Map();
      let total = 0;
      const walk = (node) => {
        const f = node.callFrame;
        const site = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(src|node_modules)\//, '$1/')}:${f.lineNumber + 1}`;
        total += node.selfSize;
        sites.set(site, (sites.get(site) ?? 0) + node.selfSize);
        for (const child of node.children) walk(child);
      };
      walk(profile.head);
      // A thread that ran tasks is a worker (nothing in a role thread's start says which it is). Any
      // allocation in the executor says so: one function's own may be inlined into its caller's.
      const kind = [...sites.keys()].some((k) => k.includes('src/exec/')) ? 'worker' : 'master';
      const top = [...sites].sort((a, b) => b[1] - a[1]).slice(0, 30);
      writeFileSync(`${dir}/${kind}-${threadId}.json`, JSON.stringify({ kind, threadId, total, top }));
    }
  }, 100);
  timer.unref();
}
