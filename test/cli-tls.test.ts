/**
 * TLS to ZooKeeper from the command line, as a user runs it: `runtime --zk-tls` on its own TLS-only
 * embedded ZooKeeper, found by `runtime submit` and `runtime status` without flags; a farm on a TLS-only
 * ZooKeeper given with --zk and the --zk-ca/cert/key flags (or the config file's zk.tls); and the
 * mistakes refused with one line before anything starts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Cli, killRuntimes } from './helpers/cli.js';
import { useTestCertificates } from './helpers/tls.js';
import { useZooKeeper } from './helpers/zk.js';

const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-cli-tls-test-'));
const env: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: join(tmp, 'xdg') };
delete env['ZKFARM_ZK'];
after(() => {
  killRuntimes();
  rmSync(tmp, { recursive: true, force: true });
});

const certs = useTestCertificates();
const zk = useZooKeeper(
  async () => ({ tls: (await certs.ready()).serverTls }),
  () => certs.clientTls,
);

const cli = (args: string[], timeoutMs = 60_000) => new Cli(args, { env }).exit(timeoutMs);
const READY = /runtime: ready: .* on (\S+)/;
const TASK = '{"handler":"echo","input":"over tls"}';

/** The test's PEM files, written for the flags. */
const files = { ca: join(tmp, 'ca.pem'), cert: join(tmp, 'client.pem'), key: join(tmp, 'client-key.pem') };
before(async () => {
  await certs.ready();
  writeFileSync(files.ca, certs.ca.cert);
  writeFileSync(files.cert, certs.client.cert);
  writeFileSync(files.key, certs.client.key, { mode: 0o600 });
});
const tlsFlags = () => ['--zk-ca', files.ca, '--zk-cert', files.cert, '--zk-key', files.key];

describe('runtime --zk-tls: its own TLS-only embedded ZooKeeper', () => {
  let farm: Cli;

  test('it starts TLS-only; submit --wait and status from other processes find it without flags', async () => {
    const workdir = join(tmp, 'work');
    // Without a rehearsal the embedded ZooKeeper gets its own warm-up, both parts of it over TLS.
    farm = new Cli(['--zk-tls', '--masters', '1', '--workers', '1', '--workdir', workdir], {
      env: { ...env, ZKFARM_REHEARSAL_TASKS: '0' },
    });
    await farm.waitForErr(/embedded ZooKeeper listening on \S+, TLS only with certificates in /, 120_000);
    await farm.waitForErr(READY, 120_000);
    assert.match(farm.stderr, /the embedded ZooKeeper was warmed in [\d.]+ s \([1-9]\d* nodes/);
    assert.match(farm.stderr, /and its request path with [1-9]\d* small requests/);
    assert.doesNotMatch(farm.stderr, /rehearsed/);
    const submitted = await cli(['submit', TASK, '--wait', '--timeout', '60000']);
    assert.equal(submitted.code, 0, submitted.stderr);
    assert.match(submitted.stdout, /"state":"succeeded".*"result":"over tls"/);
    const status = await cli(['status', '--json']);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).workers.length, 1);
  });

  test('runtime stops on SIGINT, exit 0', async () => {
    farm.proc.kill('SIGINT');
    const r = await farm.exit(60_000);
    assert.equal(r.code, 0, r.stderr);
  });
});

describe('runtime --zk on a TLS-only ZooKeeper', () => {
  test('with --zk-ca/cert/key: a farm, submit --wait and status over TLS', async () => {
    const root = await zk.chroot('cli');
    const farm = new Cli(
      ['--zk', root, ...tlsFlags(), '--masters', '1', '--workers', '1', '--workdir', join(tmp, 'w2')],
      { env },
    );
    try {
      const ready = await farm.waitForErr(READY, 120_000);
      assert.equal(ready[1], root);
      const submitted = await cli(['submit', '--zk', root, ...tlsFlags(), TASK, '--wait']);
      assert.equal(submitted.code, 0, submitted.stderr);
      assert.match(submitted.stdout, /"state":"succeeded"/);
      const status = await cli(['status', '--zk', root, ...tlsFlags(), '--json']);
      assert.equal(status.code, 0, status.stderr);
    } finally {
      farm.proc.kill('SIGINT');
      await farm.exit(60_000);
    }
  });

  test('runtime dashboard with the TLS flags reads the farm over TLS (/healthz 200)', async () => {
    const root = await zk.chroot('dashboard');
    const dash = new Cli(['dashboard', '--zk', root, ...tlsFlags(), '--http', '127.0.0.1:0'], { env });
    try {
      const [, url] = await dash.waitForErr(/dashboard of \S+ at (\S+)/, 60_000);
      const res = await fetch(new URL('healthz', url));
      assert.equal(res.status, 200, await res.text());
    } finally {
      dash.proc.kill('SIGINT');
      await dash.exit(30_000);
    }
  });

  test("the config file's zk.tls (paths relative to the file) does the same", async () => {
    const root = await zk.chroot('config');
    const file = join(tmp, 'farm.yaml');
    writeFileSync(
      file,
      [
        'zk:',
        `  connect: ${root}`,
        '  tls:',
        '    ca: ca.pem',
        '    cert: client.pem',
        '    key: client-key.pem',
        `workdir: ${join(tmp, 'w3')}`,
        'roles:',
        '  - {type: master}',
        '  - {type: worker}',
      ].join('\n'),
    );
    const farm = new Cli(['--config', file], { env });
    try {
      await farm.waitForErr(READY, 120_000);
      const submitted = await cli(['submit', '--zk', root, ...tlsFlags(), TASK, '--wait']);
      assert.equal(submitted.code, 0, submitted.stderr);
    } finally {
      farm.proc.kill('SIGINT');
      await farm.exit(60_000);
    }
  });

  test('without TLS, or TLS without a CA: one line that says what to give, exit 1, nothing started', async () => {
    const root = await zk.chroot('mistakes');
    const plain = await cli(['status', '--zk', root, '--connect-timeout', '20000']);
    assert.equal(plain.code, 1);
    assert.match(plain.stderr, /speaks TLS .*--zk-tls/);
    const noCa = await cli(['--zk', root, '--zk-tls', '--workdir', join(tmp, 'w4')]);
    assert.equal(noCa.code, 1);
    assert.match(noCa.stderr, /needs the CA certificate .*--zk-ca/);
    assert.doesNotMatch(noCa.stderr, /ready/);
    const embeddedWithFiles = await cli(['--zk-ca', files.ca, '--workdir', join(tmp, 'w5')]);
    assert.equal(embeddedWithFiles.code, 2);
    assert.match(embeddedWithFiles.stderr, /--zk-ca .*the embedded ZooKeeper makes its own certificates/);
  });
});
