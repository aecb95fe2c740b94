// Failure figures of a classic cluster over the Consul-compatible store, with classic's
// default flags (refresh 30-60 s, failure retry 3, replication TTL 20 s, join heartbeat
// 60 s / TTL 180 s): the time from an engine's death to its reschedulable container
// running elsewhere, and from the primary's kill -9 to a replica answering as primary.
import { startTestbed } from '../testbed/index.js';
import { startConsulDev } from '../../src/consuldev/index.js';
import { spawnSwarm, startManager, type ManagerProcess } from '../support/manager.js';
import { docker, dockerRun, waitFor } from '../support/docker-cli.js';
import { metric, progress } from './stats.js';
import { freePort } from '../support/ports.js';

async function role(host: string): Promise<string> {
  const r = await dockerRun(host, ['info'], { timeoutMs: 5000 });
  return /Role: (\w+)/.exec(r.stdout)?.[1] ?? 'down';
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

export async function benchLegacyFailover(trials = 3): Promise<void> {
  progress('failover: 3 engines, the Consul-compatible store, 3 joins, 2 replicated managers (default flags)');
  const bed = await startTestbed({ engines: 3 });
  const consul = await startConsulDev({ host: '127.0.0.1', port: 0 });
  const discovery = `consul://${consul.address}/swarm`;
  const joins = bed.engines.map((e) => spawnSwarm(['join', '--advertise', e.hostPort, discovery]));
  const startOne = async (port: number): Promise<ManagerProcess> => startManager(['-H', `127.0.0.1:${port}`, '--replication', '--advertise', `127.0.0.1:${port}`, discovery]);
  const ports = [await freePort(), await freePort()];
  const managers: ManagerProcess[] = [];
  try {
    for (const p of ports) managers.push(await startOne(p));
    const healthy = async (host: string): Promise<boolean> => (await dockerRun(host, ['info'])).stdout.split('Status: Healthy').length - 1 === 3;
    await waitFor('managers see 3 healthy engines', async () => (await Promise.all(managers.map((m) => healthy(m.host)))).every(Boolean), 60_000);

    const failovers: number[] = [];
    for (let t = 0; t < trials; t++) {
      const roles = await Promise.all(managers.map((m) => role(m.host)));
      const pi = roles.indexOf('primary');
      const primary = managers[pi];
      const replica = managers[1 - pi];
      if (!primary || !replica) throw new Error(`no primary/replica pair: ${roles.join(', ')}`);
      progress(`failover trial ${t + 1}/${trials}: kill -9 the primary`);
      primary.child.kill('SIGKILL');
      const t0 = Date.now();
      await waitFor('the replica answering as primary', async () => (await role(replica.host)) === 'primary', 120_000, 50);
      failovers.push((Date.now() - t0) / 1000);
      managers[pi] = await startOne(ports[pi] ?? 0);
      await waitFor('the restarted manager as replica', async () => (await role(managers[pi]?.host ?? '')) === 'replica', 60_000);
    }
    metric('legacy_primary_failover_median_s', median(failovers), 's');
    metric('legacy_primary_failover_max_s', Math.max(...failovers), 's');

    const reschedules: number[] = [];
    for (let t = 0; t < trials; t++) {
      const host = managers[(await Promise.all(managers.map((m) => role(m.host)))).indexOf('primary')]?.host ?? '';
      const victim = bed.engines[t % bed.engines.length];
      if (!victim) throw new Error('no engine');
      await docker(host, ['run', '-d', '--name', `movable${t}`, '-e', 'reschedule:on-node-failure', '-e', `constraint:node==~${victim.name}`, 'busybox', 'sleep', '600']);
      progress(`reschedule trial ${t + 1}/${trials}: kill -9 engine ${victim.name}`);
      await victim.kill();
      const t0 = Date.now();
      await waitFor(
        'the container running on another engine',
        async () => (await dockerRun(host, ['ps', '--filter', `name=movable${t}`, '--format', '{{.Names}}'])).stdout.split('\n').some((n) => n.endsWith(`/movable${t}`) && !n.startsWith(`${victim.name}/`)),
        180_000,
        50,
      );
      reschedules.push((Date.now() - t0) / 1000);
      await victim.start();
      await waitFor('the engine healthy again', () => healthy(host), 60_000);
      await docker(host, ['rm', '-f', `movable${t}`]);
    }
    metric('legacy_reschedule_median_s', median(reschedules), 's');
    metric('legacy_reschedule_max_s', Math.max(...reschedules), 's');
  } finally {
    for (const m of managers) await m.stop();
    for (const j of joins) await j.stop();
    await consul.close();
    await bed.close();
  }
}
