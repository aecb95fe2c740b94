// Discovery backends, registered by URL scheme and chosen at run time from the
// `<discovery>` argument of `swarm manage|join|list`.
import { setTimeout as sleep } from 'node:timers/promises';
import { readFile } from 'node:fs/promises';
import { parseEntries } from './ranges.js';
import { log } from '../../src/log.js';
import { kvDiscovery } from './kv-discovery.js';
// KV stores register themselves with the kv registry when loaded.
import './consul.js';
import './etcd.js';
import './zk.js';

export interface DiscoveryOptions {
  /** How often backends that poll (file://) look again, and how often join re-registers. */
  heartbeatMs: number;
  /** How long a registration lives without a heartbeat (KV backends). */
  ttlMs: number;
  /** --discovery-opt key=value pairs. */
  opts: Record<string, string>;
}

export interface Discovery {
  readonly uri: string;
  /** Yields the whole list of engine addresses ("ip:port") now and each time it changes. */
  watch(signal: AbortSignal): AsyncIterable<string[]>;
  /** `swarm join`: registers an engine and renews it every heartbeat until `signal` aborts, then leaves. KV backends only. */
  register?(addr: string, signal: AbortSignal): Promise<void>;
  /** `swarm manage --replication`: the primary manager's lock. KV backends only. */
  leadership?: {
    campaign(value: string, ttlMs: number, signal: AbortSignal): AsyncIterable<boolean>;
    watchLeader(signal: AbortSignal): AsyncIterable<string | undefined>;
    /** Takes the lock from a primary found dead (false when the store cannot, or it moved on). */
    breakLock(primary: string): Promise<boolean>;
  };
  close?(): Promise<void>;
}

export type DiscoveryFactory = (rest: string, options: DiscoveryOptions) => Discovery;

const backends = new Map<string, DiscoveryFactory>();

export function registerDiscovery(scheme: string, factory: DiscoveryFactory): void {
  backends.set(scheme, factory);
}

export function discoverySchemes(): string[] {
  return [...backends.keys()].sort();
}

/**
 * Creates the backend for a discovery URI: `scheme://rest`, or a bare comma-separated
 * list of addresses, which is `nodes://`.
 */
export function createDiscovery(uri: string, options: DiscoveryOptions): Discovery {
  const m = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(uri);
  const scheme = m?.[1]?.toLowerCase() ?? 'nodes';
  const rest = m?.[2] ?? uri;
  if (scheme === 'token') {
    throw new Error(
      "token:// discovery used Docker Hub's hosted discovery service, which was shut down in 2019; " +
        'use consul://, etcd://, zk://, file:// or a list of engines (nodes://10.0.0.1:2375,10.0.0.2:2375) instead',
    );
  }
  const factory = backends.get(scheme);
  if (!factory) {
    throw new Error(`unsupported discovery backend '${scheme}://'; supported: ${discoverySchemes().map((s) => `${s}://`).join(', ')}`);
  }
  return factory(rest, options);
}

/** A fixed list of engines. */
function nodesDiscovery(rest: string): Discovery {
  const addrs = parseEntries(rest);
  if (addrs.length === 0) throw new Error('nodes:// discovery needs at least one engine address, for example nodes://10.0.0.1:2375');
  return {
    uri: `nodes://${rest}`,
    async *watch() {
      yield addrs;
    },
  };
}

/** A file of addresses (ranges allowed), read again every heartbeat. */
function fileDiscovery(rest: string, options: DiscoveryOptions): Discovery {
  const path = rest;
  if (!path.startsWith('/')) throw new Error(`file:// discovery needs an absolute path, for example file:///etc/swarm/cluster (got '${rest}')`);
  return {
    uri: `file://${path}`,
    async *watch(signal: AbortSignal) {
      let last = '';
      let firstError = true;
      while (!signal.aborted) {
        try {
          const addrs = parseEntries(await readFile(path, 'utf8'));
          const key = addrs.join(',');
          firstError = true;
          if (key !== last) {
            last = key;
            yield addrs;
          }
        } catch (err) {
          // A missing or half-written file keeps the last list: engines are not dropped
          // because an editor is saving the file.
          if (firstError) log.warn('file discovery: cannot read the file; keeping the last list', { path, error: (err as Error).message });
          firstError = false;
        }
        try {
          await sleep(options.heartbeatMs, undefined, { signal });
        } catch {
          return;
        }
      }
    },
  };
}

registerDiscovery('nodes', (rest) => nodesDiscovery(rest));
registerDiscovery('file', fileDiscovery);
for (const scheme of ['consul', 'etcd', 'zk']) registerDiscovery(scheme, (rest, options) => kvDiscovery(scheme, rest, options));
