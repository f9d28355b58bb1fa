/**
 * BullMQ as a new user starts it, for the `fresh` scenario (scenarios/fresh.ts): two processes, as the
 * farm gets, each started cold.
 *
 *   node fresh-bullmq.js workers <port> <queue> <workers> <concurrency>
 *       as many Workers as the farm has workers, each with the farm's capacity as its concurrency, a
 *       no-op processor; prints `ready` once every Worker is connected, runs until SIGTERM
 *   node fresh-bullmq.js add <port> <queue> <jobs> <chunk>
 *       adds the jobs with Queue.addBulk in chunks (the producer), then exits
 *
 * The harness counts completions from outside (the queue's `completed` set in Redis).
 */
import { Queue, Worker } from 'bullmq';

const [mode, portArg, queueName, a, b] = process.argv.slice(2);
const connection = { host: '127.0.0.1', port: Number(portArg), maxRetriesPerRequest: null };

async function workers(count: number, concurrency: number): Promise<void> {
  const all = Array.from(
    { length: count },
    () => new Worker(queueName!, async () => null, { connection, concurrency }),
  );
  for (const w of all) w.on('error', () => {});
  await Promise.all(all.map((w) => w.waitUntilReady()));
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => {
    void Promise.race([
      Promise.all(all.map((w) => w.close(true))),
      new Promise((r) => setTimeout(r, 5000)),
    ]).then(() => process.exit(0));
  });
}

async function add(jobs: number, chunk: number): Promise<void> {
  const queue = new Queue(queueName!, { connection });
  for (let i = 0; i < jobs; i += chunk) {
    const n = Math.min(chunk, jobs - i);
    await queue.addBulk(Array.from({ length: n }, (_, k) => ({ name: 'noop', data: { i: i + k } })));
  }
  await queue.close();
}

if (mode === 'workers') await workers(Number(a), Number(b));
else if (mode === 'add') await add(Number(a), Number(b));
else {
  process.stderr.write(`fresh-bullmq: unknown mode ${mode}: workers or add\n`);
  process.exit(2);
}
