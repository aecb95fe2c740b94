// Networks and volumes. Local-scope objects exist on one engine and are shown as
// "node/name" (as classic did); global-scope networks (overlay) appear once.
// Creates name their node with "node/name"; otherwise a network is placed on one engine by
// the scheduler and a volume is created on every healthy engine, as classic did.
import type { NetworkResource, VolumeResource } from '../../src/docker/types.js';
import { ApiError, notFound } from '../../src/docker/errors.js';
import { isObject, parseJsonBody, readBody, sendJson } from '../../src/docker/http.js';
import { forward } from '../../src/docker/proxy.js';
import { engineMessage } from '../../src/docker/engine-client.js';
import type { Engine } from '../cluster/engine.js';
import { schedNodeOf } from '../cluster/sched-view.js';
import { enginePath, type Call } from './context.js';

function splitNode(call: Call, ref: string): { engine?: Engine; name: string } {
  const i = ref.indexOf('/');
  if (i > 0) {
    const engine = call.ctx.pool.byName(ref.slice(0, i));
    if (engine) return { engine, name: ref.slice(i + 1) };
  }
  return { name: ref };
}

async function engineLists<T>(call: Call, path: string, pick: (body: unknown) => T[]): Promise<Array<{ engine: Engine; items: T[] }>> {
  return Promise.all(
    call.ctx.pool.healthy().map(async (engine) => ({ engine, items: pick(await engine.client.json<unknown>('GET', enginePath(call, path))) })),
  );
}

// ---- networks ----

function presentNetwork(engine: Engine, n: NetworkResource): NetworkResource {
  return n.Scope === 'local' ? { ...n, Name: `${engine.name}/${n.Name}` } : n;
}

export async function listNetworks(call: Call): Promise<void> {
  const q = call.query.has('filters');
  const lists = q ? await engineLists<NetworkResource>(call, '/networks', (b) => b as NetworkResource[]) : call.ctx.pool.healthy().map((engine) => ({ engine, items: engine.networks }));
  const out: NetworkResource[] = [];
  const globals = new Set<string>();
  for (const { engine, items } of lists) {
    for (const n of items) {
      if (n.Scope !== 'local') {
        if (globals.has(n.Id)) continue;
        globals.add(n.Id);
      }
      out.push(presentNetwork(engine, n));
    }
  }
  sendJson(call.res, 200, out);
}

function findNetwork(call: Call, ref: string): { engine: Engine; network: NetworkResource } {
  const { engine: named, name } = splitNode(call, ref);
  const engines = named ? [named] : call.ctx.pool.healthy();
  const matches: Array<{ engine: Engine; network: NetworkResource }> = [];
  for (const engine of engines) {
    for (const network of engine.networks) {
      if (network.Id === name || network.Name === name) return { engine, network };
      if (network.Id.startsWith(name)) matches.push({ engine, network });
    }
  }
  const first = matches[0];
  if (!first) throw notFound(`network ${ref} not found`);
  return first;
}

export async function networkCall(call: Call): Promise<void> {
  const [ref = '', rest = ''] = call.params;
  const { engine, network } = findNetwork(call, decodeURIComponent(ref));
  let body: Buffer | undefined;
  if (rest === '/connect' || rest === '/disconnect') {
    // The container may be named as the user sees it ("node/name"); the engine needs its ID.
    const parsed = parseJsonBody(await readBody(call.req));
    if (typeof parsed.Container === 'string') {
      const found = await call.ctx.pool.resolveContainer(parsed.Container);
      if (network.Scope === 'local' && found.engine !== engine) {
        throw new ApiError(400, `container ${parsed.Container} is on node ${found.engine.name}, network ${ref} on node ${engine.name}: a local network can only connect containers on its own node`);
      }
      parsed.Container = found.id;
    }
    body = Buffer.from(JSON.stringify(parsed));
  }
  const status = await forward(call.req, call.res, engine.client, engine.name, enginePath(call, `/networks/${network.Id}${rest}`), { body });
  if (status < 300 && call.req.method !== 'GET') await engine.refreshNetworks().catch(() => undefined);
}

