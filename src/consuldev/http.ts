// Consul's HTTP API over the in-memory state: routing, query options (dc, consistency,
// index/wait), blocking queries, and the exact status codes, headers and text errors
// Consul answers with. Behaviour follows developer.hashicorp.com/consul/api-docs
// (kv, session, status, agent, features/blocking, features/consistency); where the docs
// are silent (error texts), the texts are the ones Consul's agent prints.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatGoDuration, parseGoDuration } from './duration.js';
import { toJson, type Json } from './json.js';
import type { ConsulState, KvEntry, Outcome, Read, ServiceCheck, Session, SessionBehavior } from './state.js';
import type { WatchTopic } from './watch.js';

/** Consul's default kv_max_value_size. */
export const kvMaxValueSize = 512 * 1024;
const defaultWaitMs = 5 * 60_000;
const maxWaitMs = 10 * 60_000;
const maxSessionTtlNs = 86_400n * 1_000_000_000n;
/** A request body we refuse to even drain past this. */
const drainLimit = 64 * 1024 * 1024;

export interface ApiOptions {
  state: ConsulState;
  datacenter: string;
  nodeName: string;
  nodeId: string;
  /** The address Consul would name as its raft server (host only). */
  serverHost: string;
  /** The smallest session TTL accepted (Consul's session_ttl_min, 10s by default). */
  minSessionTtlNs: bigint;
  log: (line: string) => void;
}

type Consistency = 'leader' | 'stale' | 'consistent';

interface QueryOptions {
  minIndex: bigint;
  waitMs: number;
  consistency: Consistency;
  pretty: boolean;
}

/** An answer to a read: its index, and how to write it once it is final. */
interface Reply {
  index: number;
  send: () => void;
}

export interface ApiHandler {
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Releases every waiting blocking query (their connections are about to close). */
  cancelWaiters(): void;
  waiting(): number;
}

