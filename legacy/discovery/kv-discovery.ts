// Discovery over a key-value store (consul://, etcd://, zk://) with classic Swarm's
// key layout: engines under <prefix>/docker/swarm/nodes/<ip:port>, the primary manager's
// lock at <prefix>/docker/swarm/leader.
import { setTimeout as sleep } from 'node:timers/promises';
import { readFileSync } from 'node:fs';
import { log } from '../../src/log.js';
import type { Discovery, DiscoveryOptions } from './index.js';
import { kvSchemes, kvStoreFactory, leaderKey, nodesDir, parseKvLocation, kvKey, type KvStore, type KvTls } from './kv.js';
import { validateAddress } from './ranges.js';

/** --discovery-opt kv.cacertfile|kv.certfile|kv.keyfile, read as classic read them. */
function kvTls(opts: Record<string, string>): KvTls | undefined {
  const read = (name: string): Buffer | undefined => {
    const path = opts[name];
    if (!path) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`--discovery-opt ${name}=${path}: ${(err as Error).message}`, { cause: err });
    }
  };
  const ca = read('kv.cacertfile');
  const cert = read('kv.certfile');
  const key = read('kv.keyfile');
  if (!ca && !cert && !key) return undefined;
  if ((cert && !key) || (!cert && key)) throw new Error('--discovery-opt kv.certfile and kv.keyfile go together');
  return { ca, cert, key };
}

export function kvDiscovery(scheme: string, rest: string, options: DiscoveryOptions): Discovery {
  const factory = kvStoreFactory(scheme);
  if (!factory) throw new Error(`${scheme}:// discovery is not available in this build; available: ${kvSchemes().map((s) => `${s}://`).join(', ')}`);
  const { endpoints, prefix: urlPrefix } = parseKvLocation(scheme, rest);
  // kv.path overrides the path of the URL, as classic's --discovery-opt kv.path did.
  const prefix = options.opts['kv.path'] ?? urlPrefix;
  let store: KvStore | undefined;
  const getStore = (): KvStore => (store ??= factory(endpoints, { timeoutMs: 10_000, tls: kvTls(options.opts) }));
  const dir = nodesDir(prefix);
  const uri = `${scheme}://${rest}`;

  return {
    uri,
    async *watch(signal: AbortSignal) {
      for await (const entries of getStore().watchTree(dir, signal)) {
        const addrs: string[] = [];
        for (const e of entries) {
          try {
            addrs.push(validateAddress(e.value.trim() || e.key.slice(e.key.lastIndexOf('/') + 1)));
          } catch {
            log.warn('discovery: ignoring an entry that is not ip:port', { key: e.key, value: e.value });
          }
        }
        yield [...new Set(addrs)].sort();
      }
    },
    async register(addr: string, signal: AbortSignal): Promise<void> {
      validateAddress(addr);
      const key = kvKey(dir, addr);
      let failing = false;
      while (!signal.aborted) {
        try {
          await getStore().putWithTtl(key, addr, options.ttlMs);
          if (failing) log.info('Registration in the discovery store restored', { addr, discovery: uri });
          else log.info('Registering on the discovery service every heartbeat', { addr, discovery: uri, heartbeat: `${options.heartbeatMs / 1000}s` });
          failing = false;
        } catch (err) {
          failing = true;
          log.error('Failed to register with the discovery store; retrying at the next heartbeat', { addr, discovery: uri, error: (err as Error).message });
        }
        try {
          await sleep(options.heartbeatMs, undefined, { signal });
        } catch {
          break;
        }
      }
      // A clean shutdown leaves at once rather than after the TTL.
      await getStore()
        .delete(key)
        .catch(() => undefined);
    },
    leadership: {
      campaign: (value: string, ttlMs: number, signal: AbortSignal) => getStore().campaign(leaderKey(prefix), value, ttlMs, signal),
      watchLeader: (signal: AbortSignal) => getStore().watchKey(leaderKey(prefix), signal),
      breakLock: (primary: string) => getStore().breakLock(leaderKey(prefix), primary),
    },
    async close() {
      await store?.close();
    },
  };
}