export async function createNetwork(call: Call): Promise<void> {
  const body = parseJsonBody(await readBody(call.req));
  if (typeof body.Name !== 'string' || body.Name === '') throw new ApiError(400, 'network create needs a Name');
  const { engine: named, name } = splitNode(call, body.Name);
  body.Name = name;
  let engine = named;
  if (!engine) {
    const result = call.ctx.scheduler.select({ config: { Image: '' } }, call.ctx.pool.known().map(schedNodeOf));
    if (!result.ok) throw new ApiError(500, result.message);
    engine = call.ctx.pool.engines.get(result.nodes[0]?.addr ?? '');
  }
  if (!engine) throw new ApiError(500, 'cannot find node to create network');
  const out = await engine.client.request('POST', enginePath(call, '/networks/create'), JSON.stringify(body));
  if (out.status >= 300) throw new ApiError(out.status, engineMessage(out.body));
  await engine.refreshNetworks().catch(() => undefined);
  call.res.writeHead(out.status, { 'Content-Type': 'application/json' });
  call.res.end(out.body);
}

export async function pruneNetworks(call: Call): Promise<void> {
  const engines = call.ctx.pool.healthy();
  const results = await Promise.all(engines.map((e) => e.client.json<{ NetworksDeleted: string[] | null }>('POST', enginePath(call, '/networks/prune'))));
  await Promise.all(engines.map((e) => e.refreshNetworks().catch(() => undefined)));
  sendJson(call.res, 200, { NetworksDeleted: results.flatMap((r) => r.NetworksDeleted ?? []) });
}

// ---- volumes ----

export async function listVolumes(call: Call): Promise<void> {
  const lists = call.query.has('filters')
    ? await engineLists<VolumeResource>(call, '/volumes', (b) => (isObject(b) && Array.isArray(b.Volumes) ? (b.Volumes as unknown as VolumeResource[]) : []))
    : call.ctx.pool.healthy().map((engine) => ({ engine, items: engine.volumes }));
  const volumes = lists.flatMap(({ engine, items }) => items.map((v) => ({ ...v, Name: `${engine.name}/${v.Name}` })));
  sendJson(call.res, 200, { Volumes: volumes, Warnings: null });
}

function enginesWithVolume(call: Call, ref: string): { engines: Engine[]; name: string } {
  const { engine, name } = splitNode(call, ref);
  if (engine) return { engines: [engine], name };
  return { engines: call.ctx.pool.healthy().filter((e) => e.volumes.some((v) => v.Name === name)), name };
}

export async function createVolume(call: Call): Promise<void> {
  const body = parseJsonBody(await readBody(call.req), {});
  const { engine, name } = splitNode(call, typeof body.Name === 'string' ? body.Name : '');
  if (name !== '') body.Name = name;
  const engines = engine ? [engine] : call.ctx.pool.healthy();
  if (engines.length === 0) throw new ApiError(500, 'No healthy node available in the cluster');
  const results = await Promise.all(engines.map((e) => e.client.request('POST', enginePath(call, '/volumes/create'), JSON.stringify(body))));
  await Promise.all(engines.map((e) => e.refreshVolumes().catch(() => undefined)));
  const failed = results.find((r) => r.status >= 300);
  if (failed) throw new ApiError(failed.status, engineMessage(failed.body));
  const first = results[0];
  call.res.writeHead(first?.status ?? 201, { 'Content-Type': 'application/json' });
  call.res.end(first?.body);
}

export async function volumeCall(call: Call): Promise<void> {
  const [ref = ''] = call.params;
  const { engines, name } = enginesWithVolume(call, decodeURIComponent(ref));
  if (engines.length === 0) throw notFound(`get ${ref}: no such volume`);
  if (call.req.method === 'GET') {
    const engine = engines[0] as Engine;
    await forward(call.req, call.res, engine.client, engine.name, enginePath(call, `/volumes/${encodeURIComponent(name)}`));
    return;
  }
  const results = await Promise.all(engines.map((e) => e.client.request(call.req.method ?? 'DELETE', enginePath(call, `/volumes/${encodeURIComponent(name)}`))));
  await Promise.all(engines.map((e) => e.refreshVolumes().catch(() => undefined)));
  const failed = results.find((r) => r.status >= 300);
  if (failed) throw new ApiError(failed.status, engineMessage(failed.body));
  call.res.writeHead(204);
  call.res.end();
}

export async function pruneVolumes(call: Call): Promise<void> {
  const engines = call.ctx.pool.healthy();
  const results = await Promise.all(engines.map((e) => e.client.json<{ VolumesDeleted: string[] | null; SpaceReclaimed: number }>('POST', enginePath(call, '/volumes/prune'))));
  await Promise.all(engines.map((e) => e.refreshVolumes().catch(() => undefined)));
  sendJson(call.res, 200, { VolumesDeleted: results.flatMap((r) => r.VolumesDeleted ?? []), SpaceReclaimed: results.reduce((n, r) => n + r.SpaceReclaimed, 0) });
}
