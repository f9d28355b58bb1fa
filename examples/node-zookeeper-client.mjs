/**
 * An application that already uses node-zookeeper-client submits a task to a zkfarm farm and reads its
 * result through the public protocol alone (docs/protocol.md): no zkfarm code involved.
 *
 *   node examples/node-zookeeper-client.mjs [--zk 127.0.0.1:2181[/chroot]] '{"handler":"echo","input":"hi"}'
 *
 * Prints the task id, then the result's JSON once the farm has written /status/<bucket>/<id>. Exits 1 if the task
 * failed, 2 on bad usage, 3 if no result came within --timeout ms (default 60000).
 */
import { parseArgs } from 'node:util';
import zookeeper from 'node-zookeeper-client';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    zk: { type: 'string', default: '127.0.0.1:2181' },
    timeout: { type: 'string', default: '60000' },
  },
});
if (positionals.length !== 1) {
  console.error(
    'usage: node examples/node-zookeeper-client.mjs [--zk host:port[/chroot]] \'{"handler":"echo","input":"hi"}\'',
  );
  process.exit(2);
}
const task = Buffer.from(positionals[0], 'utf8');
JSON.parse(task.toString()); // a task is a JSON object: refuse anything else before submitting

const client = zookeeper.createClient(values.zk, { sessionTimeout: 10_000 });
const timer = setTimeout(() => {
  console.error(`no result within ${values.timeout} ms`);
  process.exit(3);
}, Number(values.timeout));

client.once('connected', () => {
  // A task is a persistent sequential node under /tasks; its name is the task id.
  client.create('/tasks/task-', task, zookeeper.CreateMode.PERSISTENT_SEQUENTIAL, (err, path) => {
    if (err) return fail(`could not submit: ${err.message} (is a farm running at ${values.zk}?)`);
    const id = path.slice('/tasks/'.length);
    console.log(id);
    // The result's bucket: the six leading digits of the id's ten-digit number (docs/protocol.md).
    waitForStatus(`/status/${id.slice(-10, -4)}/${id}`);
  });
});
client.connect();

/** The result is written once: watch for it with exists (fine before its bucket exists), then read it. */
function waitForStatus(path) {
  const watcher = () => waitForStatus(path);
  client.exists(path, watcher, (err, stat) => {
    if (err) return fail(`could not watch ${path}: ${err.message}`);
    if (!stat) return; // the watcher runs when it is created
    client.getData(path, (err2, data) => {
      if (err2) return fail(`could not read ${path}: ${err2.message}`);
      const status = JSON.parse(data.toString('utf8'));
      console.log(JSON.stringify(status));
      clearTimeout(timer);
      client.close();
      process.exitCode = status.state === 'succeeded' ? 0 : 1;
    });
  });
}

function fail(message) {
  console.error(message);
  clearTimeout(timer);
  client.close();
  process.exitCode = 1;
}
