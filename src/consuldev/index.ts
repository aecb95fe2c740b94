// A Consul-compatible development server, in the spirit of `consul agent -dev`: one
// process, in memory, Consul's documented HTTP API for KV, sessions and blocking
// queries. Consul cannot be installed on the project's machines; this is what the
// discovery code and the tests talk to, through the real `consul` client.

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { createApi } from './http.js';
import { ConsulState } from './state.js';

export interface ConsulDevOptions {
  /** Address to listen on; 127.0.0.1 by default, as `consul agent -dev`. */
  host?: string;
  /** HTTP port; 0 picks a free one. 8500 by default. */
  port?: number;
  log?: (line: string) => void;
  /** Node name reported by the agent and given to sessions; the host name by default. */
  nodeName?: string;
  /**
   * Dev-only: the smallest session TTL accepted, in ms. Consul's is 10s (session_ttl_min)
   * and so is the default; tests lower it so that expiry takes a second, not twenty.
   */
  minSessionTtlMs?: number;
}

export interface ConsulDev {
  /** "host:port", ready for `new Consul({ host, port })` or CONSUL_HTTP_ADDR. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  /** Blocking queries being held right now (diagnostics; tests check release on disconnect). */
  blockedQueries(): number;
  close(): Promise<void>;
}

export async function startConsulDev(opts: ConsulDevOptions = {}): Promise<ConsulDev> {
  const host = opts.host ?? '127.0.0.1';
  const log = opts.log ?? (() => undefined);
  const nodeName = opts.nodeName ?? hostname();
  const minSessionTtlMs = opts.minSessionTtlMs ?? 10_000;
  if (!Number.isInteger(minSessionTtlMs) || minSessionTtlMs < 1) {
    throw new Error(`minSessionTtlMs must be a positive whole number of milliseconds, got ${minSessionTtlMs}`);
  }
  const state = new ConsulState({ nodeName });
  const api = createApi({
    state,
    datacenter: 'dc1',
    nodeName,
    nodeId: randomUUID(),
    serverHost: host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host,
    minSessionTtlNs: BigInt(minSessionTtlMs) * 1_000_000n,
    log,
  });
  const server = createServer((req, res) => api.handle(req, res));
  // Blocking queries last up to 10m + wait/16: no socket timeout may cut them short.
  server.requestTimeout = 0;
  server.timeout = 0;
  // Go's server keeps idle connections open; Node's 5s default would race clients that
  // reuse a pooled socket (the consul client keeps them alive) just as it is closed.
  server.keepAliveTimeout = 90_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8500, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const shownHost = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  const address = `${shownHost}:${bound.port}`;
  log(`consuldev: serving Consul's HTTP API on ${address} (datacenter dc1, node ${nodeName})`);

  let closing: Promise<void> | undefined;
  return {
    address,
    host: bound.address,
    port: bound.port,
    blockedQueries: () => api.waiting(),
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        state.close();
        api.cancelWaiters();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
