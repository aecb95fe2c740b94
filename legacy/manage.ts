// `swarm manage`: discovery feeds the engine pool, the pool feeds the API server.
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import { createDiscovery } from './discovery/index.js';
import { EnginePool } from './cluster/pool.js';
import { startRescheduler } from './cluster/reschedule.js';
import { createScheduler } from './scheduler/index.js';
import { createApiServer, type ServerTls } from './api/server.js';
import { formatListen, listen, parseListen } from './cli/listen.js';
import { createEngineClient, type EngineClient, type EngineTls } from '../src/docker/engine-client.js';
import type { ApiContext } from './api/context.js';
import { log } from '../src/log.js';

export interface ManageOptions {
  discovery: string;
  hosts: string[];
  strategy: string;
  filters: string[];
  refreshMinMs: number;
  refreshMaxMs: number;
  failureRetry: number;
  heartbeatMs: number;
  timeoutMs: number;
  overcommit: number;
  createRetry: number;
  discoveryOpts: Record<string, string>;
  cors: boolean;
  tls?: { ca?: string; cert?: string; key?: string; verify: boolean };
  /** --replication: campaign for the primary lock; replicas forward to the primary. */
  replication?: { advertise: string; ttlMs: number };
}

/** Consecutive failed pings after which a replica takes the lock from the primary. */
const primaryDeadAfter = 3;
const primaryPingMs = 1000;

/**
 * A replica pings the primary every second; when it stops answering three times in a
 * row, the replica breaks its lock so that a new primary is elected in seconds instead
 * of after the lock's TTL (a Consul session may live up to twice its TTL). A primary cut
 * off only from this replica loses the lock too and steps down at its next renewal.
 */
async function watchPrimary(ctx: ApiContext, breakLock: (primary: string) => Promise<boolean>, signal: AbortSignal): Promise<void> {
  let failures = 0;
  let watched: string | undefined;
  while (!signal.aborted) {
    await new Promise((r) => setTimeout(r, primaryPingMs));
    const primary = ctx.manager.role === 'replica' ? ctx.manager.primary : undefined;
    if (!primary || !ctx.primaryClient) {
      failures = 0;
      continue;
    }
    if (primary !== watched) {
      watched = primary;
      failures = 0;
    }
    const ping = ctx
      .primaryClient(primary)
      .request('GET', '/_ping')
      .then((r) => r.status === 200)
      .catch(() => false);
    // A hung primary counts as dead as surely as a refused connection.
    const answered = await Promise.race([ping, new Promise<boolean>((r) => setTimeout(() => r(false), primaryPingMs))]);
    failures = answered ? 0 : failures + 1;
    if (failures >= primaryDeadAfter) {
      failures = 0;
      const broke = await breakLock(primary).catch(() => false);
      if (broke) log.warn('The primary manager stopped answering: released its lock for a new election', { primary });
    }
  }
}

export interface Manager {
  /** The addresses actually listened on (with the real port when 0 was asked for). */
  addresses: string[];
  pool: EnginePool;
  close(): Promise<void>;
}

function loadTls(opts: ManageOptions['tls']): { server?: ServerTls; engine?: EngineTls } {
  if (!opts) return {};
  const read = (path: string | undefined, flag: string): Buffer | undefined => {
    if (!path) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`${flag} ${path}: ${(err as Error).message}`, { cause: err });
    }
  };
  const ca = read(opts.ca, '--tlscacert');
  const cert = read(opts.cert, '--tlscert');
  const key = read(opts.key, '--tlskey');
  if (!cert || !key) throw new Error('--tls and --tlsverify need --tlscert and --tlskey');
  if (opts.verify && !ca) throw new Error('--tlsverify needs --tlscacert: the CA that signs client certificates');
  return { server: { cert, key, ca, verify: opts.verify }, engine: { ca, cert, key, verify: opts.verify } };
}

