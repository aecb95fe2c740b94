// Key-value stores as classic Swarm's discovery used them: registrations that expire
// unless renewed, a watched directory of engines, and a lock that elects the primary
// manager. Each store (consul, etcd, zk) implements KvStore with the store's own
// mechanism: Consul sessions with delete-on-expiry, etcd leases, ZooKeeper ephemeral nodes.

export interface KvEntry {
  /** Full key, without a leading slash: "swarm/docker/swarm/nodes/10.0.0.1:2375". */
  key: string;
  value: string;
}

export interface KvTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

export interface KvOptions {
  /** How long one call to the store may take before it fails. */
  timeoutMs: number;
  tls?: KvTls;
}

export interface KvStore {
  /** "consul" | "etcd" | "zk" */
  readonly kind: string;
  /**
   * Writes key=value so that it disappears about ttlMs after the last call for that key
   * unless it is called again (each call renews it). Parent "directories" are created
   * as the store needs.
   */
  putWithTtl(key: string, value: string, ttlMs: number): Promise<void>;
  /** Removes a key (no error when it is absent). */
  delete(key: string): Promise<void>;
  /** The entries directly below `dir` (one level); [] when `dir` does not exist. */
  list(dir: string): Promise<KvEntry[]>;
  /**
   * Yields list(dir) now and again after every change, with the store's own watch
   * mechanism (blocking queries, watches), not polling. When the store is unreachable it
   * retries with backoff and yields nothing meanwhile: callers keep the last list, so a
   * store that blinks never empties the cluster. Ends when `signal` aborts.
   */
  watchTree(dir: string, signal: AbortSignal): AsyncIterable<KvEntry[]>;
  /**
   * Campaigns for the lock at `key`, holding `value` while it is held. Yields true when
   * this candidate becomes the holder and false when it loses the lock (store
   * unreachable past the TTL, lock deleted), then campaigns again. A holder that dies
   * loses the lock within about ttlMs. Aborting `signal` releases the lock at once.
   */
  campaign(key: string, value: string, ttlMs: number, signal: AbortSignal): AsyncIterable<boolean>;
  /**
   * Removes the lock at `key` if it is still held with `value` (whatever the holder's
   * session or lease), so that the campaigns waiting on it run at once. For a holder
   * that others have found dead before its TTL ran out. Resolves true when it removed it.
   */
  breakLock(key: string, value: string): Promise<boolean>;
  /** The value at `key` now and after every change (undefined when absent). Survives store outages as watchTree does. */
  watchKey(key: string, signal: AbortSignal): AsyncIterable<string | undefined>;
  close(): Promise<void>;
}

export type KvFactory = (endpoints: string[], opts: KvOptions) => KvStore;

const stores = new Map<string, KvFactory>();

export function registerKvStore(scheme: string, factory: KvFactory): void {
  stores.set(scheme, factory);
}

export function kvStoreFactory(scheme: string): KvFactory | undefined {
  return stores.get(scheme);
}

export function kvSchemes(): string[] {
  return [...stores.keys()].sort();
}

/** "h1:2379,h2:2379/prefix" -> endpoints and prefix ("" when none). */
export function parseKvLocation(scheme: string, rest: string): { endpoints: string[]; prefix: string } {
  const slash = rest.indexOf('/');
  const hosts = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = slash < 0 ? '' : rest.slice(slash + 1).replace(/^\/+|\/+$/g, '');
  const endpoints = hosts.split(',').map((h) => h.trim()).filter(Boolean);
  if (endpoints.length === 0) throw new Error(`${scheme}:// discovery needs at least one store address, for example ${scheme}://10.0.0.5:${defaultPort(scheme)}/swarm`);
  for (const e of endpoints) {
    if (!/^[^:/]+:\d+$/.test(e) && !/^\[[^\]]+\]:\d+$/.test(e)) throw new Error(`${scheme}:// store address '${e}' must be host:port, for example 10.0.0.5:${defaultPort(scheme)}`);
  }
  return { endpoints, prefix };
}

function defaultPort(scheme: string): number {
  return scheme === 'consul' ? 8500 : scheme === 'etcd' ? 2379 : 2181;
}

/** Joins key segments with "/", dropping empty ones: classic's keys have no leading slash. */
export function kvKey(...parts: string[]): string {
  return parts.flatMap((p) => p.split('/')).filter(Boolean).join('/');
}

/** Where classic Swarm kept engines and the primary's lock, below the discovery prefix. */
export const nodesDir = (prefix: string): string => kvKey(prefix, 'docker/swarm/nodes');
export const leaderKey = (prefix: string): string => kvKey(prefix, 'docker/swarm/leader');