export function createApi(options: ApiOptions): ApiHandler {
  const { state } = options;
  const waiters = new Set<() => void>();

  function handle(req: IncomingMessage, res: ServerResponse): void {
    route(req, res).catch((err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      options.log(`consuldev: ${req.method ?? '?'} ${req.url ?? '?'}: ${message}`);
      if (!res.headersSent) sendText(res, 500, message);
      else res.destroy();
    });
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    let path: string;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      sendText(res, 400, `invalid URL escape in ${JSON.stringify(rawPath)}`);
      return;
    }

    if (path.startsWith('/v1/kv/')) {
      if (!methodAllowed(req, res, ['GET', 'PUT', 'DELETE'])) return;
      await kv(req, res, path.slice('/v1/kv/'.length), params);
      return;
    }
    const session = /^\/v1\/session\/(destroy|renew|info|node)\/(.*)$/s.exec(path);
    if (session !== null) {
      const [, op = '', arg = ''] = session;
      switch (op) {
        case 'destroy':
          if (methodAllowed(req, res, ['PUT'])) sessionDestroy(res, arg, params);
          return;
        case 'renew':
          if (methodAllowed(req, res, ['PUT'])) sessionRenew(res, arg, params);
          return;
        case 'info':
          if (methodAllowed(req, res, ['GET'])) sessionInfo(res, arg, params);
          return;
        case 'node':
          if (methodAllowed(req, res, ['GET'])) sessionNode(res, arg, params);
          return;
      }
    }
    switch (path) {
      case '/':
        if (methodAllowed(req, res, ['GET'])) sendText(res, 200, 'Consul Agent');
        return;
      case '/v1/session/create':
        if (methodAllowed(req, res, ['PUT'])) await sessionCreate(req, res, params);
        return;
      case '/v1/session/list':
        if (methodAllowed(req, res, ['GET'])) sessionList(res, params);
        return;
      case '/v1/status/leader':
        if (methodAllowed(req, res, ['GET']) && checkDc(res, params)) sendJson(res, 200, `${options.serverHost}:8300`, params);
        return;
      case '/v1/status/peers':
        if (methodAllowed(req, res, ['GET']) && checkDc(res, params)) sendJson(res, 200, [`${options.serverHost}:8300`], params);
        return;
      case '/v1/agent/self':
        if (methodAllowed(req, res, ['GET'])) sendJson(res, 200, agentSelf(), params);
        return;
      case '/v1/agent/members':
        if (methodAllowed(req, res, ['GET'])) sendJson(res, 200, [member()], params);
        return;
      case '/v1/catalog/datacenters':
        if (methodAllowed(req, res, ['GET'])) sendJson(res, 200, [options.datacenter], params);
        return;
      default:
        // Go's mux: an unknown path is a bare 404.
        res.writeHead(404, { 'Content-Length': '0' });
        res.end();
    }
  }

  // ---- query options and blocking ----

  function checkDc(res: ServerResponse, params: URLSearchParams): boolean {
    const dc = params.get('dc') ?? '';
    if (dc !== '' && dc !== options.datacenter) {
      sendText(res, 500, 'No path to datacenter');
      return false;
    }
    return true;
  }

  /** Consul's s.parse: dc, consistency, then wait and index. Writes the error itself. */
  function parseQuery(res: ServerResponse, params: URLSearchParams): QueryOptions | undefined {
    if (!checkDc(res, params)) return undefined;
    const stale = params.has('stale');
    const consistent = params.has('consistent');
    if (stale && consistent) {
      sendText(res, 400, 'Cannot specify ?stale with ?consistent, conflicting semantics.');
      return undefined;
    }
    let waitMs = defaultWaitMs;
    const wait = params.get('wait') ?? '';
    if (wait !== '') {
      const parsed = parseGoDuration(wait);
      if (!parsed.ok) {
        sendText(res, 400, 'Invalid wait time');
        return undefined;
      }
      const ms = Number(parsed.ns / 1_000_000n);
      waitMs = ms <= 0 ? defaultWaitMs : Math.min(ms, maxWaitMs);
    }
    let minIndex = 0n;
    const index = params.get('index') ?? '';
    if (index !== '') {
      const parsed = parseUint64(index);
      if (parsed === undefined) {
        sendText(res, 400, 'Invalid index');
        return undefined;
      }
      minIndex = parsed;
    }
    return { minIndex, waitMs, consistency: stale ? 'stale' : consistent ? 'consistent' : 'leader', pretty: params.has('pretty') };
  }

  function setMeta(res: ServerResponse, index: number, query: QueryOptions): void {
    res.setHeader('X-Consul-Index', String(index));
    res.setHeader('X-Consul-KnownLeader', 'true');
    res.setHeader('X-Consul-LastContact', '0');
    res.setHeader('X-Consul-Effective-Consistency', query.consistency);
  }

  /**
   * Answers now, or, for `?index=N` when nothing under `topic` is newer than N, holds the
   * request until a write there moves the index past N or the wait (plus up to wait/16
   * of jitter, as Consul adds) runs out, then answers with whatever is current.
   */
  function blocking(res: ServerResponse, query: QueryOptions, topic: WatchTopic, read: () => Reply): void {
    const first = read();
    if (query.minIndex === 0n || BigInt(first.index) > query.minIndex) {
      first.send();
      return;
    }
    let settled = false;
    const stop = (): void => {
      settled = true;
      unsubscribe();
      clearTimeout(timer);
      waiters.delete(stop);
      res.off('close', stop);
    };
    const finish = (reply: Reply): void => {
      if (settled) return;
      stop();
      reply.send();
    };
    const unsubscribe = state.hub.subscribe(topic, () => {
      const reply = read();
      if (BigInt(reply.index) > query.minIndex) finish(reply);
    });
    const jitterMs = Math.floor(Math.random() * (query.waitMs / 16));
    const timer = setTimeout(() => finish(read()), query.waitMs + jitterMs);
    // The client went away: forget it at once rather than at the end of its wait.
    res.on('close', stop);
    waiters.add(stop);
  }

  // ---- KV ----

  async function kv(req: IncomingMessage, res: ServerResponse, key: string, params: URLSearchParams): Promise<void> {
    const query = parseQuery(res, params);
    if (query === undefined) return;
    const method = req.method ?? 'GET';
    switch (method) {
      case 'GET':
        kvGet(res, key, params, query);
        return;
      case 'PUT':
        await kvPut(req, res, key, params);
        return;
      case 'DELETE':
        kvDelete(res, key, params);
        return;
      default:
        sendMethodNotAllowed(res, method, ['GET', 'PUT', 'DELETE']);
    }
  }

  function kvGet(res: ServerResponse, key: string, params: URLSearchParams, query: QueryOptions): void {
    if (params.has('keys')) {
      const separator = params.get('separator') ?? params.get('seperator') ?? '';
      blocking(res, query, { kind: 'prefix', prefix: key }, () => {
        const listed = state.kvKeys(key, separator);
        return {
          index: listed.index,
          send: () => {
            setMeta(res, listed.index, query);
            // Consul answers the root with [] but any other empty prefix with 404.
            if (listed.value.length === 0 && key !== '') sendEmpty(res, 404);
            else sendJson(res, 200, listed.value, params);
          },
        };
      });
      return;
    }
    if (params.has('recurse')) {
      blocking(res, query, { kind: 'prefix', prefix: key }, () => {
        const listed = state.kvList(key);
        return {
          index: listed.index,
          send: () => {
            setMeta(res, listed.index, query);
            if (listed.value.length === 0) sendEmpty(res, 404);
            else sendJson(res, 200, listed.value.map(entryJson), params);
          },
        };
      });
      return;
    }
    if (key === '') {
      sendText(res, 400, 'Missing key name');
      return;
    }
    blocking(res, query, { kind: 'key', key }, () => {
      const got = state.kvGet(key);
      return {
        index: got.index,
        send: () => {
          setMeta(res, got.index, query);
          const entry = got.value;
          if (entry === undefined) {
            sendEmpty(res, 404);
          } else if (params.has('raw')) {
            // What Consul sends since CVE-2020-25864: never let a browser sniff a value.
            const body = entry.value ?? Buffer.alloc(0);
            res.writeHead(200, {
              'Content-Type': 'text/plain',
              'X-Content-Type-Options': 'nosniff',
              'Content-Security-Policy': 'sandbox',
              'Content-Length': String(body.length),
            });
            res.end(body);
          } else {
            sendJson(res, 200, [entryJson(entry)], params);
          }
        },
      };
    });
  }

  async function kvPut(req: IncomingMessage, res: ServerResponse, key: string, params: URLSearchParams): Promise<void> {
    if (key === '') {
      await drain(req);
      sendText(res, 400, 'Missing key name');
      return;
    }
    if (conflicting(params, ['cas', 'acquire', 'release'])) {
      await drain(req);
      sendText(res, 400, `Conflicting flags: ${goEncode(params)}\n`);
      return;
    }
    let flags = 0n;
    if (params.has('flags')) {
      const text = params.get('flags') ?? '';
      const parsed = parseUint64(text);
      if (parsed === undefined) {
        await drain(req);
        sendText(res, 500, parseUintError(text));
        return;
      }
      flags = parsed;
    }
    let cas: bigint | undefined;
    if (params.has('cas')) {
      const text = params.get('cas') ?? '';
      cas = parseUint64(text);
      if (cas === undefined) {
        await drain(req);
        sendText(res, 500, parseUintError(text));
        return;
      }
    }
    const body = await readBody(req, kvMaxValueSize);
    if (body.size > kvMaxValueSize) {
      sendText(
        res,
        413,
        `Request body(${body.size} bytes) too large, max size: ${kvMaxValueSize} bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.`,
      );
      return;
    }
    const value = body.bytes.length === 0 ? null : body.bytes;
    let outcome: Outcome<boolean>;
    if (params.has('acquire')) outcome = state.kvLock(key, value, flags, params.get('acquire') ?? '');
    else if (params.has('release')) outcome = state.kvUnlock(key, value, flags, params.get('release') ?? '');
    else if (cas !== undefined) outcome = { ok: true, value: state.kvCas(key, value, flags, cas) };
    else outcome = { ok: true, value: state.kvSet(key, value, flags) };
    sendOutcome(res, outcome, params);
  }

  function kvDelete(res: ServerResponse, key: string, params: URLSearchParams): void {
    if (conflicting(params, ['recurse', 'cas'])) {
      sendText(res, 400, `Conflicting flags: ${goEncode(params)}\n`);
      return;
    }
    if (params.has('recurse')) {
      sendJson(res, 200, state.kvDeleteTree(key), params);
      return;
    }
    if (key === '') {
      sendText(res, 400, 'Missing key name');
      return;
    }
    if (params.has('cas')) {
      const text = params.get('cas') ?? '';
      const cas = parseUint64(text);
      if (cas === undefined) sendText(res, 500, parseUintError(text));
      else sendJson(res, 200, state.kvDeleteCas(key, cas), params);
      return;
    }
    sendJson(res, 200, state.kvDelete(key), params);
  }

  // ---- sessions ----

  async function sessionCreate(req: IncomingMessage, res: ServerResponse, params: URLSearchParams): Promise<void> {
    const body = await readBody(req, kvMaxValueSize);
    if (!checkDc(res, params)) return;
    if (body.size > kvMaxValueSize) {
      sendText(res, 413, `Request body too large, max size: ${kvMaxValueSize} bytes`);
      return;
    }
    const request = body.size === 0 ? { ok: true as const, value: {} } : decodeSessionRequest(body.bytes.toString('utf8'));
    if (!request.ok) {
      sendText(res, 400, `Request decode failed: ${request.error}`);
      return;
    }
    const r = request.value;
    const behavior: SessionBehavior | undefined = r.behavior === undefined || r.behavior === '' || r.behavior === 'release' ? 'release' : r.behavior === 'delete' ? 'delete' : undefined;
    if (behavior === undefined) {
      sendText(res, 500, `Invalid Behavior setting '${r.behavior ?? ''}'`);
      return;
    }
    const ttl = r.ttl ?? '';
    let ttlNs = 0n;
    if (ttl !== '') {
      const parsed = parseGoDuration(ttl);
      if (!parsed.ok) {
        sendText(res, 500, `Session TTL '${ttl}' invalid: ${parsed.error}`);
        return;
      }
      ttlNs = parsed.ns;
      if (ttlNs !== 0n && (ttlNs < options.minSessionTtlNs || ttlNs > maxSessionTtlNs)) {
        sendText(res, 500, `Invalid Session TTL '${ttlNs}', must be between [${formatGoDuration(options.minSessionTtlNs)}=${formatGoDuration(maxSessionTtlNs)}]`);
        return;
      }
    }
    const nodeChecks = r.checks !== undefined || r.nodeChecks !== undefined ? [...(r.checks ?? []), ...(r.nodeChecks ?? [])] : ['serfHealth'];
    const created = state.sessionCreate({
      name: r.name ?? '',
      node: r.node === undefined || r.node === '' ? options.nodeName : r.node,
      lockDelayNs: r.lockDelayNs ?? 15_000_000_000n,
      behavior,
      ttl,
      ttlNs,
      nodeChecks,
      serviceChecks: r.serviceChecks ?? null,
    });
    if (!created.ok) sendText(res, 500, created.error);
    else sendJson(res, 200, { ID: created.value }, params);
  }

  function sessionDestroy(res: ServerResponse, id: string, params: URLSearchParams): void {
    if (!checkDc(res, params)) return;
    if (id === '') {
      sendText(res, 400, 'Missing session');
      return;
    }
    sendOutcome(res, state.sessionDestroy(id), params);
  }

  function sessionRenew(res: ServerResponse, id: string, params: URLSearchParams): void {
    if (parseQuery(res, params) === undefined) return;
    if (id === '') {
      sendText(res, 400, 'Missing session');
      return;
    }
    const renewed = state.sessionRenew(id);
    if (!renewed.ok) sendText(res, 500, renewed.error);
    else if (renewed.value.value === undefined) sendText(res, 404, `Session id '${id}' not found`);
    else sendJson(res, 200, [sessionJson(renewed.value.value)], params);
  }

  function sessionInfo(res: ServerResponse, id: string, params: URLSearchParams): void {
    const query = parseQuery(res, params);
    if (query === undefined) return;
    if (id === '') {
      sendText(res, 400, 'Missing session');
      return;
    }
    const problem = state.sessionGet(id);
    if (!problem.ok) {
      sendText(res, 500, problem.error);
      return;
    }
    blocking(res, query, { kind: 'sessions' }, () => sessionsReply(res, query, params, orEmpty(state.sessionGet(id))));
  }

  function sessionList(res: ServerResponse, params: URLSearchParams): void {
    const query = parseQuery(res, params);
    if (query === undefined) return;
    blocking(res, query, { kind: 'sessions' }, () => sessionsReply(res, query, params, state.sessionList()));
  }

  function sessionNode(res: ServerResponse, node: string, params: URLSearchParams): void {
    const query = parseQuery(res, params);
    if (query === undefined) return;
    if (node === '') {
      sendText(res, 400, 'Missing node name');
      return;
    }
    blocking(res, query, { kind: 'sessions' }, () => sessionsReply(res, query, params, state.sessionList(node)));
  }

  function sessionsReply(res: ServerResponse, query: QueryOptions, params: URLSearchParams, read: Read<Session[]>): Reply {
    return {
      index: read.index,
      send: () => {
        setMeta(res, read.index, query);
        sendJson(res, 200, read.value.map(sessionJson), params);
      },
    };
  }

  function orEmpty(outcome: Outcome<Read<Session[]>>): Read<Session[]> {
    return outcome.ok ? outcome.value : { index: state.lastIndex(), value: [] };
  }

  // ---- agent ----

  function member(): Json {
    return {
      Name: options.nodeName,
      Addr: options.serverHost,
      Port: 8301,
      Tags: {
        build: '1.17.0:consuldev',
        dc: options.datacenter,
        id: options.nodeId,
        port: '8300',
        role: 'consul',
        bootstrap: '1',
        vsn: '2',
        vsn_max: '3',
        vsn_min: '2',
        raft_vsn: '3',
      },
      Status: 1,
      ProtocolMin: 1,
      ProtocolMax: 5,
      ProtocolCur: 2,
      DelegateMin: 2,
      DelegateMax: 5,
      DelegateCur: 4,
    };
  }

  function agentSelf(): Json {
    return {
      Config: {
        Datacenter: options.datacenter,
        PrimaryDatacenter: options.datacenter,
        NodeName: options.nodeName,
        NodeID: options.nodeId,
        Revision: 'consuldev',
        Server: true,
        Version: '1.17.0',
        BuildDate: '1970-01-01T00:00:00Z',
      },
      Coord: null,
      Member: member(),
      Meta: { 'consul-network-segment': '' },
    };
  }

  return {
    handle,
    cancelWaiters: () => {
      for (const stop of [...waiters]) stop();
    },
    waiting: () => waiters.size,
  };
}

