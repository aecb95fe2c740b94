// What every handler of the classic API gets: the pool, the scheduler, the options
// `swarm manage` was started with, and the call itself.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { EnginePool } from '../cluster/pool.js';
import type { Scheduler } from '../scheduler/index.js';
import type { Engine } from '../cluster/engine.js';
import type { EngineClient } from '../../src/docker/engine-client.js';

export interface ManagerInfo {
  strategy: string;
  filters: string[];
  overcommit: number;
  createRetry: number;
  /** "primary" or "replica" (replication arrives with KV discovery). */
  role: string;
  primary?: string;
  cors: boolean;
  hostname: string;
}

export interface ApiContext {
  pool: EnginePool;
  /** On a replica: a client for the primary manager at this address (cached per address). */
  primaryClient?: (addr: string) => EngineClient;
  scheduler: Scheduler;
  manager: ManagerInfo;
  /** exec ID -> engine address, learnt when an exec is created through us. */
  execs: Map<string, string>;
}

export interface Call {
  req: IncomingMessage;
  res: ServerResponse;
  ctx: ApiContext;
  /** Path parameters captured by the route, in order. */
  params: string[];
  query: URLSearchParams;
  /** The client's API version from the /vX.Y prefix, if any. */
  version: string | undefined;
}

export interface UpgradeCall {
  req: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  ctx: ApiContext;
  params: string[];
  query: URLSearchParams;
  version: string | undefined;
}

/** The path to send to an engine: the client's API version prefix, the path, the query. */
export function enginePath(call: { version: string | undefined; query: URLSearchParams }, path: string, query: URLSearchParams = call.query): string {
  const q = query.toString();
  return `${call.version ? `/v${call.version}` : ''}${path}${q ? `?${q}` : ''}`;
}

/** The `node` object classic Swarm added to inspect results and events. */
export function nodeObject(engine: Engine): Record<string, unknown> {
  return {
    ID: engine.id,
    IP: engine.ip,
    Addr: engine.addr,
    Name: engine.name,
    Cpus: engine.info?.NCPU ?? 0,
    Memory: engine.info?.MemTotal ?? 0,
    Labels: engine.labels,
  };
}

/**
 * `"Node":{...}` as bytes, for splicing into inspect answers (the hottest proxied call):
 * built once per engine and again only when its info changes, which is all it depends on.
 */
const nodeMembers = new WeakMap<Engine, { info: Engine['info']; bytes: Buffer }>();

export function nodeMember(engine: Engine): Buffer {
  const cached = nodeMembers.get(engine);
  if (cached !== undefined && cached.info === engine.info) return cached.bytes;
  const bytes = Buffer.from(`"Node":${JSON.stringify(nodeObject(engine))}`);
  nodeMembers.set(engine, { info: engine.info, bytes });
  return bytes;
}
