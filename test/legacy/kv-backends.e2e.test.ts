// The classic cluster on real etcd and ZooKeeper: `swarm join` registers the engines,
// `swarm list` prints them, two `swarm manage --replication` elect a primary, the docker
// CLI works through either, and a primary killed -9 is replaced in seconds.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { startTestbed, type Testbed } from '../testbed/index.js';
import { startEtcd, startZookeeper } from '../support/kvservers.js';
import { docker, dockerRun, waitFor } from '../support/docker-cli.js';
import { spawnSwarm, startManager, swarmBin, type ManagerProcess, type SwarmProcess } from '../support/manager.js';
import { freePort } from '../support/ports.js';
import { makeTestCerts } from '../support/certs.js';

let bed: Testbed;

before(async () => {
  bed = await startTestbed({ engines: 3 });
});

after(async () => {
  await bed?.close();
});

function list(discovery: string, extra: string[] = []): Promise<string[]> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [swarmBin, 'list', ...extra, discovery], { timeout: 20_000 }, (err, stdout, stderr) => (err ? reject(new Error(stderr.toString())) : resolve(stdout.toString().split('\n').filter(Boolean).sort()))),
  );
}

async function role(host: string): Promise<string> {
  return /Role: (\w+)/.exec((await dockerRun(host, ['info'], { timeoutMs: 5000 })).stdout)?.[1] ?? 'down';
}

const backends = [
  { scheme: 'etcd', start: startEtcd },
  { scheme: 'zk', start: startZookeeper },
];

for (const { scheme, start } of backends) {
  describe(`classic cluster over ${scheme}://`, { timeout: 5 * 60_000 }, () => {
    let server: Awaited<ReturnType<typeof start>>;
    const joins: SwarmProcess[] = [];
    const managers: ManagerProcess[] = [];
    let discovery = '';

    before(async () => {
      server = await start();
      discovery = `${scheme}://${server.endpoint}/cluster`;
    });

    after(async () => {
      for (const m of managers) await m.stop();
      for (const j of joins) await j.stop();
      await server?.stop();
    });

    test('join, list, replicated managers, the docker CLI through both, failover after kill -9', async () => {
      for (const e of bed.engines) joins.push(spawnSwarm(['join', '--advertise', e.hostPort, '--heartbeat', '1s', '--ttl', '4s', discovery]));
      await waitFor('every engine listed', async () => (await list(discovery).catch(() => [])).length === 3, 20_000);
      assert.deepEqual(await list(discovery), bed.engines.map((e) => e.hostPort).sort());
      for (const port of [await freePort(), await freePort()]) {
        managers.push(await startManager(['-H', `127.0.0.1:${port}`, '--replication', '--advertise', `127.0.0.1:${port}`, '--replication-ttl', '4s', '--heartbeat', '1s', discovery]));
      }
      await waitFor('one primary and one replica', async () => (await Promise.all(managers.map((m) => role(m.host)))).sort().join() === 'primary,replica', 30_000);
      for (const m of managers) {
        await waitFor('engines healthy', async () => (await docker(m.host, ['info'])).split('Status: Healthy').length - 1 === 3, 30_000);
        assert.equal(await docker(m.host, ['run', '--rm', 'busybox', 'echo', scheme]), scheme);
      }
      const roles = await Promise.all(managers.map((m) => role(m.host)));
      const primary = managers[roles.indexOf('primary')];
      const replica = managers[roles.indexOf('replica')];
      assert.ok(primary && replica);
      primary.child.kill('SIGKILL');
      const t0 = Date.now();
      await waitFor('the replica to take over', async () => (await role(replica.host)) === 'primary', 30_000, 100);
      process.stderr.write(`# ${scheme}: takeover after kill -9 of the primary in ${Date.now() - t0} ms\n`);
      assert.equal(await docker(replica.host, ['run', '--rm', 'busybox', 'echo', 'after failover']), 'after failover');
      // A join that stops cleanly leaves at once.
      await joins[0]?.stop();
      await waitFor('the engine gone from the list', async () => (await list(discovery)).length === 2, 10_000);
    });
  });
}

describe('etcd over TLS: --discovery-opt kv.cacertfile, kv.certfile, kv.keyfile', { timeout: 3 * 60_000 }, () => {
  test('join and list with the store\'s certificates; without them the store refuses and list fails naming it', async () => {
    const certs = await makeTestCerts();
    const server = await startEtcd({ tls: { ca: certs.ca, cert: certs.server.cert, key: certs.server.key } });
    const discovery = `etcd://${server.endpoint}/secure`;
    const opts = ['--discovery-opt', `kv.cacertfile=${certs.ca}`, '--discovery-opt', `kv.certfile=${certs.client.cert}`, '--discovery-opt', `kv.keyfile=${certs.client.key}`];
    const e0 = bed.engines[0];
    assert.ok(e0);
    const join = spawnSwarm(['join', '--advertise', e0.hostPort, '--heartbeat', '1s', '--ttl', '4s', ...opts, discovery]);
    try {
      await waitFor('the engine registered over TLS', async () => (await list(discovery, opts).catch((): string[] => [])).includes(e0.hostPort), 20_000);
      await assert.rejects(list(discovery, ['--timeout', '3s']), /etcd/, 'a client without the certificates was answered, or the error does not name the store');
    } finally {
      await join.stop();
      await server.stop();
      certs.remove();
    }
  });
});
