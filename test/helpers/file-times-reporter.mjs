// A node:test reporter: each test file's wall time, longest first (npm test writes one file per phase
// to test-output/file-times-<phase>.txt). A file's time runs from the previous file's last event to its own.
export default async function* fileTimes(source) {
  const start = Date.now();
  const files = new Map();
  for await (const ev of source) {
    const f = ev.data?.file;
    if (!f || ev.type === 'test:enqueue' || ev.type === 'test:dequeue') continue;
    const t = files.get(f) ?? { last: 0, tests: 0 };
    t.last = Date.now();
    if ((ev.type === 'test:pass' || ev.type === 'test:fail') && ev.data.nesting === 0) t.tests++;
    files.set(f, t);
  }
  let prev = start;
  const rows = [];
  for (const [f, t] of [...files].sort((a, b) => a[1].last - b[1].last)) {
    rows.push([f, (t.last - prev) / 1000, t.tests]);
    prev = t.last;
  }
  rows.sort((a, b) => b[1] - a[1]);
  for (const [f, s, n] of rows) yield `${s.toFixed(1).padStart(7)} s  ${String(n).padStart(3)} tests  ${f}\n`;
  yield `${((prev - start) / 1000).toFixed(1).padStart(7)} s  in all\n`;
}
