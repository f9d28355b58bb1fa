/**
 * A summary of the CPU profiles `--cpu-prof` writes (one .cpuprofile per thread of every measurement
 * process): for each kind of thread — the main thread (submitter, harness), the leading master, standby
 * masters, workers (added up), loader threads — where the sampled time went, by function and by file.
 * Open a .cpuprofile in Chrome DevTools (Performance tab) for the full picture.
 *
 * Only samples inside a farm run's window count (the first pass's first submit → every status of the
 * last pass seen): a farm measurement writes `window-<pid>.json` next to the profiles with the window on
 * the monotonic clock the profiler uses (microseconds), so start-up (module loading, tsx) and the checks
 * afterwards are left out.
 * Profiles of processes without a window are summarized whole.
 *
 * A thread's kind is told from the named functions on its sampled stacks: src/farm/leader.ts → leading
 * master, src/farm/worker.ts → worker, src/farm/master.ts → standby master, none → loader/other (tsx's
 * loader threads when running from source). Thread 0 is the main thread.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderMarkdown } from './stats.js';

/** Write the run window of this process for summarizeProfiles (when profiling is on). */
export function writeProfileWindow(startUs: number, endUs: number): void {
  const dir = process.env['ZKFARM_BENCH_PROFILE_DIR'];
  if (!dir) return;
  try {
    writeFileSync(join(dir, `window-${process.pid}.json`), JSON.stringify({ startUs, endUs }));
  } catch {
    // profiling is best effort
  }
}

/** Microseconds on the monotonic clock V8's profiler stamps samples with. */
export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

type Kind = 'main thread' | 'leading master' | 'standby master' | 'workers' | 'loader/other';

interface Tally {
  threads: number;
  totalMs: number;
  byFunction: Map<string, number>;
  byFile: Map<string, number>;
}

function shortUrl(url: string): string {
  if (!url) return '(native)';
  const i = url.indexOf('/node_modules/');
  if (i >= 0) return url.slice(i + 1);
  const s = url.indexOf('/src/');
  if (s >= 0) return url.slice(s + 1);
  return url.replace(/^file:\/\//, '').replace(/^node:/, 'node:');
}

function kindOf(prof: CpuProfile, file: string): Kind {
  if (/\.\d+\.0\.\d+\.cpuprofile$/.test(file)) return 'main thread';
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const ran = new Set<string>();
  const seen = new Set<number>();
  for (const id of new Set(prof.samples ?? [])) {
    for (let cur: number | undefined = id; cur !== undefined && !seen.has(cur); cur = parent.get(cur)) {
      seen.add(cur);
      const f = byId.get(cur)?.callFrame;
      if (f?.functionName && f.url) ran.add(f.url);
    }
  }
  const has = (p: string) => [...ran].some((u) => u.includes(p));
  if (has('/farm/leader.')) return 'leading master';
  if (has('/farm/worker.')) return 'workers';
  if (has('/farm/master.')) return 'standby master';
  return 'loader/other';
}

/** Markdown: per thread kind, the top functions and files by self time. */
export function summarizeProfiles(dir: string, top = 12): string {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const windows = new Map<string, { startUs: number; endUs: number }>();
  for (const f of readdirSync(dir)) {
    const m = /^window-(\d+)\.json$/.exec(f);
    if (m)
      windows.set(
        m[1]!,
        JSON.parse(readFileSync(join(dir, f), 'utf8')) as { startUs: number; endUs: number },
      );
  }
  const tallies = new Map<Kind, Tally>();
  for (const file of files) {
    let prof: CpuProfile;
    try {
      prof = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
    } catch {
      continue;
    }
    const kind = kindOf(prof, file);
    // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile
    const window = windows.get(file.split('.')[3] ?? '');
    const t = tallies.get(kind) ?? { threads: 0, totalMs: 0, byFunction: new Map(), byFile: new Map() };
    tallies.set(kind, t);
    t.threads++;
    const byId = new Map(prof.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    /** The nearest caller with a URL passing `ok`, for naming native frames and charging files. */
    const caller = (id: number, ok: (url: string) => boolean): ProfileNode | undefined => {
      for (let cur = parent.get(id); cur !== undefined; cur = parent.get(cur)) {
        const n = byId.get(cur);
        if (n?.callFrame.url && ok(n.callFrame.url)) return n;
      }
      return undefined;
    };
    const names = new Map<number, { fn: string; file: string }>();
    const nameOf = (node: ProfileNode) => {
      let v = names.get(node.id);
      if (!v) {
        const f = node.callFrame;
        const at = (n: ProfileNode) =>
          `${n.callFrame.functionName || '(anonymous)'} ${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
        // Native time (a socket write, an fs call) is named after its JS caller, and charged to the nearest
        // file of the project or a library, so `writeBuffer` says whether it was a socket or a file.
        const js = f.url ? undefined : caller(node.id, () => true);
        const owner = caller(node.id, (u) => !u.startsWith('node:'));
        const fn = f.url ? at(node) : `${f.functionName || '(native)'}${js ? ` ← ${at(js)}` : ''}`;
        const file =
          f.url && !f.url.startsWith('node:')
            ? shortUrl(f.url)
            : owner
              ? shortUrl(owner.callFrame.url)
              : f.url
                ? shortUrl(f.url)
                : f.functionName;
        v = { fn, file };
        names.set(node.id, v);
      }
      return v;
    };
    const samples = prof.samples ?? [];
    const deltas = prof.timeDeltas ?? [];
    let at = prof.startTime;
    for (let i = 0; i < samples.length; i++) {
      at += deltas[i] ?? 0;
      if (window && (at < window.startUs || at > window.endUs)) continue;
      const node = byId.get(samples[i]!);
      const ms = (deltas[i] ?? 0) / 1000;
      if (!node || ms <= 0) continue;
      if (node.callFrame.functionName === '(idle)') continue;
      t.totalMs += ms;
      const { fn, file: key } = nameOf(node);
      t.byFunction.set(fn, (t.byFunction.get(fn) ?? 0) + ms);
      t.byFile.set(key, (t.byFile.get(key) ?? 0) + ms);
    }
  }
  const order: Kind[] = ['main thread', 'leading master', 'standby master', 'workers', 'loader/other'];
  const out: string[] = [
    '# CPU profile summary',
    '',
    `${files.length} profiles in ${dir}; ${windows.size} farm run window(s). Self time while not idle, by thread kind ` +
      '(within the run windows where known); ms are sampled time.',
    '',
  ];
  for (const kind of order) {
    const t = tallies.get(kind);
    if (!t || t.totalMs === 0) continue;
    const rows = (m: Map<string, number>) =>
      [...m]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([name, ms]) => [name, Math.round(ms), `${((ms / t.totalMs) * 100).toFixed(1)}%`]);
    out.push(
      `## ${kind} (${t.threads} thread${t.threads > 1 ? 's' : ''}, ${Math.round(t.totalMs)} ms busy)`,
      '',
    );
    out.push(
      renderMarkdown({
        title: '',
        columns: ['file (native calls charged to their caller)', 'self ms', 'share'],
        rows: rows(t.byFile),
      }),
      '',
    );
    out.push(
      renderMarkdown({ title: '', columns: ['function', 'self ms', 'share'], rows: rows(t.byFunction) }),
      '',
    );
  }
  return `${out.join('\n')}\n`;
}