// ---- shapes ----

function entryJson(entry: KvEntry): Json {
  // Field order as Consul's encoder writes a DirEntry; Session only while locked.
  const out: { [key: string]: Json } = {
    LockIndex: entry.lockIndex,
    Key: entry.key,
    Flags: entry.flags,
    Value: entry.value === null ? null : entry.value.toString('base64'),
  };
  if (entry.session !== undefined) out.Session = entry.session;
  out.CreateIndex = entry.createIndex;
  out.ModifyIndex = entry.modifyIndex;
  return out;
}

function sessionJson(s: Session): Json {
  return {
    ID: s.id,
    Name: s.name,
    Node: s.node,
    LockDelay: s.lockDelayNs,
    Behavior: s.behavior,
    TTL: s.ttl,
    // Go's encoder writes an empty (nil) list as null.
    NodeChecks: s.nodeChecks.length === 0 ? null : [...s.nodeChecks],
    ServiceChecks: s.serviceChecks === null ? null : s.serviceChecks.map((c) => ({ ID: c.id, Namespace: c.namespace })),
    CreateIndex: s.createIndex,
    ModifyIndex: s.modifyIndex,
  };
}

interface SessionRequest {
  name?: string;
  node?: string;
  lockDelayNs?: bigint;
  behavior?: string;
  ttl?: string;
  checks?: string[];
  nodeChecks?: string[];
  serviceChecks?: ServiceCheck[];
}

