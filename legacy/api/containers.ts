// Containers: the list answered from the pool's cache, create placed by the scheduler,
// everything container-scoped forwarded to the engine that owns the container.
import type { ContainerSummary } from '../../src/docker/types.js';
import { ApiError, badRequest, conflict, noSuchContainer } from '../../src/docker/errors.js';
import { isObject, parseFilters, parseJsonBody, queryBool, readBody, sendJson } from '../../src/docker/http.js';
import { forward, forwardUpgrade } from '../../src/docker/proxy.js';
import { engineMessage } from '../../src/docker/engine-client.js';
import { statusText, type ContainerStateView } from '../../src/docker/status.js';
import { hasNodeConstraint, normaliseCreate, validateCreate, withHint } from '../scheduler/index.js';
import type { ContainerSpec, CreateBody } from '../scheduler/types.js';
import { schedNodeOf } from '../cluster/sched-view.js';
import type { Engine } from '../cluster/engine.js';
import { debugging, log } from '../../src/log.js';
import { enginePath, nodeMember, type Call, type UpgradeCall } from './context.js';
import { randomBytes } from 'node:crypto';

const visibleWithoutAll = new Set(['running', 'paused', 'restarting']);

/** Filters `docker ps` uses that the cache answers; any other filter is asked of the engines. */
const cachedFilters = new Set(['id', 'name', 'label', 'status', 'node', 'exited', 'ancestor', 'before', 'since', 'network', 'health']);

