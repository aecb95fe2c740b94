// The scheduler's plain-data view of the pool: each engine's cached containers
// (plus creates placed there and not yet confirmed) and images, as SchedNodes.
import type { PublishedPort, PortProtocol, SchedContainer, SchedNode } from '../scheduler/types.js';
import type { Engine, CachedContainer, PendingCreate } from './engine.js';
import type { PortBinding } from '../../src/docker/types.js';

function protocolOf(p: string): PortProtocol {
  return p === 'udp' || p === 'sctp' ? p : 'tcp';
}

/** Host ports held by a set of port bindings ("80/tcp" -> [{HostPort: "8080"}]). */
export function bindingsToPorts(bindings: Record<string, PortBinding[] | null> | null | undefined): PublishedPort[] {
  const out: PublishedPort[] = [];
  for (const [key, list] of Object.entries(bindings ?? {})) {
    const [, proto = 'tcp'] = key.split('/');
    for (const b of list ?? []) {
      const hostPort = Number(b.HostPort ?? '0');
      if (hostPort > 0) out.push({ hostIp: b.HostIp ?? '', hostPort, protocol: protocolOf(proto) });
    }
  }
  return out;
}

/**
 * Each cache entry's view, made once: a create looks at every container of every engine,
 * and the entries only change by being replaced.
 */
const views = new WeakMap<CachedContainer, SchedContainer>();

function cachedToSched(c: CachedContainer): SchedContainer {
  let view = views.get(c);
  if (!view) {
    view = schedViewOf(c);
    views.set(c, view);
  }
  return view;
}

function schedViewOf(c: CachedContainer): SchedContainer {
  const s = c.summary;
  const hc = c.inspect?.HostConfig;
  const ports: PublishedPort[] = bindingsToPorts(hc?.PortBindings);
  // Running containers report the ports they actually hold (including random ones).
  for (const p of s.Ports ?? []) {
    if (p.PublicPort && !ports.some((q) => q.hostPort === p.PublicPort && q.protocol === protocolOf(p.Type))) {
      ports.push({ hostIp: p.IP ?? '', hostPort: p.PublicPort, protocol: protocolOf(p.Type) });
    }
  }
  const networkMode = hc?.NetworkMode ?? s.HostConfig?.NetworkMode ?? 'default';
  if (networkMode === 'host') {
    for (const key of Object.keys(c.inspect?.Config.ExposedPorts ?? {})) {
      const [port = '0', proto = 'tcp'] = key.split('/');
      ports.push({ hostIp: '', hostPort: Number(port), protocol: protocolOf(proto) });
    }
  }
  return {
    id: s.Id,
    names: s.Names.map((n) => n.replace(/^\//, '')),
    image: s.Image,
    imageId: s.ImageID,
    labels: s.Labels ?? {},
    state: s.State,
    cpuShares: hc?.CpuShares ?? 0,
    memory: hc?.Memory ?? 0,
    publishedPorts: ports,
    networkMode,
  };
}

function pendingToSched(p: PendingCreate): SchedContainer {
  return {
    id: `pending-${p.token}`,
    names: p.name ? [p.name] : [],
    image: p.image,
    labels: p.labels,
    state: 'pending',
    cpuShares: p.cpuShares,
    memory: p.memory,
    publishedPorts: bindingsToPorts(p.portBindings),
    networkMode: p.networkMode,
  };
}

export function schedNodeOf(engine: Engine): SchedNode {
  const info = engine.info;
  return {
    id: engine.id,
    name: engine.name,
    addr: engine.addr,
    ip: engine.ip,
    healthy: engine.healthy,
    healthIndicator: engine.healthy ? Math.max(0, 100 - engine.failures * 10) : 0,
    labels: engine.labels,
    totalCpus: info?.NCPU ?? 0,
    totalMemory: info?.MemTotal ?? 0,
    containers: containersOf(engine),
    images: engine.images.map((i) => ({ id: i.Id, repoTags: i.RepoTags ?? [], repoDigests: i.RepoDigests ?? [] })),
  };
}

function containersOf(engine: Engine): SchedContainer[] {
  const out: SchedContainer[] = [];
  for (const c of engine.containers.values()) out.push(cachedToSched(c));
  for (const p of engine.pending.values()) out.push(pendingToSched(p));
  return out;
}
