// A classic cluster as users ran it: engines registered by `swarm join` in a Consul store,
// two managers with --replication, the real docker CLI against either. Failure cases: a
// join that dies, a primary killed -9, the store restarted, an engine killed under a
// container with a reschedule policy.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { startTestbed, type Testbed } from '../testbed/index.js';
import { startConsulDev, type ConsulDev } from '../../src/consuldev/index.js';
import { docker, dockerRun, waitFor } from '../support/docker-cli.js';
import { spawnSwarm, startManager, swarmBin, type ManagerProcess, type SwarmProcess } from '../support/manager.js';
import { freePorts } from '../support/ports.js';

let bed: Testbed;
let consul: ConsulDev;
let discovery: string;
const joins: SwarmProcess[] = [];
const managers: ManagerProcess[] = [];

function swarmList(): Promise<string[]> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [swarmBin, 'list', discovery], { timeout: 20_000 }, (err, stdout, stderr) => (err ? reject(new Error(stderr.toString())) : resolve(stdout.toString().split('\n').filter(Boolean)))),
  );
}

async function healthyCount(host: string): Promise<number> {
  const info = await docker(host, ['info']).catch(() => '');
  return info.split('Status: Healthy').length - 1;
}

async function role(host: string): Promise<string> {
  const info = await docker(host, ['info']).catch(() => '');
  return /Role: (\w+)/.exec(info)?.[1] ?? 'down';
}

