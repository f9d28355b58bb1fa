/**
 * Progress of a benchmark run on stderr: a bar redrawn in place on a terminal, one quiet line per
 * finished measurement otherwise (CI logs, pipes), nothing with `none`.
 */

type Stream = NodeJS.WritableStream & { columns?: number };

export class Progress {
  readonly #mode: 'bar' | 'lines' | 'none';
  readonly #out: Stream;
  #total = 0;
  #done = 0;
  #label = '';
  #sub = '';
  #started = Date.now();
  #measureStarted = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #drawn = false;

  constructor(mode: 'bar' | 'lines' | 'none', out: Stream) {
    this.#mode = mode;
    this.#out = out;
    if (mode === 'bar') {
      this.#timer = setInterval(() => this.#draw(), 500);
      this.#timer.unref();
    }
  }

  /** Add `n` measurements to the total. */
  plan(n: number): void {
    this.#total += n;
    this.#draw();
  }

  /** A measurement starts. */
  begin(label: string): void {
    this.#label = label;
    this.#sub = '';
    this.#measureStarted = Date.now();
    this.#draw();
  }

  /** Progress inside the running measurement (from its process). */
  update(done: number, total: number, label = 'done'): void {
    this.#sub = `${done}/${total} ${label}`;
    this.#draw();
  }

  /** The measurement ended; `line` says what it found. */
  end(line: string): void {
    this.#done++;
    const secs = ((Date.now() - this.#measureStarted) / 1000).toFixed(1);
    const label = this.#label;
    this.#label = '';
    this.#sub = '';
    this.log(`[${this.#done}/${this.#total}] ${label}: ${line} (${secs} s)`);
  }

  /** A line above the bar (or on its own). */
  log(line: string): void {
    if (this.#mode === 'none') return;
    this.#clear();
    this.#out.write(`bench: ${line}\n`);
    this.#draw();
  }

  /** Write text to another stream (the tables on stdout) without tearing the bar. */
  write(stream: NodeJS.WritableStream, text: string): void {
    this.#clear();
    stream.write(text);
    this.#draw();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#clear();
  }

  #clear(): void {
    if (this.#mode === 'bar' && this.#drawn) {
      this.#out.write('\r\x1b[K');
      this.#drawn = false;
    }
  }

  #draw(): void {
    if (this.#mode !== 'bar' || this.#total === 0) return;
    const width = Math.max(40, (this.#out.columns ?? 100) - 1);
    const barWidth = 24;
    const frac = Math.min(1, this.#done / this.#total);
    const full = Math.round(frac * barWidth);
    const bar = `${'█'.repeat(full)}${'░'.repeat(barWidth - full)}`;
    const elapsed = Math.round((Date.now() - this.#started) / 1000);
    const text = `bench ${bar} ${this.#done}/${this.#total} ${elapsed}s  ${this.#label}${this.#sub ? ` · ${this.#sub}` : ''}`;
    this.#out.write(`\r\x1b[K${text.slice(0, width)}`);
    this.#drawn = true;
  }
}