function globToRegExp(glob: string): RegExp {
  return new RegExp('^' + glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
}

function exitCodeOf(status: string): string | undefined {
  return /^Exited \((-?\d+)\)/.exec(status)?.[1];
}

function healthOf(status: string): string {
  const m = /\((healthy|unhealthy|health: starting)\)/.exec(status);
  if (!m) return 'none';
  return m[1] === 'health: starting' ? 'starting' : (m[1] ?? 'none');
}

function matchesLabel(labels: Record<string, string>, want: string): boolean {
  const i = want.indexOf('=');
  if (i < 0) return want in labels;
  return labels[want.slice(0, i)] === want.slice(i + 1);
}

/** The `name` filter is a regular expression, as the engine takes it; a bad one is the client's error. */
function nameFilter(v: string): RegExp {
  try {
    return new RegExp(v.replace(/^\//, ''));
  } catch (err) {
    throw badRequest(`invalid filter 'name=${v}': ${(err as Error).message}`);
  }
}

interface Listed {
  engine: Engine;
  summary: ContainerSummary;
  /** The cached state, when the entry comes from the cache: its Status text is recomputed. */
  state?: ContainerStateView;
}

/** The engine's list entry as classic showed it: names prefixed by the node name, status as of now. */
function present(l: Listed, now: number): ContainerSummary {
  const out: ContainerSummary = { ...l.summary, Names: l.summary.Names.map((n) => `/${l.engine.name}${n.startsWith('/') ? n : `/${n}`}`) };
  if (l.state) out.Status = statusText(l.state, now);
  // As classic did: a port published on every address is shown on the node's, so that
  // `docker ps` says where to reach it ("10.0.0.5:8080->80/tcp").
  if (out.Ports?.some((p) => p.IP === '0.0.0.0')) out.Ports = out.Ports.map((p) => (p.IP === '0.0.0.0' ? { ...p, IP: l.engine.ip } : p));
  return out;
}

export async function listContainers(call: Call): Promise<void> {
  const { ctx, query } = call;
  const filters = parseFilters(query);
  const fanOut = queryBool(query, 'size') || [...filters.keys()].some((k) => !cachedFilters.has(k));
  let listed: Listed[];
  if (fanOut) {
    listed = await fanOutList(call, filters);
  } else {
    await ctx.pool.settled();
    listed = [];
    for (const engine of ctx.pool.known()) for (const c of engine.containers.values()) listed.push({ engine, summary: c.summary, state: c.inspect?.State });
  }
  const all = queryBool(query, 'all');
  const refTime = (ref: string): number => {
    const found = ctx.pool.findContainer(ref);
    if (!found) throw noSuchContainer(ref);
    return found.container.summary.Created;
  };
  // Compiled before any container is looked at: a bad pattern is an error even on an empty cluster.
  const namePatterns = (filters.get('name') ?? []).map(nameFilter);
  const before = filters.get('before')?.map(refTime);
  const since = filters.get('since')?.map(refTime);
  const anyOf = (key: string, pred: (v: string) => boolean): boolean => {
    const vals = filters.get(key);
    return !vals || vals.length === 0 || vals.some(pred);
  };
  const allOf = (key: string, pred: (v: string) => boolean): boolean => (filters.get(key) ?? []).every(pred);

  let out = listed.filter(({ engine, summary: s }) => {
    const statusFilter = filters.get('status');
    if (!all && !statusFilter && !filters.has('exited') && !visibleWithoutAll.has(s.State)) return false;
    const names = s.Names.map((n) => n.replace(/^\//, ''));
    return (
      anyOf('id', (v) => s.Id.startsWith(v)) &&
      (namePatterns.length === 0 || namePatterns.some((re) => names.some((n) => re.test(n) || re.test(`${engine.name}/${n}`)))) &&
      allOf('label', (v) => matchesLabel(s.Labels ?? {}, v)) &&
      anyOf('status', (v) => s.State === v) &&
      anyOf('node', (v) => globToRegExp(v).test(engine.name) || engine.id === v) &&
      anyOf('exited', (v) => s.State === 'exited' && exitCodeOf(s.Status) === v) &&
      anyOf('ancestor', (v) => s.Image === v || s.Image === `${v}:latest` || s.ImageID === v || s.ImageID.replace(/^sha256:/, '').startsWith(v.replace(/^sha256:/, ''))) &&
      anyOf('network', (v) => Object.entries(s.NetworkSettings?.Networks ?? {}).some(([name, n]) => name === v || n.NetworkID === v)) &&
      anyOf('health', (v) => healthOf(s.Status) === v) &&
      (before ?? []).every((t) => s.Created < t) &&
      (since ?? []).every((t) => s.Created > t)
    );
  });
  out.sort((a, b) => b.summary.Created - a.summary.Created || a.summary.Id.localeCompare(b.summary.Id));
  const limit = Number(query.get('limit') ?? '-1');
  if (limit > 0) out = out.slice(0, limit);
  const now = Date.now();
  sendJson(call.res, 200, out.map((l) => present(l, now)));
}

async function fanOutList(call: Call, filters: Map<string, string[]>): Promise<Listed[]> {
  const q = new URLSearchParams(call.query);
  const engineFilters = Object.fromEntries([...filters].filter(([k]) => k !== 'node' && k !== 'before' && k !== 'since'));
  q.set('filters', JSON.stringify(engineFilters));
  q.set('all', '1');
  q.delete('limit');
  const engines = call.ctx.pool.healthy();
  const results = await Promise.all(
    engines.map(async (engine) => {
      const list = await engine.client.json<ContainerSummary[]>('GET', enginePath(call, '/containers/json', q));
      return list.map((summary) => ({ engine, summary }));
    }),
  );
  return results.flat();
}

const builtinNetworkModes = /^(default|bridge|host|none|container:.*)$/;

/**
 * A local network exists on one engine only: a container joining it must be placed
 * there (classic did the same, which is what lets compose v1 projects with a bridge
 * network work). "node/net" names the node explicitly and becomes "net" for the engine.
 */
function pinToLocalNetworks(call: Call, spec: ContainerSpec): ContainerSpec {
  const config = { ...spec.config };
  const hostConfig = isObject(config.HostConfig) ? { ...config.HostConfig } : undefined;
  const endpoints = isObject(config.NetworkingConfig) && isObject(config.NetworkingConfig.EndpointsConfig) ? { ...config.NetworkingConfig.EndpointsConfig } : undefined;
  const pins = new Set<string>();
  const resolve = (ref: string): string => {
    const slash = ref.indexOf('/');
    const named = slash > 0 ? call.ctx.pool.byName(ref.slice(0, slash)) : undefined;
    if (named) {
      pins.add(named.name);
      return ref.slice(slash + 1);
    }
    const holders = call.ctx.pool.known().filter((e) => e.networks.some((n) => (n.Name === ref || n.Id === ref) && n.Scope === 'local'));
    const global = call.ctx.pool.known().some((e) => e.networks.some((n) => (n.Name === ref || n.Id === ref) && n.Scope !== 'local'));
    const only = holders[0];
    if (holders.length === 1 && only && !global) pins.add(only.name);
    return ref;
  };
  if (hostConfig && typeof hostConfig.NetworkMode === 'string' && !builtinNetworkModes.test(hostConfig.NetworkMode)) {
    hostConfig.NetworkMode = resolve(hostConfig.NetworkMode);
    config.HostConfig = hostConfig;
  }
  if (endpoints) {
    const renamed: typeof endpoints = {};
    for (const [net, ep] of Object.entries(endpoints)) renamed[builtinNetworkModes.test(net) ? net : resolve(net)] = ep;
    config.NetworkingConfig = { ...(isObject(config.NetworkingConfig) ? config.NetworkingConfig : {}), EndpointsConfig: renamed };
  }
  let out: ContainerSpec = { ...spec, config };
  if (pins.size > 1) throw badRequest(`the container joins local networks on different nodes (${[...pins].join(', ')}): a container can only join networks of its own node`);
  const pin = [...pins][0];
  if (pin && !hasNodeConstraint(out)) out = withHint(out, 'constraint', `node==${pin}`);
  return out;
}

let pendingToken = 0;

/** POST /containers/create: normalise as classic did, place with the scheduler, create on the chosen engine. */
export async function createContainer(call: Call): Promise<void> {
  const { ctx, query, res } = call;
  const body = parseJsonBody(await readBody(call.req));
  const name = query.get('name') ?? undefined;
  if (name !== undefined && name !== '') {
    if (!/^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(name)) throw badRequest(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const bare = name.replace(/^\//, '');
    const holder = ctx.pool.nameTaken(bare);
    if (holder) {
      throw conflict(`Conflict. The container name "/${bare}" is already in use by container "${holder}". You have to remove (or rename) that container to be able to reuse that name.`);
    }
  }
  if (typeof body.Image !== 'string' || body.Image === '') throw badRequest('No image was specified: the create body needs "Image"');
  const normalised = normaliseCreate({ name: name?.replace(/^\//, ''), config: body as CreateBody }, () => randomBytes(32).toString('hex'));
  const valid = validateCreate(normalised);
  if (!valid.ok) throw badRequest(valid.message);
  const spec = pinToLocalNetworks(call, normalised);
  const hostConfig = isObject(spec.config.HostConfig) ? spec.config.HostConfig : {};

  const tried = new Set<string>();
  let lastError: ApiError | undefined;
  for (let attempt = 0; attempt <= ctx.manager.createRetry; attempt++) {
    const nodes = ctx.pool.known().filter((e) => !tried.has(e.addr));
    const result = ctx.scheduler.select(spec, nodes.map(schedNodeOf));
    if (!result.ok) throw lastError ?? new ApiError(500, result.message);
    const chosen = result.nodes[0];
    const engine = chosen ? ctx.pool.engines.get(chosen.addr) : undefined;
    if (!engine) throw new ApiError(500, 'the scheduler chose no node');
    tried.add(engine.addr);
    // The placement is recorded before the engine is called, so concurrent creates see
    // its name, ports and resources without any lock.
    const token = ++pendingToken;
    engine.pending.set(token, {
      token,
      name: spec.name,
      image: String(spec.config.Image),
      labels: spec.config.Labels ?? {},
      cpuShares: Number(hostConfig.CpuShares ?? spec.config.CpuShares ?? 0),
      memory: Number(hostConfig.Memory ?? spec.config.Memory ?? 0),
      networkMode: String(hostConfig.NetworkMode ?? 'default'),
      portBindings: isObject(hostConfig.PortBindings) ? (hostConfig.PortBindings as Record<string, Array<{ HostIp?: string; HostPort?: string }> | null>) : {},
    });
    try {
      const q = new URLSearchParams(query);
      if (spec.name) q.set('name', spec.name);
      const out = await engine.client.request('POST', enginePath(call, '/containers/create', q), JSON.stringify(spec.config), { 'Content-Type': 'application/json' });
      if (out.status === 201 || out.status === 200) {
        const created = JSON.parse(out.body.toString('utf8')) as { Id: string };
        res.writeHead(out.status, { 'Content-Type': 'application/json', 'Content-Length': out.body.length });
        res.end(out.body);
        // The answer does not wait for the cache: the placement stays pending (visible to
        // the scheduler) until the refresh lands, and reads wait for it (settled()). The
        // refresh starts in this same turn, so no request can be read before it is tracked;
        // the answer is written first so its bytes do not queue behind the refresh's.
        engine.justCreated.add(created.Id);
        const landed = engine.refreshContainer(created.Id);
        void landed.finally(() => {
          engine.pending.delete(token);
          engine.justCreated.delete(created.Id);
        });
        if (debugging()) log.debug('container created', { id: created.Id, node: engine.name });
        return;
      }
      lastError = new ApiError(out.status, engineMessage(out.body));
      // A missing image or a bad request is the same on every engine: the client must act.
      if (out.status === 404 || out.status === 400 || out.status === 409) throw lastError;
      log.warn('create failed on engine', { node: engine.name, error: lastError.message, attempt });
    } catch (err) {
      engine.pending.delete(token);
      if (err instanceof ApiError) throw err;
      lastError = new ApiError(500, `Cannot connect to the Docker engine ${engine.name} (${engine.addr}): ${(err as Error).message}`);
    }
    engine.pending.delete(token);
  }
  throw lastError ?? new ApiError(500, 'container create failed');
}

/**
 * Adds classic's `Node` object to an inspect answer. The engine's JSON object is spliced
 * rather than parsed and re-serialised: inspect is the hottest proxied call.
 */
function withNode(raw: Buffer, engine: Engine): Buffer {
  const body = withNodeIp(raw, engine);
  const brace = body.indexOf(0x7b); // '{'
  if (brace < 0) return body;
  let next = brace + 1;
  while (next < body.length && jsonSpace.has(body[next] ?? 0)) next++;
  const empty = body[next] === 0x7d; // '}'
  const node = nodeMember(engine);
  const pieces = empty ? [body.subarray(0, brace + 1), node, body.subarray(brace + 1)] : [body.subarray(0, brace + 1), node, comma, body.subarray(brace + 1)];
  return Buffer.concat(pieces, body.length + node.length + (empty ? 0 : 1));
}

const comma = Buffer.from(',');
const anyHostIp = Buffer.from('"HostIp":"0.0.0.0"');

/** As classic did: port bindings on every address name the node's (`docker port` then says where). */
function withNodeIp(body: Buffer, engine: Engine): Buffer {
  let at = body.indexOf(anyHostIp);
  if (at < 0) return body;
  const replacement = Buffer.from(`"HostIp":${JSON.stringify(engine.ip)}`);
  const parts: Buffer[] = [];
  let from = 0;
  while (at >= 0) {
    parts.push(body.subarray(from, at), replacement);
    from = at + anyHostIp.length;
    at = body.indexOf(anyHostIp, from);
  }
  parts.push(body.subarray(from));
  return Buffer.concat(parts);
}

/** JSON's whitespace bytes: space, tab, LF, CR. */
const jsonSpace = new Set([0x20, 0x09, 0x0a, 0x0d]);

/** Calls whose success changes the container's state: the cache is refreshed before the next read. */
const stateChanging = new Set(['start', 'stop', 'restart', 'kill', 'pause', 'unpause', 'wait']);
/** Calls that change more than its state. */
const reshaping = new Set(['rename', 'update']);

/** Any /containers/{ref}/... call: forwarded to the owning engine with the full ID in the path. */
export async function containerCall(call: Call): Promise<void> {
  const [ref = '', rest = ''] = call.params;
  const name = decodeURIComponent(ref);
  // The cache knows the container nearly always: then no await (each costs a turn).
  const cached = call.ctx.pool.findContainer(name);
  const { engine, id } = cached ? { engine: cached.engine, id: cached.container.summary.Id } : await call.ctx.pool.resolveContainer(name);
  const action = rest.replace(/^\//, '');
  if (action === 'rename' && call.req.method === 'POST') {
    const newName = call.query.get('name')?.replace(/^\//, '') ?? '';
    const holder = newName ? call.ctx.pool.nameTaken(newName) : undefined;
    if (holder && holder !== id) throw conflict(`Conflict. The container name "/${newName}" is already in use by container "${holder}". You have to remove (or rename) that container to be able to reuse that name.`);
  }
  const path = enginePath(call, `/containers/${id}${rest}`);
  const isInspect = call.req.method === 'GET' && action === 'json';
  const status = await forward(call.req, call.res, engine.client, engine.name, path, {
    rewrite: isInspect ? (body) => withNode(body, engine) : undefined,
    onStatus: (s) => {
      if (call.req.method === 'DELETE' && s >= 200 && s < 300) engine.containers.delete(id);
    },
  });
  // Reads after this call wait for the refresh (settled()); this answer does not.
  if (status >= 200 && status < 300) {
    if (call.req.method === 'DELETE' || reshaping.has(action) || call.req.method === 'PUT') void engine.refreshContainer(id, 'full');
    else if (stateChanging.has(action)) void engine.refreshContainer(id, 'state');
  }
}

/** POST /containers/{ref}/exec: forwarded, and the exec remembered so /exec/{id}/... finds its engine. */
export async function createExec(call: Call): Promise<void> {
  const [ref = ''] = call.params;
  const { engine, id } = await call.ctx.pool.resolveContainer(decodeURIComponent(ref));
  const path = enginePath(call, `/containers/${id}/exec`);
  await forward(call.req, call.res, engine.client, engine.name, path, {
    rewrite: (body) => {
      const parsed = JSON.parse(body.toString('utf8')) as { Id?: string };
      if (parsed.Id) call.ctx.execs.set(parsed.Id, engine.addr);
      return body;
    },
  });
}

async function execEngine(call: { ctx: Call['ctx'] }, execId: string): Promise<Engine> {
  const addr = call.ctx.execs.get(execId);
  const known = addr ? call.ctx.pool.engines.get(addr) : undefined;
  if (known) return known;
  // An exec created through another manager, or before a restart: ask the engines.
  for (const engine of call.ctx.pool.healthy()) {
    const r = await engine.client.request('GET', `/exec/${execId}/json`);
    if (r.status === 200) {
      call.ctx.execs.set(execId, engine.addr);
      return engine;
    }
  }
  throw new ApiError(404, `No such exec instance: ${execId}`);
}

export async function execCall(call: Call): Promise<void> {
  const [execId = '', rest = ''] = call.params;
  const engine = await execEngine(call, execId);
  await forward(call.req, call.res, engine.client, engine.name, enginePath(call, `/exec/${execId}${rest}`));
}

/** Hijacked calls: attach (incl. websocket) and exec start. */
export async function containerUpgrade(call: UpgradeCall): Promise<void> {
  const [ref = '', rest = ''] = call.params;
  const { engine, id } = await call.ctx.pool.resolveContainer(decodeURIComponent(ref));
  forwardUpgrade(call.req, call.socket, call.head, engine.client, engine.name, enginePath(call, `/containers/${id}${rest}`));
}

export async function execUpgrade(call: UpgradeCall): Promise<void> {
  const [execId = '', rest = ''] = call.params;
  const engine = await execEngine(call, execId);
  forwardUpgrade(call.req, call.socket, call.head, engine.client, engine.name, enginePath(call, `/exec/${execId}${rest}`));
}

/** POST /containers/prune on every engine, results merged. */
export async function pruneContainers(call: Call): Promise<void> {
  const results = await Promise.all(
    call.ctx.pool.healthy().map((e) => e.client.json<{ ContainersDeleted: string[] | null; SpaceReclaimed: number }>('POST', enginePath(call, '/containers/prune'))),
  );
  for (const e of call.ctx.pool.healthy()) void e.refreshAll().catch(() => undefined);
  sendJson(call.res, 200, {
    ContainersDeleted: results.flatMap((r) => r.ContainersDeleted ?? []),
    SpaceReclaimed: results.reduce((n, r) => n + r.SpaceReclaimed, 0),
  });
}