export async function startManager(opts: ManageOptions, signal: AbortSignal): Promise<Manager> {
  const scheduler = createScheduler({ filters: opts.filters, strategy: opts.strategy, overcommit: opts.overcommit });
  const tls = loadTls(opts.tls);
  const discovery = createDiscovery(opts.discovery, { heartbeatMs: opts.heartbeatMs, ttlMs: opts.heartbeatMs * 3, opts: opts.discoveryOpts });
  const pool = new EnginePool({ refreshMinMs: opts.refreshMinMs, refreshMaxMs: opts.refreshMaxMs, failureRetry: opts.failureRetry, timeoutMs: opts.timeoutMs, tls: tls.engine }, discovery.register ? opts.heartbeatMs : 0);
  const primaryClients = new Map<string, EngineClient>();
  const ctx: ApiContext = {
    pool,
    scheduler,
    execs: new Map<string, string>(),
    manager: { strategy: opts.strategy, filters: opts.filters, overcommit: opts.overcommit, createRetry: opts.createRetry, role: opts.replication ? 'replica' : 'primary', cors: opts.cors, hostname: hostname() },
    primaryClient: (addr) => {
      let c = primaryClients.get(addr);
      if (!c) {
        c = createEngineClient(addr, { timeoutMs: opts.timeoutMs, tls: tls.engine });
        primaryClients.set(addr, c);
      }
      return c;
    },
  };
  const stopRescheduler = startRescheduler(pool, scheduler, () => ctx.manager.role === 'primary');
  const background: Array<Promise<void>> = [];
  if (opts.replication) {
    const leadership = discovery.leadership;
    if (!leadership) throw new Error(`--replication needs a key-value discovery backend (consul://, etcd://, zk://) to elect the primary; ${discovery.uri} is not one`);
    const { advertise, ttlMs } = opts.replication;
    background.push(
      (async () => {
        for await (const leader of leadership.watchLeader(signal)) {
          if (leader && leader !== advertise && leader !== ctx.manager.primary) log.info('New leader elected', { primary: leader });
          ctx.manager.primary = ctx.manager.role === 'replica' ? leader : undefined;
        }
      })().catch((err: unknown) => log.error('watching the primary lock failed', { error: (err as Error).message })),
      (async () => {
        for await (const held of leadership.campaign(advertise, ttlMs, signal)) {
          ctx.manager.role = held ? 'primary' : 'replica';
          if (held) ctx.manager.primary = undefined;
          log.info(held ? 'Leader Election: Cluster leadership acquired' : 'Leader Election: Cluster leadership lost', { advertise });
        }
      })().catch((err: unknown) => log.error('campaigning for the primary lock failed', { error: (err as Error).message })),
      watchPrimary(ctx, leadership.breakLock, signal),
    );
  }
  const servers: http.Server[] = [];
  const addresses: string[] = [];
  for (const h of opts.hosts) {
    const addr = parseListen(h);
    const server = createApiServer(ctx, tls.server);
    await listen(server, addr);
    const bound = server.address();
    const actual = addr.kind === 'tcp' && typeof bound === 'object' && bound ? formatListen(addr, bound.port) : formatListen(addr);
    servers.push(server);
    addresses.push(actual);
    log.info('Listening for HTTP', { addr: actual, proto: addr.kind });
  }
  void (async () => {
    try {
      for await (const addrs of discovery.watch(signal)) {
        log.debug('discovery update', { engines: addrs.length });
        pool.update(addrs);
      }
    } catch (err) {
      if (!signal.aborted) log.error('discovery failed', { uri: discovery.uri, error: (err as Error).message });
    }
  })();
  return {
    addresses,
    pool,
    async close() {
      stopRescheduler();
      pool.close();
      // Leaving gives up the primary lock at once (the campaign releases it on abort).
      await Promise.race([Promise.all(background), new Promise((r) => setTimeout(r, 3000))]);
      await discovery.close?.();
      for (const c of primaryClients.values()) c.close();
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
    },
  };
}
