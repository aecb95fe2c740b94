// Cluster-wide system calls: ping, version, info (with classic's per-node status rows),
// events (one merged stream, each event naming its node), df.
import { readFileSync } from 'node:fs';
import type { EngineEvent } from '../../src/docker/types.js';
import { jsonStream } from '../../src/docker/engine-client.js';
import { sendJson } from '../../src/docker/http.js';
import type { Engine } from '../cluster/engine.js';
import { isKnown } from '../cluster/pool.js';
import { enginePath, type ApiContext, type Call } from './context.js';

export const swarmVersion = '1.2.9';
const productVersion = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
})();
export const serverVersion = `swarm/${swarmVersion}`;
/** What we advertise when no engine has answered yet: the API of Docker 20.10. */
const defaultApi = { max: '1.41', min: '1.12' };

/** "1.41" as 1041: API versions compare as numbers (checked on every call: no arrays). */
function apiNumber(v: string): number {
  const dot = v.indexOf('.');
  return dot < 0 ? Number(v) * 1000 : Number(v.slice(0, dot)) * 1000 + Number(v.slice(dot + 1));
}

export function compareApi(a: string, b: string): number {
  return apiNumber(a) - apiNumber(b);
}

/**
 * The API versions every engine accepts: what the cluster as a whole speaks. Every call
 * checks its version against this: a plain loop over the engines, no lists built.
 */
export function apiRange(ctx: ApiContext): { max: string; min: string } {
  let range: { max: string; min: string } | undefined;
  for (const e of ctx.pool.engines.values()) {
    const v = e.version;
    if (v === undefined || !isKnown(e)) continue;
    if (range === undefined) {
      range = { max: v.ApiVersion, min: v.MinAPIVersion ?? defaultApi.min };
      continue;
    }
    if (compareApi(v.ApiVersion, range.max) < 0) range.max = v.ApiVersion;
    if (v.MinAPIVersion && compareApi(v.MinAPIVersion, range.min) > 0) range.min = v.MinAPIVersion;
  }
  return range ?? defaultApi;
}

export function pingHeaders(ctx: ApiContext): Record<string, string> {
  return {
    'API-Version': apiRange(ctx).max,
    'OSType': 'linux',
    'Docker-Experimental': 'false',
    'Swarm': 'inactive',
    'Cache-Control': 'no-cache, no-store, must-revalidate',
    'Pragma': 'no-cache',
  };
}

