// TLS end to end, as classic Swarm users ran it: engines listening with --tlsverify, the
// manager using one CA/cert/key both on its own listener and towards the engines, and
// the real docker CLI with --tlsverify --tlscacert --tlscert --tlskey.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { startTestbed, type Testbed } from '../testbed/index.js';
import { makeTestCerts, type TestCerts } from '../support/certs.js';
import { debianDocker, docker, dockerRun, dockerSpawn, modernDocker, waitFor } from '../support/docker-cli.js';
import { startManager, type ManagerProcess } from '../support/manager.js';

let bed: Testbed;
let certs: TestCerts;
let mgr: ManagerProcess;
/** tcp://127.0.0.1:PORT of the --tlsverify manager. */
let host: string;
/** The CLI flags of a client holding a certificate from the cluster's CA. */
let client: string[];

const fastRefresh = ['--engine-refresh-min-interval', '1s', '--engine-refresh-max-interval', '2s', '--engine-failure-retry', '2'];

function tlsFlags(c: TestCerts): string[] {
  return ['--tlsverify', '--tlscacert', c.ca, '--tlscert', c.server.cert, '--tlskey', c.server.key];
}

function nodesUrl(addrs: string[]): string {
  return `nodes://${addrs.join(',')}`;
}

/** The `└ Key: value` lines under the node listed at `addr` in `docker info`. */
function nodeFields(info: string, addr: string): Map<string, string> {
  const lines = info.split('\n');
  const at = lines.findIndex((l) => l.trimEnd().endsWith(`: ${addr}`));
  const fields = new Map<string, string>();
  if (at < 0) return fields;
  for (const line of lines.slice(at + 1)) {
    const m = /^\s+└ ([^:]+): ?(.*)$/.exec(line);
    if (!m) break;
    fields.set(m[1] ?? '', m[2] ?? '');
  }
  return fields;
}

function healthyCount(info: string): number {
  return info.split('Status: Healthy').length - 1;
}