describe('classic cluster over Consul: join, list, replication, rescheduling', { timeout: 10 * 60_000 }, () => {
  before(async () => {
    bed = await startTestbed({ engines: 3 });
    // Sessions may be short here so that expiry takes seconds; the store still invalidates
    // a session only after up to twice its TTL, as Consul does.
    consul = await startConsulDev({ host: '127.0.0.1', port: 0, minSessionTtlMs: 1000 });
    discovery = `consul://${consul.address}/swarm`;
    for (const e of bed.engines) joins.push(spawnSwarm(['join', '--advertise', e.hostPort, '--heartbeat', '1s', '--ttl', '3s', discovery]));
    const flags = ['--heartbeat', '1s', '--engine-refresh-min-interval', '1s', '--engine-refresh-max-interval', '2s', '--engine-failure-retry', '2', '--replication', '--replication-ttl', '2s'];
    // --advertise must name the listening address, so the ports are chosen first.
    for (const port of await freePorts(2)) managers.push(await startManager([...flags, '-H', `127.0.0.1:${port}`, '--advertise', `127.0.0.1:${port}`, discovery]));
  });

  after(async () => {
    for (const m of managers) await m.stop();
    for (const j of joins) await j.stop();
    await consul?.close();
    await bed?.close();
  });

  test('join registers every engine; list prints them; both managers see them, one primary', async () => {
    await waitFor('three registrations', async () => (await swarmList()).length === 3, 20_000);
    assert.deepEqual((await swarmList()).sort(), bed.engines.map((e) => e.hostPort).sort());
    const [m1, m2] = managers;
    assert.ok(m1 && m2);
    await waitFor('both managers see 3 healthy engines', async () => (await healthyCount(m1.host)) === 3 && (await healthyCount(m2.host)) === 3, 30_000);
    const roles = [await role(m1.host), await role(m2.host)].sort();
    assert.deepEqual(roles, ['primary', 'replica']);
    const replica = (await role(m1.host)) === 'replica' ? m1 : m2;
    const primary = replica === m1 ? m2 : m1;
    assert.match(await docker(replica.host, ['info']), new RegExp(`Primary: ${primary.host.replace('tcp://', '').replace(/\./g, '\\.')}`));
    // A call to the replica is served by the primary.
    const id = await docker(replica.host, ['run', '-d', '--name', 'via-replica', 'busybox', 'sleep', '300']);
    assert.equal(await docker(primary.host, ['inspect', '-f', '{{.Id}}', 'via-replica']), id);
    assert.equal(await docker(replica.host, ['run', '--rm', 'busybox', 'echo', 'attached through the replica']), 'attached through the replica');
    await docker(primary.host, ['rm', '-f', 'via-replica']);
  });

  test('an engine whose join dies disappears after the TTL; a clean leave is immediate', async () => {
    const j2 = joins[2];
    const e2 = bed.engines[2];
    assert.ok(j2 && e2);
    await j2.kill();
    await waitFor('the dead join to expire', async () => !(await swarmList()).includes(e2.hostPort), 30_000);
    joins[2] = spawnSwarm(['join', '--advertise', e2.hostPort, '--heartbeat', '1s', '--ttl', '3s', discovery]);
    await waitFor('re-registration', async () => (await swarmList()).includes(e2.hostPort), 10_000);
    const j1 = joins[1];
    const e1 = bed.engines[1];
    assert.ok(j1 && e1);
    await j1.stop();
    assert.ok(!(await swarmList()).includes(e1.hostPort), 'SIGTERM removes the registration at once');
    joins[1] = spawnSwarm(['join', '--advertise', e1.hostPort, '--heartbeat', '1s', '--ttl', '3s', discovery]);
    await waitFor('re-registration', async () => (await swarmList()).length === 3, 10_000);
  });

  test('the store restarted under running managers: engines are kept, joins re-register', async () => {
    const roles = await Promise.all(managers.map((x) => role(x.host)));
    const m = managers[roles.indexOf('primary')];
    assert.ok(m, `roles: ${roles.join(', ')}`);
    const [host = '127.0.0.1', port = '0'] = consul.address.split(':');
    await consul.close();
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await healthyCount(m.host), 3, 'no engine dropped while the store is down');
    consul = await startConsulDev({ host, port: Number(port), minSessionTtlMs: 1000 });
    await waitFor('registrations back in the new store', async () => (await swarmList()).length === 3, 15_000);
    await waitFor('a primary elected again', async () => (await Promise.all(managers.map((x) => role(x.host)))).includes('primary'), 20_000);
    assert.equal(await healthyCount(m.host), 3);
    assert.equal(await docker(m.host, ['run', '--rm', 'busybox', 'echo', 'after the store restart']), 'after the store restart');
  });

  test('kill -9 the primary: the replica takes over and the CLI keeps working against it', async () => {
    const roles = await Promise.all(managers.map((x) => role(x.host)));
    const primary = managers[roles.indexOf('primary')];
    const replica = managers[roles.indexOf('replica')];
    assert.ok(primary && replica, `roles: ${roles.join(', ')}`);
    primary.child.kill('SIGKILL');
    const t0 = Date.now();
    await waitFor('the replica to become primary', async () => (await role(replica.host)) === 'primary', 30_000, 100);
    process.stderr.write(`takeover after kill -9 of the primary: ${Date.now() - t0} ms\n`);
    assert.equal(await docker(replica.host, ['run', '--rm', 'busybox', 'echo', 'new primary']), 'new primary');
  });

  test('a container with reschedule:on-node-failure moves when its engine dies; the duplicate goes when it returns', async () => {
    const roles = await Promise.all(managers.map((x) => role(x.host)));
    const primary = managers[roles.indexOf('primary')];
    assert.ok(primary);
    const host = primary.host;
    const e0 = bed.engines[0];
    assert.ok(e0);
    await docker(host, ['run', '-d', '--name', 'survivor', '-e', 'reschedule:on-node-failure', '-e', `constraint:node==~${e0.name}`, 'busybox', 'sleep', '600']);
    assert.equal(await docker(host, ['inspect', '-f', '{{.Node.Name}}', 'survivor']), e0.name);
    await e0.kill();
    const t0 = Date.now();
    await waitFor(
      'the container running on another engine',
      async () => {
        const r = await dockerRun(host, ['ps', '--filter', 'name=survivor', '--format', '{{.Names}} {{.Status}}']);
        return r.stdout.split('\n').some((l) => /\/survivor Up/.test(l) && !l.startsWith(`${e0.name}/`));
      },
      30_000,
      100,
    );
    process.stderr.write(`rescheduled after the engine's kill: ${Date.now() - t0} ms\n`);
    assert.match(primary.log(), /Rescheduled container [0-9a-f]{12} from /);
    await e0.start();
    await waitFor('the duplicate removed from the returning engine', async () => (await docker(e0.url, ['ps', '-a', '--filter', 'name=survivor', '-q'])) === '', 30_000);
    assert.match(primary.log(), /Removed duplicate container/);
    await docker(host, ['rm', '-f', 'survivor']);
  });
});