/** How Go's decoder names a JSON value's type in its error messages. */
function goType(value: unknown): string {
  if (value === null) return 'nil';
  if (Array.isArray(value)) return '[]interface {}';
  if (typeof value === 'string') return 'string';
  if (typeof value === 'number') return 'float64';
  if (typeof value === 'boolean') return 'bool';
  return 'map[string]interface {}';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The session/create body, matched case-insensitively as Consul's decoder does. */
function decodeSessionRequest(text: string): Outcome<SessionRequest> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  if (!isRecord(raw)) return { ok: false, error: `'' expected a map, got '${Array.isArray(raw) ? 'slice' : goType(raw)}'` };
  const fields = new Map<string, { name: string; value: unknown }>();
  for (const [name, value] of Object.entries(raw)) fields.set(name.toLowerCase(), { name, value });
  const out: SessionRequest = {};
  const str = (field: string): Outcome<string | undefined> => {
    const f = fields.get(field);
    if (f === undefined || f.value === null) return { ok: true, value: undefined };
    if (typeof f.value !== 'string') return { ok: false, error: `'${f.name}' expected type 'string', got unconvertible type '${goType(f.value)}'` };
    return { ok: true, value: f.value };
  };
  const strings = (field: string): Outcome<string[] | undefined> => {
    const f = fields.get(field);
    if (f === undefined) return { ok: true, value: undefined };
    if (f.value === null) return { ok: true, value: [] };
    if (!Array.isArray(f.value)) return { ok: false, error: `'${f.name}': source data must be an array or slice, got ${goType(f.value)}` };
    const list: string[] = [];
    for (const [i, item] of f.value.entries()) {
      if (typeof item !== 'string') return { ok: false, error: `'${f.name}[${i}]' expected type 'string', got unconvertible type '${goType(item)}'` };
      list.push(item);
    }
    return { ok: true, value: list };
  };
  for (const [field, set] of [
    ['name', (v: string | undefined) => (out.name = v)],
    ['node', (v: string | undefined) => (out.node = v)],
    ['behavior', (v: string | undefined) => (out.behavior = v)],
    ['ttl', (v: string | undefined) => (out.ttl = v)],
  ] as const) {
    const got = str(field);
    if (!got.ok) return got;
    set(got.value);
  }
  for (const [field, set] of [
    ['checks', (v: string[] | undefined) => (out.checks = v)],
    ['nodechecks', (v: string[] | undefined) => (out.nodeChecks = v)],
  ] as const) {
    const got = strings(field);
    if (!got.ok) return got;
    set(got.value);
  }
  const delay = fields.get('lockdelay');
  if (delay !== undefined && delay.value !== null) {
    // A string is a Go duration, a number is nanoseconds; either way, a value under
    // 1000ns is taken to mean seconds (people send "LockDelay": 5 meaning 5s).
    let ns: bigint;
    if (typeof delay.value === 'string') {
      const parsed = parseGoDuration(delay.value);
      if (!parsed.ok) return { ok: false, error: parsed.error };
      ns = parsed.ns;
    } else if (typeof delay.value === 'number' && Number.isFinite(delay.value)) {
      ns = BigInt(Math.trunc(delay.value));
    } else {
      return { ok: false, error: `'${delay.name}' expected type 'time.Duration', got unconvertible type '${goType(delay.value)}'` };
    }
    out.lockDelayNs = ns < 1000n ? ns * 1_000_000_000n : ns;
  }
  const service = fields.get('servicechecks');
  if (service !== undefined && service.value !== null) {
    if (!Array.isArray(service.value)) return { ok: false, error: `'${service.name}': source data must be an array or slice, got ${goType(service.value)}` };
    const checks: ServiceCheck[] = [];
    for (const item of service.value) {
      if (!isRecord(item)) return { ok: false, error: `'${service.name}' expected a map, got '${goType(item)}'` };
      let id = '';
      let namespace = '';
      for (const [k, v] of Object.entries(item)) {
        if (k.toLowerCase() === 'id' && typeof v === 'string') id = v;
        if (k.toLowerCase() === 'namespace' && typeof v === 'string') namespace = v;
      }
      checks.push({ id, namespace });
    }
    out.serviceChecks = checks;
  }
  return { ok: true, value: out };
}