/** A plain-HTTP GET, for what the docker CLI will not send to a TLS port. */
function plainGet(target: string, path: string): Promise<{ status: number; body: string }> {
  const url = new URL(target.replace('tcp://', 'http://'));
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** One single-quoted shell word. */
function sh(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

describe('swarm manage with TLS over real --tlsverify engines', { timeout: 10 * 60_000 }, () => {
  before(async () => {
    // The engines' addresses are known once the testbed has its slot: the certificate
    // is made then, with those addresses and the bridge address in its SANs.
    bed = await startTestbed({
      engines: 2,
      labels: [{ zone: 'a' }, { zone: 'b' }],
      tls: async ({ bridgeAddress, engineAddresses }) => {
        certs = await makeTestCerts([bridgeAddress, ...engineAddresses]);
        return { ca: certs.ca, cert: certs.server.cert, key: certs.server.key };
      },
    });
    client = ['--tlsverify', '--tlscacert', certs.ca, '--tlscert', certs.client.cert, '--tlskey', certs.client.key];
    mgr = await startManager([...tlsFlags(certs), ...fastRefresh, nodesUrl(bed.engines.map((e) => e.hostPort))]);
    host = mgr.host;
    await waitFor('every engine Healthy over TLS', async () => healthyCount(await docker(host, [...client, 'info'])) === bed.engines.length);
  });

  after(async () => {
    await mgr?.stop();
    await bed?.close();
    certs?.remove();
  });

  test('the engines listen with --tlsverify on 2376; docker info through the manager shows them', async () => {
    for (const e of bed.engines) {
      assert.equal(e.port, 2376);
      assert.equal(e.url, `tcp://${e.address}:2376`);
      assert.equal(await docker(e.url, [...client, 'info', '--format', '{{.Name}}']), e.name);
      const bare = await dockerRun(e.url, ['version', '--format', '{{.Server.Version}}']);
      assert.notEqual(bare.code, 0, 'an engine started with --tlsverify must refuse plain HTTP');
    }
    const version = await docker(host, [...client, 'version', '--format', '{{.Server.Version}}']);
    assert.equal(version, 'swarm/1.2.9');
    const info = await docker(host, [...client, 'info']);
    assert.match(info, /Nodes: 2/);
    for (const e of bed.engines) {
      assert.match(info, new RegExp(`${e.name}: ${e.hostPort.replace(/\./g, '\\.')}`));
      const fields = nodeFields(info, e.hostPort);
      assert.equal(fields.get('Status'), 'Healthy');
      assert.equal(fields.get('Error'), '(none)');
    }
    assert.match(info, /Labels: .*zone=a/);
  });

  test('run --rm with output, stdin through run -i, a large output arrives whole', async () => {
    assert.equal(await docker(host, [...client, 'run', '--rm', 'busybox', 'sh', '-c', 'echo first; sleep 0.3; echo second']), 'first\nsecond');
    assert.equal(await docker(host, [...client, 'run', '-i', '--rm', 'busybox', 'cat'], { input: 'from stdin\n' }), 'from stdin');
    const big = await docker(host, [...client, 'run', '--rm', 'busybox', 'sh', '-c', 'head -c 2000000 /dev/zero | tr "\\0" x']);
    assert.equal(big.length, 2_000_000);
    const failed = await dockerRun(host, [...client, 'run', '--rm', 'busybox', 'sh', '-c', 'echo bye >&2; exit 3']);
    assert.equal(failed.code, 3);
    assert.match(failed.stderr, /bye/);
  });

  test('exec with and without a tty (hijacked over TLS on both legs), logs, attach', async () => {
    const [e0] = bed.engines;
    assert.ok(e0);
    await docker(host, [...client, 'run', '-d', '--name', 'box', '-e', `constraint:node==${e0.name}`, 'busybox', 'sh', '-c', 'echo started; sleep 300']);
    assert.equal(await docker(host, [...client, 'exec', 'box', 'sh', '-c', 'echo out; echo err >&2']), 'out');
    assert.equal(await docker(host, [...client, 'exec', '-i', 'box', 'cat'], { input: 'piped\n' }), 'piped');
    const line = [modernDocker, '-H', host, ...client, 'exec', '-it', 'box', 'sh', '-c', 'echo tty:$(tty)'].map(sh).join(' ');
    const tty = await new Promise<string>((resolve, reject) => {
      execFile('script', ['-qec', line, '/dev/null'], { timeout: 30_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout.toString())));
    });
    assert.match(tty, /tty:\/dev\/pts\/\d+/);
    await waitFor('logs over TLS', async () => (await docker(host, [...client, 'logs', 'box'])) === 'started', 10_000);
    await docker(host, [...client, 'run', '-d', '--name', 'speaker', 'busybox', 'sh', '-c', 'sleep 2; echo attached-output']);
    const attach = dockerSpawn(host, [...client, 'attach', '--no-stdin', 'speaker']);
    assert.equal(await attach.exited, 0, attach.output());
    assert.match(attach.output(), /attached-output/);
    await docker(host, [...client, 'rm', '-f', 'box', 'speaker']);
  });

  test("Debian's docker 20.10 client works over TLS too", async () => {
    assert.equal(await docker(host, [...client, 'run', '--rm', 'busybox', 'echo', 'old client'], { bin: debianDocker }), 'old client');
  });

  test('a client without a certificate is refused with a TLS error; the manager keeps serving', async () => {
    const noCert = await dockerRun(host, ['--tlsverify', '--tlscacert', certs.ca, 'version', '--format', '{{.Server.Version}}']);
    assert.notEqual(noCert.code, 0);
    assert.match(noCert.stderr, /tls: (certificate required|bad certificate)/);
    assert.equal(healthyCount(await docker(host, [...client, 'info'])), bed.engines.length);
  });

  test('a client certificate from another CA is refused; a client trusting another CA refuses the manager', async () => {
    const intruder = await dockerRun(host, ['--tlsverify', '--tlscacert', certs.ca, '--tlscert', certs.otherClient.cert, '--tlskey', certs.otherClient.key, 'version', '--format', '{{.Server.Version}}']);
    assert.notEqual(intruder.code, 0);
    assert.match(intruder.stderr, /tls: (certificate required|bad certificate|unknown certificate authority)/);
    const distrust = await dockerRun(host, ['--tlsverify', '--tlscacert', certs.otherCa, '--tlscert', certs.client.cert, '--tlskey', certs.client.key, 'version', '--format', '{{.Server.Version}}']);
    assert.notEqual(distrust.code, 0);
    assert.match(distrust.stderr, /x509: certificate signed by unknown authority/);
    assert.equal(await docker(host, [...client, 'run', '--rm', 'busybox', 'echo', 'still serving']), 'still serving');
  });

  test('plain HTTP to the TLS port gets a 400 that says why, as from dockerd', async () => {
    const cli = await dockerRun(host, ['version', '--format', '{{.Server.Version}}']);
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr, /Client sent an HTTP request to an HTTPS server/);
    const raw = await plainGet(host, '/_ping');
    assert.equal(raw.status, 400);
    assert.match(raw.body, /Client sent an HTTP request to an HTTPS server/);
    assert.equal(healthyCount(await docker(host, [...client, 'info'])), bed.engines.length);
  });

  test('a --tls manager (no verify) serves a client without a certificate and still reaches --tlsverify engines', async () => {
    const tlsOnly = await startManager(['--tls', '--tlscacert', certs.ca, '--tlscert', certs.server.cert, '--tlskey', certs.server.key, ...fastRefresh, nodesUrl(bed.engines.map((e) => e.hostPort))]);
    try {
      // The CLI's --tls (without verify) still insists on reading a CA file, but sends no certificate.
      const noCert = ['--tls', '--tlscacert', certs.ca];
      await waitFor('engines Healthy through the --tls manager', async () => healthyCount(await docker(tlsOnly.host, [...noCert, 'info'])) === bed.engines.length);
      assert.equal(await docker(tlsOnly.host, [...noCert, 'run', '--rm', 'busybox', 'echo', 'no client cert']), 'no client cert');
      // A client that verifies the manager still can: the server certificate is the CA's.
      assert.equal(await docker(tlsOnly.host, ['--tlsverify', '--tlscacert', certs.ca, 'version', '--format', '{{.Server.Version}}']), 'swarm/1.2.9');
    } finally {
      await tlsOnly.stop();
    }
  });

  test("engines refusing the manager's certificate, or the manager refusing theirs: the engine Error says which", async () => {
    const engines = nodesUrl(bed.engines.map((e) => e.hostPort));
    // The manager presents a certificate from a CA the engines do not trust (--tls: it
    // verifies nobody, so the client can reach it without a certificate).
    const untrusted = await startManager(['--tls', '--tlscacert', certs.ca, '--tlscert', certs.otherClient.cert, '--tlskey', certs.otherClient.key, ...fastRefresh, engines]);
    // The manager trusts another CA than the one that signed the engines' certificates
    // (its clients must then hold a certificate from that CA).
    const distrusting = await startManager(['--tlsverify', '--tlscacert', certs.otherCa, '--tlscert', certs.otherClient.cert, '--tlskey', certs.otherClient.key, ...fastRefresh, engines]);
    try {
      const [e0] = bed.engines;
      assert.ok(e0);
      const errorOf = async (mgrHost: string, flags: string[]): Promise<string | undefined> => {
        const fields = nodeFields(await docker(mgrHost, [...flags, 'info']), e0.hostPort);
        return fields.get('Status') === 'Unhealthy' && fields.get('Error') !== '(none)' ? fields.get('Error') : undefined;
      };
      let error: string | undefined;
      await waitFor('the engine refuses the manager', async () => (error = await errorOf(untrusted.host, ['--tls', '--tlscacert', certs.ca])) !== undefined);
      assert.match(error ?? '', /^TLS handshake failed: the engine [\d.]+:2376 refused the manager's certificate: --tlscert must be signed by the CA the engine trusts/);
      const asOther = ['--tls', '--tlscacert', certs.otherCa, '--tlscert', certs.otherClient.cert, '--tlskey', certs.otherClient.key];
      await waitFor('the manager refuses the engine', async () => (error = await errorOf(distrusting.host, asOther)) !== undefined);
      assert.match(error ?? '', /^TLS handshake failed: the certificate of the engine [\d.]+:2376 does not verify against --tlscacert \(unable to verify the first certificate\)/);
    } finally {
      await distrusting.stop();
      await untrusted.stop();
    }
  });

  test('TLS on one side only: docker info names the mismatch in the engine Error', async () => {
    const plain = await startTestbed({ engines: 1, image: false });
    const tlsManager = await startManager([...tlsFlags(certs), ...fastRefresh, nodesUrl([...bed.engines.map((e) => e.hostPort), ...plain.engines.map((e) => e.hostPort)])]);
    const plainManager = await startManager([...fastRefresh, nodesUrl(bed.engines.map((e) => e.hostPort))]);
    try {
      const [plainEngine] = plain.engines;
      assert.ok(plainEngine);
      // A TLS manager and a plain engine: the engine is Unhealthy, the error says TLS.
      let fields = new Map<string, string>();
      await waitFor('the plain engine Unhealthy through the TLS manager', async () => {
        fields = nodeFields(await docker(tlsManager.host, [...client, 'info']), plainEngine.hostPort);
        return fields.get('Status') === 'Unhealthy' && (fields.get('Error') ?? '') !== '(none)';
      });
      assert.match(fields.get('Error') ?? '', /^TLS handshake failed: the engine [\d.]+:2375 does not speak TLS/);
      assert.match(fields.get('Error') ?? '', /--tlsverify/);
      const info = await docker(tlsManager.host, [...client, 'info']);
      assert.equal(healthyCount(info), bed.engines.length, 'the TLS engines stay Healthy beside it');
      assert.equal(await docker(tlsManager.host, [...client, 'run', '--rm', 'busybox', 'echo', 'placed on a TLS engine']), 'placed on a TLS engine');

      // A plain manager and --tlsverify engines: Unhealthy, and the error says to use TLS.
      const [e0] = bed.engines;
      assert.ok(e0);
      await waitFor('TLS engines Unhealthy through a plain manager', async () => {
        fields = nodeFields(await docker(plainManager.host, ['info']), e0.hostPort);
        return fields.get('Status') === 'Unhealthy' && (fields.get('Error') ?? '') !== '(none)';
      });
      assert.match(fields.get('Error') ?? '', /speaks only TLS .*Client sent an HTTP request to an HTTPS server.*--tlsverify/);
    } finally {
      await plainManager.stop();
      await tlsManager.stop();
      await plain.close();
    }
  });
});
