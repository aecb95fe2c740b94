// Consul as classic Swarm used it, through the real `consul` client: registrations held
// by sessions with a TTL and delete-on-expiry (each put renews its session), directory
// and lock watches as blocking queries (the client's Watch), the primary's lock as a
// session-held key.
import https from 'node:https';
import http from 'node:http';
import Consul from 'consul';
import { setTimeout as sleep } from 'node:timers/promises';
import { log } from '../../src/log.js';
import { registerKvStore, type KvEntry, type KvOptions, type KvStore } from './kv.js';
import { latest } from './latest.js';
import { errText } from './retry.js';

interface ConsulItem {
  Key: string;
  Value: string | null;
  Session?: string;
}

/** Consul's default smallest session TTL (session_ttl_min); a server may allow less. */
const consulMinTtlMs = 10_000;

function isItems(v: unknown): v is ConsulItem[] {
  return Array.isArray(v);
}

function isItem(v: unknown): v is ConsulItem {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'Key' in v;
}


export function consulStore(endpoints: string[], opts: KvOptions): KvStore {
  const [first = ''] = endpoints;
  const i = first.lastIndexOf(':');
  const host = first.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(first.slice(i + 1));
  const agent = opts.tls
    ? new https.Agent({ keepAlive: true, ca: opts.tls.ca, cert: opts.tls.cert, key: opts.tls.key })
    : new http.Agent({ keepAlive: true });
  const consul = new Consul({ host, port, secure: opts.tls !== undefined, agent });
  let closed = false;

  /**
   * Every call to the agent: limited in time (a hung agent must not hang a campaign), and
   * tried once more when a pooled connection turns out to be dead (after the agent
   * restarted or a proxy dropped it), which is not an answer from Consul at all.
   */
  async function rpc<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (closed) throw new Error('the consul store is closed');
    for (let attempt = 0; ; attempt++) {
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([
          fn(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`consul did not answer ${what} within ${opts.timeoutMs} ms`)), opts.timeoutMs);
          }),
        ]);
      } catch (err) {
        const reset = /socket hang up|ECONNRESET|EPIPE/.test(errText(err));
        if (!reset || attempt > 0 || closed) throw err;
      } finally {
        clearTimeout(timer);
      }
    }
  }

  /** key -> the session that holds it (one per registered key, renewed by each put). */
  const sessions = new Map<string, string>();
  const watches = new Set<{ end(): void }>();

  /**
   * A session with the TTL asked for; if the server refuses it as too short (Consul's
   * minimum is 10 s unless its operator lowered it), with the minimum instead.
   */
  async function newSession(ttlMs: number, behavior: 'delete' | 'release', name: string): Promise<string> {
    const create = async (ms: number): Promise<string> => (await rpc('session create', () => consul.session.create({ name, ttl: `${Math.max(1, Math.ceil(ms / 1000))}s`, behavior, lockdelay: '0s' }))).ID;
    try {
      return await create(ttlMs);
    } catch (err) {
      if (ttlMs < consulMinTtlMs && /Invalid Session TTL/i.test(errText(err))) return create(consulMinTtlMs);
      throw err;
    }
  }

  /** A blocking-query watch on a key (or a directory with recurse), as the newest value. */
  function watch<T>(options: Record<string, string>, map: (data: unknown) => T, signal: AbortSignal): AsyncIterable<T> {
    const out = latest<T>(signal);
    const w = consul.watch({ method: consul.kv.get, options: { ...options, wait: '30s' }, backoffFactor: 100, backoffMax: 5000 });
    watches.add(w);
    w.on('change', (data: unknown) => out.push(map(data)));
    // The client retries with backoff by itself; an outage only delays the next change.
    w.on('error', (err: unknown) => log.debug('consul watch error; retrying', { key: options.key, error: errText(err) }));
    w.on('end', () => out.end());
    signal.addEventListener('abort', () => {
      w.end();
      watches.delete(w);
    });
    return out;
  }

  function children(dir: string, data: unknown): KvEntry[] {
    const items = isItems(data) ? data : isItem(data) ? [data] : [];
    const base = `${dir}/`;
    return items
      .filter((it) => it.Key.startsWith(base) && it.Key.length > base.length && !it.Key.slice(base.length).includes('/'))
      .map((it) => ({ key: it.Key, value: it.Value ?? '' }));
  }

  return {
    kind: 'consul',

    async putWithTtl(key: string, value: string, ttlMs: number): Promise<void> {
      let id = sessions.get(key);
      if (id) {
        try {
          await rpc('session renew', () => consul.session.renew(id ?? ''));
        } catch {
          id = undefined; // invalidated (expired, or the agent restarted): take a new one
        }
      }
      if (!id) {
        id = await newSession(ttlMs, 'delete', `swarm-registration ${key}`);
        sessions.set(key, id);
      }
      const session = id;
      const ok = await rpc('kv put', () => consul.kv.set({ key, value, acquire: session }));
      if (!ok) throw new Error(`consul refused the registration of ${key}: held by another session`);
    },

    async delete(key: string): Promise<void> {
      const id = sessions.get(key);
      sessions.delete(key);
      await rpc('kv delete', () => consul.kv.del(key));
      if (id) await rpc('session destroy', () => consul.session.destroy(id)).catch(() => undefined);
    },

    async list(dir: string): Promise<KvEntry[]> {
      return children(dir, await rpc('kv list', () => consul.kv.get({ key: `${dir}/`, recurse: true })));
    },

    watchTree(dir: string, signal: AbortSignal): AsyncIterable<KvEntry[]> {
      return watch({ key: `${dir}/`, recurse: 'true' }, (data) => children(dir, data), signal);
    },

    watchKey(key: string, signal: AbortSignal): AsyncIterable<string | undefined> {
      return watch({ key }, (data) => (isItem(data) ? (data.Value ?? undefined) : isItems(data) ? (data[0]?.Value ?? undefined) : undefined), signal);
    },

    async *campaign(key: string, value: string, ttlMs: number, signal: AbortSignal): AsyncGenerator<boolean> {
      const renewEvery = Math.max(1000, Math.floor(ttlMs / 3));
      while (!signal.aborted && !closed) {
        let id: string | undefined;
        try {
          id = await newSession(ttlMs, 'delete', `swarm-leader ${value}`);
          const session = id;
          const acquired = await rpc('lock acquire', () => consul.kv.set({ key, value, acquire: session }));
          if (acquired) {
            yield true;
            // Hold: renew the session; a failed renewal or a key no longer ours is a lost lock.
            while (!signal.aborted) {
              await sleep(renewEvery, undefined, { signal }).catch(() => undefined);
              if (signal.aborted) break;
              await rpc('session renew', () => consul.session.renew(session));
              const now = await rpc('kv get', () => consul.kv.get(key));
              if (!isItem(now) || now.Session !== session) throw new Error('the lock is no longer held by this manager');
            }
          } else {
            // Someone holds it: wait until the key changes, then try again.
            const ac = new AbortController();
            const stop = (): void => ac.abort();
            signal.addEventListener('abort', stop, { once: true });
            for await (const holder of watch({ key }, (d) => (isItem(d) ? d.Session : isItems(d) ? d[0]?.Session : undefined), ac.signal)) {
              if (!holder) break;
            }
            ac.abort();
            signal.removeEventListener('abort', stop);
          }
        } catch (err) {
          if (!signal.aborted && !closed) {
            log.warn('lost the primary lock or could not reach consul', { key, error: errText(err) });
            yield false;
            await sleep(1000, undefined, { signal }).catch(() => undefined);
          }
        } finally {
          // Leaving (or losing) the lock at once: destroying the session deletes the key.
          const held = id;
          if (held) await rpc('session destroy', () => consul.session.destroy(held)).catch(() => undefined);
        }
      }
    },

    async breakLock(key: string, value: string): Promise<boolean> {
      const item = await rpc('kv get', () => consul.kv.get(key));
      const holder = isItem(item) ? item.Session : undefined;
      if (!isItem(item) || item.Value !== value || !holder) return false;
      // Destroying the holder's session deletes the key (behavior "delete").
      await rpc('session destroy', () => consul.session.destroy(holder));
      return true;
    },

    async close(): Promise<void> {
      for (const w of watches) w.end();
      watches.clear();
      // Registrations and locks are left to expire, as if the process had died: a manager
      // that leaves cleanly aborts its campaign first, which releases its lock at once.
      sessions.clear();
      closed = true;
      agent.destroy();
    },
  };
}

registerKvStore('consul', consulStore);
