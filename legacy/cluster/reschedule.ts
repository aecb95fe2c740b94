// Rescheduling on node failure, as classic Swarm did it: when an engine turns Unhealthy,
// the primary recreates each of its containers whose reschedule policy is
// "on-node-failure" on a healthy engine chosen by the scheduler (same name, same
// configuration, same com.docker.swarm.id), and starts it if it was running. When the
// failed engine comes back, its stale copies of rescheduled containers are removed.
import type { Scheduler } from '../scheduler/index.js';
import { reschedulePolicies, SWARM_ID_LABEL } from '../scheduler/index.js';
import { log } from '../../src/log.js';
import type { Engine, CachedContainer } from './engine.js';
import type { EnginePool } from './pool.js';
import { schedNodeOf } from './sched-view.js';

const short = (id: string): string => id.slice(0, 12);

function wantsReschedule(c: CachedContainer): boolean {
  return reschedulePolicies(c.summary.Labels ?? {}).includes('on-node-failure');
}

function swarmIdOf(c: CachedContainer): string | undefined {
  return c.summary.Labels?.[SWARM_ID_LABEL];
}

/** Where else a container with this swarm ID exists (a rescheduled copy). */
function copyElsewhere(pool: EnginePool, not: Engine, swarmId: string): { engine: Engine; container: CachedContainer } | undefined {
  for (const engine of pool.list()) {
    if (engine === not || !engine.healthy) continue;
    for (const container of engine.containers.values()) if (swarmIdOf(container) === swarmId) return { engine, container };
  }
  return undefined;
}

async function rescheduleOne(pool: EnginePool, scheduler: Scheduler, from: Engine, old: CachedContainer): Promise<void> {
  const inspect = old.inspect;
  const swarmId = swarmIdOf(old);
  if (!inspect || !swarmId) return;
  if (copyElsewhere(pool, from, swarmId)) return; // already rescheduled (by us, or by a previous primary)
  const name = inspect.Name.replace(/^\//, '');
  const config = { ...(inspect.Config as Record<string, unknown>), HostConfig: inspect.HostConfig };
  const nodes = pool.known().filter((e) => e !== from).map(schedNodeOf);
  const result = scheduler.select({ name, config }, nodes);
  if (!result.ok) {
    log.error('Failed to reschedule container: no node can take it', { container: short(old.summary.Id), node: from.name, error: result.message });
    return;
  }
  const target = pool.engines.get(result.nodes[0]?.addr ?? '');
  if (!target) return;
  // The failed engine's copy leaves the cache now, so the name resolves to the new one.
  from.containers.delete(old.summary.Id);
  try {
    const created = await target.client.json<{ Id: string }>('POST', `/containers/create?name=${encodeURIComponent(name)}`, config);
    log.info(`Rescheduled container ${short(old.summary.Id)} from ${from.name} to ${target.name} as ${created.Id}`);
    if (old.summary.State === 'running') {
      log.info(`Container ${short(old.summary.Id)} was running, starting container ${created.Id}`);
      try {
        await target.client.json('POST', `/containers/${created.Id}/start`);
      } catch (err) {
        log.error(`Failed to start rescheduled container ${created.Id}`, { error: (err as Error).message });
      }
    }
    await target.refreshContainer(created.Id);
  } catch (err) {
    from.containers.set(old.summary.Id, old);
    log.error('Failed to reschedule container', { container: short(old.summary.Id), from: from.name, to: target.name, error: (err as Error).message });
  }
}

async function removeDuplicates(pool: EnginePool, returned: Engine): Promise<void> {
  for (const c of [...returned.containers.values()]) {
    const swarmId = swarmIdOf(c);
    if (!wantsReschedule(c) || !swarmId) continue;
    const copy = copyElsewhere(pool, returned, swarmId);
    if (!copy) continue;
    try {
      await returned.client.request('DELETE', `/containers/${c.summary.Id}?force=1`);
      returned.containers.delete(c.summary.Id);
      log.info(`Removed duplicate container ${short(c.summary.Id)} on ${returned.name}: it was rescheduled to ${copy.engine.name} as ${short(copy.container.summary.Id)}`);
    } catch (err) {
      log.error('Failed to remove a duplicate of a rescheduled container', { container: short(c.summary.Id), node: returned.name, error: (err as Error).message });
    }
  }
}

/** Watches engine health and reschedules while `isPrimary()` says this manager acts. */
export function startRescheduler(pool: EnginePool, scheduler: Scheduler, isPrimary: () => boolean): () => void {
  return pool.onStateChange((engine) => {
    if (!isPrimary()) return;
    if (engine.state === 'unhealthy') {
      const candidates = [...engine.containers.values()].filter(wantsReschedule);
      if (candidates.length === 0) return;
      log.info('Engine failed: rescheduling its containers', { node: engine.name, containers: candidates.length });
      void (async () => {
        for (const c of candidates) await rescheduleOne(pool, scheduler, engine, c);
      })();
    } else if (engine.state === 'healthy') {
      void removeDuplicates(pool, engine);
    }
  });
}