// ---- wire helpers ----

function parseUint64(text: string): bigint | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const value = BigInt(text);
  return value > 0xffff_ffff_ffff_ffffn ? undefined : value;
}

/** strconv.ParseUint's error, which Consul passes through for ?flags= and ?cas=. */
function parseUintError(text: string): string {
  const reason = /^\d+$/.test(text) ? 'value out of range' : 'invalid syntax';
  return `strconv.ParseUint: parsing ${JSON.stringify(text)}: ${reason}`;
}

function conflicting(params: URLSearchParams, flags: readonly string[]): boolean {
  return flags.filter((f) => params.has(f)).length > 1;
}

/** url.Values.Encode: keys sorted, form-encoded. */
function goEncode(params: URLSearchParams): string {
  const sorted = new URLSearchParams(params);
  sorted.sort();
  return sorted.toString();
}

function methodAllowed(req: IncomingMessage, res: ServerResponse, methods: readonly string[]): boolean {
  const method = req.method ?? 'GET';
  if (methods.includes(method)) return true;
  if (method === 'OPTIONS') {
    res.writeHead(200, { Allow: ['OPTIONS', ...methods].join(','), 'Content-Length': '0' });
    res.end();
    return false;
  }
  sendMethodNotAllowed(res, method, methods);
  return false;
}

