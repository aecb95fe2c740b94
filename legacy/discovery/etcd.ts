// KvStore over etcd's v3 API (gRPC, through Microsoft's etcd3 client): registrations are
// keys bound to leases, directories are key prefixes, changes arrive on etcd watches and
// the primary's lock is a create-if-absent transaction on a key bound to a kept-alive
// lease. Keys of the v2 API (an old cluster that classic Swarm wrote through libkv's etcd
// v2 store) live in a separate keyspace and are not visible here.
import { rootCertificates } from 'node:tls';
import { BACKOFF_CAP_MS, BACKOFF_FIRST_MS, errText, pause, untilDone, Wakeup } from './retry.js';
import { Etcd3, EtcdLeaseInvalidError, type IKeyValue, type IOptions, type Lease, type Watcher } from 'etcd3';
import { registerKvStore, type KvEntry, type KvOptions, type KvStore } from './kv.js';
import { log as rootLog } from '../../src/log.js';

const log = rootLog.with({ discovery: 'etcd' });


type WatchBackoff = NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>;

/**
 * The client re-opens a broken watch stream after this backoff; its default grows to 30 s,
 * too long for discovery (an engine list stale for half a minute after etcd comes back).
 */
function cappedBackoff(ms: number): WatchBackoff {
  return { duration: ms, next: () => cappedBackoff(Math.min(BACKOFF_CAP_MS, ms * 2)) };
}

/** Classic's keys have no leading slash; tolerate one (and trailing ones on directories). */
function cleanKey(key: string): string {
  return key.replace(/^\/+/, '');
}

function dirPrefix(dir: string): string {
  const d = dir.replace(/^\/+|\/+$/g, '');
  return d === '' ? '' : `${d}/`;
}

function toEntry(kv: IKeyValue): KvEntry {
  return { key: kv.key.toString(), value: kv.value.toString() };
}

function plusOne(revision: string): string {
  return (BigInt(revision) + 1n).toString();
}

type WatchNote = 'change' | 'reconnected' | 'broken';

interface WatchHandle {
  close(): Promise<void>;
}

function etcdOptions(endpoints: string[], opts: KvOptions): IOptions {
  const scheme = opts.tls ? 'https' : 'http';
  const options: IOptions = {
    hosts: endpoints.map((e) => `${scheme}://${e}`),
    dialTimeout: opts.timeoutMs,
    // Unary calls get the caller's timeout; streams (watches, keepalives) live on.
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + opts.timeoutMs }),
    grpcOptions: {
      // grpc-js backs off reconnects up to 120 s by default: cap it like every other retry here.
      'grpc.initial_reconnect_backoff_ms': BACKOFF_FIRST_MS,
      'grpc.max_reconnect_backoff_ms': BACKOFF_CAP_MS,
      // A silently dead server (no RST) is noticed on a long-lived watch; etcd accepts pings every 5 s.
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
    },
    faultHandling: { watchBackoff: cappedBackoff(BACKOFF_FIRST_MS) },
  };
  if (opts.tls) {
    const { ca, cert, key } = opts.tls;
    options.credentials = {
      rootCertificate: ca ?? Buffer.from(rootCertificates.join('\n')),
      privateKey: key,
      certChain: cert,
    };
  }
  return options;
}