export function ping(call: Call): void {
  const headers = { ...pingHeaders(call.ctx), 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': '2' };
  call.res.writeHead(200, headers);
  call.res.end(call.req.method === 'HEAD' ? undefined : 'OK');
}

export function version(call: Call): void {
  const { max, min } = apiRange(call.ctx);
  const first = call.ctx.pool.known()[0];
  sendJson(call.res, 200, {
    Platform: { Name: 'swarmshift' },
    Components: [{ Name: 'swarmshift', Version: productVersion, Details: { ClassicSwarm: swarmVersion } }],
    Version: serverVersion,
    ApiVersion: max,
    MinAPIVersion: min,
    GitCommit: 'swarmshift',
    GoVersion: `node${process.versions.node}`,
    Os: 'linux',
    Arch: first?.version?.Arch ?? process.arch.replace('x64', 'amd64'),
    KernelVersion: first?.version?.KernelVersion ?? '',
    BuildTime: '',
  });
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : Number(v.toPrecision(4))} ${units[i]}`;
}

/** Classic's per-node rows of `docker info`. */
export function nodeRows(engine: Engine): Array<[string, string]> {
  const cs = [...engine.containers.values()].map((c) => c.summary.State);
  const running = cs.filter((s) => s === 'running').length;
  const paused = cs.filter((s) => s === 'paused').length;
  let cpus = 0;
  let memory = 0;
  for (const c of engine.containers.values()) {
    cpus += c.inspect?.HostConfig.CpuShares ?? 0;
    memory += c.inspect?.HostConfig.Memory ?? 0;
  }
  const labels = Object.entries(engine.labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  const state = engine.state === 'healthy' ? 'Healthy' : engine.state === 'pending' ? 'Pending' : 'Unhealthy';
  return [
    [` ${engine.name}`, engine.addr],
    ['  └ ID', engine.id],
    ['  └ Status', state],
    ['  └ Containers', `${cs.length} (${running} Running, ${paused} Paused, ${cs.length - running - paused} Stopped)`],
    ['  └ Reserved CPUs', `${cpus} / ${engine.info?.NCPU ?? 0}`],
    ['  └ Reserved Memory', `${bytes(memory)} / ${bytes(engine.info?.MemTotal ?? 0)}`],
    ['  └ Labels', labels],
    ['  └ Error', engine.lastError || '(none)'],
    ['  └ UpdatedAt', engine.updatedAt.toISOString().replace(/\.\d+Z$/, 'Z')],
    ['  └ ServerVersion', engine.info?.ServerVersion ?? ''],
  ];
}

export async function info(call: Call): Promise<void> {
  const { ctx } = call;
  await ctx.pool.settled();
  const engines = ctx.pool.list();
  const known = ctx.pool.known();
  let containers = 0;
  let runningN = 0;
  let pausedN = 0;
  const images = new Set<string>();
  for (const e of known) {
    for (const c of e.containers.values()) {
      containers++;
      if (c.summary.State === 'running') runningN++;
      if (c.summary.State === 'paused') pausedN++;
    }
    for (const i of e.images) images.add(i.Id);
  }
  const status: Array<[string, string]> = [['Role', ctx.manager.role]];
  if (ctx.manager.primary) status.push(['Primary', ctx.manager.primary]);
  status.push(['Strategy', ctx.manager.strategy], ['Filters', ctx.manager.filters.join(', ')], ['Nodes', String(engines.length)]);
  for (const e of engines) status.push(...nodeRows(e));
  const first = known[0]?.info;
  sendJson(call.res, 200, {
    ID: '',
    Containers: containers,
    ContainersRunning: runningN,
    ContainersPaused: pausedN,
    ContainersStopped: containers - runningN - pausedN,
    Images: images.size,
    Driver: '',
    DriverStatus: null,
    SystemStatus: status,
    Plugins: { Volume: null, Network: null, Authorization: null, Log: null },
    MemoryLimit: true,
    SwapLimit: true,
    CpuCfsPeriod: true,
    CpuCfsQuota: true,
    CPUShares: true,
    CPUSet: true,
    IPv4Forwarding: true,
    BridgeNfIptables: true,
    BridgeNfIp6tables: true,
    Debug: false,
    NFd: 0,
    OomKillDisable: true,
    NGoroutines: 0,
    SystemTime: new Date().toISOString(),
    LoggingDriver: '',
    CgroupDriver: first?.CgroupDriver ?? '',
    NEventsListener: 0,
    KernelVersion: first?.KernelVersion ?? '',
    OperatingSystem: 'linux',
    OSType: 'linux',
    Architecture: first?.Architecture ?? 'x86_64',
    IndexServerAddress: 'https://index.docker.io/v1/',
    NCPU: known.reduce((n, e) => n + (e.info?.NCPU ?? 0), 0),
    MemTotal: known.reduce((n, e) => n + (e.info?.MemTotal ?? 0), 0),
    DockerRootDir: '',
    Name: ctx.manager.hostname,
    Labels: [],
    ExperimentalBuild: false,
    ServerVersion: serverVersion,
    Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
    SecurityOptions: [],
    Warnings: null,
  });
}

/**
 * GET /events: every healthy engine's stream (with the client's filters), merged, each
 * event naming its node. Engines that turn healthy while the client listens (one that
 * restarted, one that joined) are added, so a long `docker events` misses no engine.
 */
export async function events(call: Call): Promise<void> {
  const { res, ctx } = call;
  const abort = new AbortController();
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.flushHeaders();
  const streaming = new Set<Engine>();
  const running = new Set<Promise<void>>();
  let finished: () => void = () => undefined;
  const allDone = new Promise<void>((resolve) => (finished = resolve));
  const follow = (engine: Engine, since?: string): void => {
    if (streaming.has(engine) || abort.signal.aborted) return;
    streaming.add(engine);
    const query = new URLSearchParams(call.query);
    if (since !== undefined) query.set('since', since);
    const p = (async () => {
      try {
        const stream = await engine.client.stream('GET', enginePath(call, '/events', query), abort.signal);
        for await (const value of jsonStream(stream)) {
          const event = value as EngineEvent;
          event.node = { Name: engine.name, Id: engine.id, Addr: engine.addr, Ip: engine.ip };
          res.write(JSON.stringify(event) + '\n');
        }
      } catch {
        // One engine's stream ending (it died, or the client left) leaves the others flowing.
      } finally {
        streaming.delete(engine);
      }
    })();
    running.add(p);
    void p.finally(() => {
      running.delete(p);
      // With `until`, the call ends when every engine's stream has ended.
      if (running.size === 0 && call.query.has('until')) finished();
    });
  };
  const stopWatching = ctx.pool.onStateChange((engine) => {
    // From now on: its earlier events were not for this client's live stream.
    if (engine.healthy && !call.query.has('until')) follow(engine, String(Math.floor(Date.now() / 1000)));
  });
  res.on('close', () => {
    abort.abort();
    stopWatching();
    finished();
  });
  for (const engine of ctx.pool.healthy()) follow(engine);
  if (running.size === 0 && call.query.has('until')) finished();
  await allDone;
  stopWatching();
  res.end();
}

/** GET /system/df: every engine's usage, objects named by node. */
export async function systemDf(call: Call): Promise<void> {
  type Df = { LayersSize?: number; Images?: unknown[] | null; Containers?: Array<{ Names?: string[] }> | null; Volumes?: Array<{ Name?: string }> | null; BuildCache?: unknown[] | null };
  const engines = call.ctx.pool.healthy();
  const results = await Promise.all(engines.map(async (e) => ({ e, df: await e.client.json<Df>('GET', enginePath(call, '/system/df')) })));
  sendJson(call.res, 200, {
    LayersSize: results.reduce((n, r) => n + (r.df.LayersSize ?? 0), 0),
    Images: results.flatMap((r) => r.df.Images ?? []),
    Containers: results.flatMap((r) => (r.df.Containers ?? []).map((c) => ({ ...c, Names: (c.Names ?? []).map((n) => `/${r.e.name}${n}`) }))),
    Volumes: results.flatMap((r) => (r.df.Volumes ?? []).map((v) => ({ ...v, Name: `${r.e.name}/${v.Name ?? ''}` }))),
    BuildCache: results.flatMap((r) => r.df.BuildCache ?? []),
  });
}