function sendMethodNotAllowed(res: ServerResponse, method: string, methods: readonly string[]): void {
  res.setHeader('Allow', methods.join(','));
  sendText(res, 405, `method ${method} not allowed`);
}

function sendOutcome(res: ServerResponse, outcome: Outcome<boolean>, params: URLSearchParams): void {
  if (outcome.ok) sendJson(res, 200, outcome.value, params);
  else sendText(res, 500, outcome.error);
}

function sendJson(res: ServerResponse, status: number, body: Json, params: URLSearchParams): void {
  const text = toJson(body, params.has('pretty'));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)) });
  res.end(text);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)) });
  res.end(text);
}

function sendEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status, { 'Content-Length': '0' });
  res.end();
}

interface Body {
  bytes: Buffer;
  /** Bytes the client sent, which may exceed what was kept. */
  size: number;
}

/** Reads the whole body, keeping at most `keep` bytes; a runaway body ends the connection. */
async function readBody(req: IncomingMessage, keep: number): Promise<Body> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buf.length;
    if (size <= keep) chunks.push(buf);
    if (size > drainLimit) {
      req.destroy();
      break;
    }
  }
  return { bytes: size <= keep ? Buffer.concat(chunks) : Buffer.alloc(0), size };
}

async function drain(req: IncomingMessage): Promise<void> {
  await readBody(req, 0);
}