export function createEtcdStore(endpoints: string[], opts: KvOptions): KvStore {
  if (endpoints.length === 0) throw new Error('etcd:// discovery needs at least one etcd address, for example etcd://10.0.0.5:2379/swarm');
  const client = new Etcd3(etcdOptions(endpoints, opts));
  const closing = new AbortController();
  const watches = new Set<Watcher>();
  const campaignLeases = new Set<Lease>();

  /**
   * One lease per registered key, refreshed by each putWithTtl (a keepalive, then the put
   * bound to the same lease). The other way — a new lease per put, revoking the old one —
   * would grant and revoke a lease every heartbeat for every engine, and a revoke lost to a
   * network blip would leave orphan leases behind; one lease per key keeps etcd's lessor
   * at one lease per registration and lets the value change in place. A lease that expired
   * meanwhile (keepalive answers TTL 0) is replaced by a fresh one.
   */
  const registrations = new Map<string, { lease: Lease; ttlSec: number }>();
  /** putWithTtl calls for one key run one after the other, so one key never gets two leases. */
  const putChains = new Map<string, Promise<void>>();

  function newLease(ttlSec: number, autoKeepAlive: boolean): Lease {
    const lease = client.lease(ttlSec, { autoKeepAlive });
    // 'lost' is how the client reports a lease it could not grant or keep; every caller
    // looks at the lease's state itself, the listener keeps the report from being unheard.
    lease.on('lost', (err) => log.debug('etcd lease lost', { err: errText(err) }));
    return lease;
  }

  async function putOnce(key: string, value: string, ttlSec: number): Promise<void> {
    const held = registrations.get(key);
    if (held && held.ttlSec === ttlSec && !held.lease.revoked()) {
      try {
        await held.lease.keepaliveOnce();
        await held.lease.put(key).value(value);
        return;
      } catch (err) {
        if (!(err instanceof EtcdLeaseInvalidError)) throw err;
        // expired since the last put: bind the key to a new lease below
      }
    }
    const lease = newLease(ttlSec, false);
    try {
      await lease.put(key).value(value);
    } catch (err) {
      lease.release();
      throw err;
    }
    registrations.set(key, { lease, ttlSec });
    // The key is bound to the new lease now, so revoking the old one cannot delete it.
    if (held) held.lease.revoke().catch((err: unknown) => log.debug('revoking a replaced lease failed', { key, err: errText(err) }));
  }

  async function range(prefix: string): Promise<{ entries: KvEntry[]; revision: string }> {
    const res = await client.getAll().prefix(prefix).exec();
    const entries = res.kvs
      .map(toEntry)
      .filter((e) => e.key.length > prefix.length && !e.key.slice(prefix.length).includes('/'))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { entries, revision: res.header.revision };
  }

  async function getKey(key: string): Promise<{ kv: IKeyValue | undefined; revision: string }> {
    const res = await client.get(key).exec();
    return { kv: res.kvs[0], revision: res.header.revision };
  }

  /**
   * An etcd watch on a key or a prefix from `startRevision`. The client re-opens the
   * stream after a disconnection and resumes from the last revision it saw; the caller
   * still hears 'reconnected' and re-reads, and 'broken' when etcd cancelled the watch
   * (compacted revision): then it re-reads and opens a new one.
   */
  function openWatch(
    target: { key: string } | { prefix: string },
    startRevision: string,
    stop: AbortSignal,
    onNote: (note: WatchNote) => void,
  ): WatchHandle {
    const builder = client.watch();
    if ('key' in target) builder.key(target.key);
    else builder.prefix(target.prefix);
    builder.startRevision(startRevision);
    // watcher() attaches at once (create() would wait, unreachable, for a connection we could not cancel).
    const watcher = builder.watcher();
    watches.add(watcher);
    let disconnected = false;
    watcher.on('data', (res) => {
      if (res.events.length > 0) onNote('change');
    });
    watcher.on('disconnected', (err) => {
      if (!disconnected) log.debug('etcd watch disconnected', { err: errText(err) });
      disconnected = true;
    });
    watcher.on('connected', () => {
      if (disconnected) {
        disconnected = false;
        onNote('reconnected');
      }
    });
    watcher.on('error', (err) => {
      log.debug('etcd watch cancelled by the server', { err: errText(err) });
      onNote('broken');
    });
    // Ended by the signal even when the generator that opened it is never resumed.
    const onStop = (): void => void cancelWatch(watcher);
    stop.addEventListener('abort', onStop, { once: true });
    return {
      close: () => {
        stop.removeEventListener('abort', onStop);
        return cancelWatch(watcher);
      },
    };
  }

  /** Detaches a watcher; bounded, since a stream half-way through reconnecting may never answer the cancel. */
  async function cancelWatch(watcher: Watcher): Promise<void> {
    if (!watches.delete(watcher)) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      watcher.cancel().catch((err: unknown) => log.debug('cancelling an etcd watch failed', { err: errText(err) })),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.min(opts.timeoutMs, 2000));
      }),
    ]);
    clearTimeout(timer);
  }

  /**
   * The shared shape of watchTree and watchKey: read, yield when different from the last
   * yield, watch from the read's revision, read again on every change or reconnection.
   * A read that fails is retried (never yielding), so an unreachable etcd yields nothing.
   */
  async function* watchReads<T>(
    what: string,
    target: { key: string } | { prefix: string },
    read: () => Promise<{ value: T; revision: string }>,
    signal: AbortSignal,
  ): AsyncGenerator<T> {
    const stop = AbortSignal.any([signal, closing.signal]);
    let last: string | undefined;
    while (!stop.aborted) {
      const first = (await untilDone('etcd', stop, what, read))?.value;
      if (first === undefined) return;
      const shown = JSON.stringify(first.value) ?? 'undefined';
      if (shown !== last) {
        last = shown;
        yield first.value;
      }
      const wake = new Wakeup();
      let broken = false;
      const watch = openWatch(target, plusOne(first.revision), stop, (note) => {
        if (note === 'broken') broken = true;
        wake.notify();
      });
      try {
        while (!stop.aborted && !broken) {
          await wake.wait(stop);
          if (stop.aborted || broken) break;
          const next = (await untilDone('etcd', stop, what, read))?.value;
          if (next === undefined) return;
          const text = JSON.stringify(next.value) ?? 'undefined';
          if (text !== last) {
            last = text;
            yield next.value;
          }
        }
      } finally {
        await watch.close();
      }
    }
  }

  return {
    kind: 'etcd',

    putWithTtl(key, value, ttlMs) {
      const k = cleanKey(key);
      const ttlSec = Math.max(1, Math.ceil(ttlMs / 1000));
      const prev = putChains.get(k) ?? Promise.resolve();
      const run = prev.then(
        () => putOnce(k, value, ttlSec),
        () => putOnce(k, value, ttlSec),
      );
      const tail = run.then(
        () => undefined,
        () => undefined,
      );
      putChains.set(k, tail);
      void tail.then(() => {
        if (putChains.get(k) === tail) putChains.delete(k);
      });
      return run;
    },

    async delete(key) {
      const k = cleanKey(key);
      const held = registrations.get(k);
      registrations.delete(k);
      await client.delete().key(k);
      if (held) held.lease.revoke().catch((err: unknown) => log.debug('revoking a deleted key\'s lease failed', { key: k, err: errText(err) }));
    },

    async list(dir) {
      return (await range(dirPrefix(dir))).entries;
    },

    async breakLock(key, value) {
      // Only if it still holds the dead primary's address: a lock that moved on stays.
      const k = cleanKey(key);
      const res = await client.if(k, 'Value', '==', value).then(client.delete().key(k)).commit();
      return res.succeeded;
    },

    watchTree(dir, signal) {
      const prefix = dirPrefix(dir);
      return watchReads(
        `watch ${prefix}`,
        { prefix },
        async () => {
          const { entries, revision } = await range(prefix);
          return { value: entries, revision };
        },
        signal,
      );
    },

    watchKey(key, signal) {
      const k = cleanKey(key);
      return watchReads<string | undefined>(
        `watch ${k}`,
        { key: k },
        async () => {
          const { kv, revision } = await getKey(k);
          return { value: kv?.value.toString(), revision };
        },
        signal,
      );
    },

    campaign(key, value, ttlMs, signal) {
      return campaign(cleanKey(key), value, ttlMs, signal);
    },

    async close() {
      if (closing.signal.aborted) return;
      closing.abort();
      // A closed store is a process going away: campaign leases stop being kept alive and
      // expire on their own (only an aborted campaign releases its lock at once).
      for (const lease of campaignLeases) lease.release();
      campaignLeases.clear();
      await Promise.all([...watches].map((w) => cancelWatch(w)));
      client.close();
    },
  };

  /**
   * Elections as classic's candidates ran them: whoever creates the key first (a
   * transaction on createRevision == 0) holds it, bound to a lease kept alive every ttl/3.
   * The others watch the key and try again when it changes. The holder watches it too
   * (deleted, or rebound to another lease: lost) and counts itself lost when no keepalive
   * has succeeded for ttl, since etcd may have expired the lease by then.
   */
  async function* campaign(key: string, value: string, ttlMs: number, signal: AbortSignal): AsyncGenerator<boolean> {
    const stop = AbortSignal.any([signal, closing.signal]);
    const ttlSec = Math.max(1, Math.ceil(ttlMs / 1000));
    let delay = BACKOFF_FIRST_MS;
    let held: { lease: Lease; id: string } | undefined;
    /** Aborting releases the lock at once, even while the caller is not pulling from us. */
    const releaseHeld = async (): Promise<void> => {
      const h = held;
      held = undefined;
      if (h === undefined) return;
      campaignLeases.delete(h.lease);
      if (closing.signal.aborted) {
        h.lease.release();
        return;
      }
      // Released on purpose: delete the key only if it is still ours, then revoke.
      await client
        .if(key, 'Lease', '==', h.id)
        .then(client.delete().key(key))
        .commit()
        .catch((err: unknown) => log.debug('etcd lock release failed', { key, err: errText(err) }));
      await h.lease.revoke().catch(() => undefined);
    };
    const onAbort = (): void => void releaseHeld();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!stop.aborted) {
        const lease = newLease(ttlSec, true);
        campaignLeases.add(lease);
        let lastAlive = Date.now();
        lease.on('keepaliveSucceeded', () => (lastAlive = Date.now()));
        let id: string;
        let won: boolean;
        let revision: string;
        try {
          id = await lease.grant();
          const txn = await client
            .if(key, 'Create', '==', 0)
            .then(client.put(key).value(value).lease(id))
            .else(client.get(key))
            .commit();
          won = txn.succeeded;
          revision = txn.header.revision;
        } catch (err) {
          campaignLeases.delete(lease);
          lease.revoke().catch(() => undefined);
          if (stop.aborted) return;
          log.debug('etcd campaign attempt failed', { key, err: errText(err), retryMs: delay });
          await pause(delay, stop);
          delay = Math.min(BACKOFF_CAP_MS, delay * 2);
          continue;
        }
        delay = BACKOFF_FIRST_MS;
        const wake = new Wakeup();
        const watch = openWatch({ key }, plusOne(revision), stop, () => wake.notify());
        if (!won) {
          campaignLeases.delete(lease);
          lease.revoke().catch(() => undefined);
          try {
            await wake.wait(stop);
          } finally {
            await watch.close();
          }
          continue;
        }

        held = { lease, id };
        let lost = false;
        lease.on('lost', () => {
          lost = true;
          wake.notify();
        });
        const check = setInterval(() => {
          if (Date.now() - lastAlive > ttlMs) {
            lost = true;
            wake.notify();
          }
        }, Math.max(100, Math.min(1000, ttlMs / 4)));
        const stopCheck = (): void => clearInterval(check);
        stop.addEventListener('abort', stopCheck, { once: true });
        try {
          yield true;
          while (!stop.aborted && !lost) {
            await wake.wait(stop);
            if (stop.aborted || lost) break;
            // The key changed: still ours only if still bound to our lease.
            try {
              const { kv } = await getKey(key);
              if (kv === undefined || kv.lease !== id) lost = true;
            } catch (err) {
              log.debug('etcd lock check failed; the lease decides', { key, err: errText(err) });
            }
          }
        } finally {
          stop.removeEventListener('abort', stopCheck);
          clearInterval(check);
          await watch.close();
        }
        if (stop.aborted) return;
        held = undefined;
        campaignLeases.delete(lease);
        log.info('lost the etcd lock', { key });
        // Revoke what may still be alive on the server (a blip longer than the ttl, seen
        // only by us), so that our stale key does not hold the lock against everyone.
        lease.revoke().catch(() => undefined);
        yield false;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      await releaseHeld();
    }
  }
}

registerKvStore('etcd', createEtcdStore);
