// KvStore over ZooKeeper (node-zookeeper-client): key "a/b/c" is the znode /a/b/c,
// registrations are ephemeral znodes under persistent parents, directories are watched
// with getChildren/getData watches and the primary's lock is an ephemeral znode that the
// first candidate creates.
//
// TTLs. ZooKeeper has no per-key expiry: an ephemeral znode lives as long as the session
// that created it, and a session dies `sessionTimeout` after its client stopped talking
// (process killed, network gone). So each distinct TTL gets its own session, asking for
// sessionTimeout = ttl; the server clamps the request to [minSessionTimeout,
// maxSessionTimeout] (by default 2 and 20 ticks: 4 s..40 s with tickTime 2000, so
// classic's 180 s join TTL becomes 40 s there). A live process that merely stops renewing
// would keep its znodes forever; to keep the KvStore promise ("gone about ttl after the
// last put") each registration also has a local timer that deletes it, if still ours,
// when no put renewed it within ttl. After a session expires (a partition longer than the
// timeout) the registrations still within their ttl are written again on a new session.
import zookeeper from 'node-zookeeper-client';
import { BACKOFF_CAP_MS, BACKOFF_FIRST_MS, errText, pause, untilDone, Wakeup } from './retry.js';
import type { Client, Event as ZkEvent, Stat } from 'node-zookeeper-client';
import { registerKvStore, type KvEntry, type KvOptions, type KvStore } from './kv.js';
import { log as rootLog } from '../../src/log.js';

const { createClient, CreateMode, Exception } = zookeeper;
const log = rootLog.with({ discovery: 'zk' });

/** Sessions that own no ephemeral node (reads, watches) ask for this timeout. */
const READ_SESSION_MS = 10_000;


function zkCode(err: unknown): number | undefined {
  return err instanceof Exception ? err.getCode() : undefined;
}

function cleanKey(key: string): string {
  return key.replace(/^\/+|\/+$/g, '');
}

function znode(key: string): string {
  return `/${cleanKey(key)}`;
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

type SessionEvent = 'connected' | 'disconnected' | 'expired';

/**
 * One ZooKeeper session, replaced by a new one when the server expires it. Calls wait for
 * the connection (the client queues requests while disconnected and would wait forever)
 * and for the answer, each at most timeoutMs.
 */
class Session {
  private client: Client;
  private connected = false;
  private readonly listeners = new Set<(ev: SessionEvent) => void>();
  private readonly waiters = new Set<() => void>();
  private closed = false;

  constructor(
    private readonly connectString: string,
    private readonly requestedMs: number,
    private readonly timeoutMs: number,
  ) {
    this.client = this.open();
  }

  private open(): Client {
    const client = createClient(this.connectString, { sessionTimeout: this.requestedMs, spinDelay: 500, retries: 0 });
    client.on('connected', () => {
      if (client !== this.client) return;
      this.connected = true;
      for (const w of [...this.waiters]) w();
      this.emit('connected');
    });
    client.on('disconnected', () => {
      if (client !== this.client) return;
      this.connected = false;
      this.emit('disconnected');
    });
    client.on('expired', () => {
      if (client !== this.client || this.closed) return;
      log.warn('zookeeper session expired; opening a new one', { sessionTimeoutMs: this.requestedMs });
      this.connected = false;
      this.client = this.open();
      this.emit('expired');
    });
    client.on('authenticationFailed', () => log.error('zookeeper refused the session (authentication failed)'));
    client.connect();
    return client;
  }

  private emit(ev: SessionEvent): void {
    for (const l of [...this.listeners]) l(ev);
  }

  subscribe(listener: (ev: SessionEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The session id while connected (ephemeral nodes carry it as their owner). */
  id(): Buffer {
    return this.client.getSessionId();
  }

  /** The timeout the server granted (after connecting), else the one asked for. */
  negotiatedMs(): number {
    return this.connected ? this.client.getSessionTimeout() : this.requestedMs;
  }

  owns(stat: Stat): boolean {
    return this.connected && stat.ephemeralOwner.equals(this.id());
  }

  private ready(): Promise<Client> {
    if (this.closed) return Promise.reject(new Error('zookeeper store closed'));
    if (this.connected) return Promise.resolve(this.client);
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        if (this.connected) resolve(this.client);
        else reject(new Error('zookeeper store closed'));
      };
      const timer = setTimeout(() => {
        this.waiters.delete(done);
        reject(new Error(`no zookeeper connection to ${this.connectString} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiters.add(done);
    });
  }

  /** Runs one request; rejects when not connected or not answered in time. */
  async call<T>(what: string, op: (client: Client, cb: (err: Error | InstanceType<typeof Exception> | null, value: T) => void) => void): Promise<T> {
    const client = await this.ready();
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`zookeeper ${what}: no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      op(client, (err, value) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(value);
      });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.waiters]) w();
    const client = this.client;
    const wasConnected = this.connected;
    this.connected = false;
    this.listeners.clear();
    if (!wasConnected) {
      stopReconnecting(client);
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        stopReconnecting(client);
        resolve();
      }, Math.min(this.timeoutMs, 2000));
      client.once('disconnected', () => {
        clearTimeout(timer);
        resolve();
      });
      client.close();
    });
  }
}

/**
 * node-zookeeper-client 1.1.3 has no way to stop a client that is between connection
 * attempts: close() only queues a close-session request, and its reconnect loop goes on
 * while the server is unreachable, keeping the process alive. Marking the connection as
 * expired makes the loop stop at the next socket close. Only used for a client we are
 * discarding; guarded, so a different client version makes this a no-op, not a crash.
 */
function stopReconnecting(client: Client): void {
  const manager: unknown = Reflect.get(client, 'connectionManager');
  if (typeof manager !== 'object' || manager === null) return;
  const SESSION_EXPIRED = -3;
  Reflect.set(manager, 'state', SESSION_EXPIRED);
  const socket: unknown = Reflect.get(manager, 'socket');
  if (typeof socket === 'object' && socket !== null && 'destroy' in socket && typeof socket.destroy === 'function') {
    Reflect.apply(socket.destroy, socket, []);
  }
}

export function createZkStore(endpoints: string[], opts: KvOptions): KvStore {
  if (opts.tls) {
    throw new Error(
      'zk:// discovery cannot use TLS: the ZooKeeper client used here (node-zookeeper-client) speaks plain TCP only; ' +
        'drop the kv.cacertfile/kv.certfile/kv.keyfile discovery options, or use etcd:// or consul:// for TLS',
    );
  }
  if (endpoints.length === 0) throw new Error('zk:// discovery needs at least one ZooKeeper address, for example zk://10.0.0.5:2181/swarm');
  const connectString = endpoints.join(',');
  const sessions = new Map<number, Session>();
  const closing = new AbortController();

  function sessionFor(timeoutMs: number): Session {
    const ms = Math.max(1000, Math.round(timeoutMs));
    let s = sessions.get(ms);
    if (s === undefined) {
      s = new Session(connectString, ms, opts.timeoutMs);
      sessions.set(ms, s);
      const session = s;
      session.subscribe((ev) => {
        if (ev === 'expired') reRegister(session);
      });
    }
    return s;
  }
  const reader = (): Session => sessionFor(READ_SESSION_MS);

  // ---- requests, as promises
  const getChildren = (s: Session, path: string, watcher?: (e: ZkEvent) => void): Promise<string[]> =>
    s.call<string[]>(`getChildren ${path}`, (c, cb) => (watcher ? c.getChildren(path, watcher, cb) : c.getChildren(path, cb)));
  const getData = (s: Session, path: string, watcher?: (e: ZkEvent) => void): Promise<Buffer> =>
    s.call<Buffer>(`getData ${path}`, (c, cb) => (watcher ? c.getData(path, watcher, cb) : c.getData(path, cb)));
  /** The node's stat, or null when it does not exist (a watcher then fires on creation). */
  const exists = (s: Session, path: string, watcher?: (e: ZkEvent) => void): Promise<Stat | null> =>
    s.call<Stat | null>(`exists ${path}`, (c, cb) => (watcher ? c.exists(path, watcher, cb) : c.exists(path, cb)));
  const createNode = (s: Session, path: string, data: string, mode: number): Promise<string> =>
    s.call<string>(`create ${path}`, (c, cb) => c.create(path, Buffer.from(data), mode, cb));
  const mkdirp = (s: Session, path: string): Promise<string> => s.call<string>(`mkdirp ${path}`, (c, cb) => c.mkdirp(path, cb));
  const setData = (s: Session, path: string, data: string, version: number): Promise<Stat> =>
    s.call<Stat>(`setData ${path}`, (c, cb) => c.setData(path, Buffer.from(data), version, cb));
  const remove = (s: Session, path: string, version: number): Promise<null> =>
    s.call<null>(`remove ${path}`, (c, cb) => c.remove(path, version, (err) => cb(err, null)));

  /** Creates an ephemeral node, making its parents (persistent) first. */
  async function createEphemeral(s: Session, path: string, value: string): Promise<void> {
    try {
      await createNode(s, path, value, CreateMode.EPHEMERAL);
    } catch (err) {
      if (zkCode(err) !== Exception.NO_NODE) throw err;
      await mkdirp(s, parentOf(path));
      await createNode(s, path, value, CreateMode.EPHEMERAL);
    }
  }

  /** Removes a node if the session owns it (absent: nothing to do). */
  async function removeIfOwned(s: Session, path: string): Promise<void> {
    const stat = await exists(s, path);
    if (stat === null || !s.owns(stat)) return;
    try {
      await remove(s, path, stat.version);
    } catch (err) {
      const code = zkCode(err);
      if (code !== Exception.NO_NODE && code !== Exception.BAD_VERSION) throw err;
    }
  }

  // ---- registrations (putWithTtl)
  interface Registration {
    value: string;
    ttlMs: number;
    session: Session;
    timer: NodeJS.Timeout;
  }
  const registrations = new Map<string, Registration>();
  const chains = new Map<string, Promise<void>>();

  /** Runs the operations on one key one after the other (a put never races its own expiry). */
  function serialized(key: string, op: () => Promise<void>): Promise<void> {
    const run = (chains.get(key) ?? Promise.resolve()).then(op, op);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    chains.set(key, tail);
    void tail.then(() => {
      if (chains.get(key) === tail) chains.delete(key);
    });
    return run;
  }

  async function writeEphemeral(s: Session, path: string, value: string): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await createEphemeral(s, path, value);
        return;
      } catch (err) {
        if (zkCode(err) !== Exception.NODE_EXISTS) throw err;
      }
      const stat = await exists(s, path);
      if (stat === null) continue;
      if (s.owns(stat)) {
        await setData(s, path, value, -1);
        return;
      }
      // Someone else's node (a previous run of this engine whose session has not expired
      // yet, or a persistent node): the newest registration wins.
      try {
        await remove(s, path, stat.version);
      } catch (err) {
        const code = zkCode(err);
        if (code !== Exception.NO_NODE && code !== Exception.BAD_VERSION) throw err;
      }
    }
    throw new Error(`zookeeper: ${path} keeps changing under us; not registered`);
  }

  function expireLater(key: string, ttlMs: number): NodeJS.Timeout {
    const timer = setTimeout(() => {
      void serialized(key, async () => {
        const reg = registrations.get(key);
        if (reg?.timer !== timer) return;
        registrations.delete(key);
        await removeIfOwned(reg.session, znode(key));
      }).catch((err: unknown) => log.debug('removing an expired registration failed; the session will', { key, err: errText(err) }));
    }, ttlMs);
    // Expiry must not keep a process alive that has nothing else to do.
    timer.unref();
    return timer;
  }

  function reRegister(s: Session): void {
    for (const [key, reg] of registrations) {
      if (reg.session !== s) continue;
      void serialized(key, () => writeEphemeral(s, znode(key), reg.value)).catch((err: unknown) =>
        log.warn('re-registering after a session expiry failed; the next heartbeat retries', { key, err: errText(err) }),
      );
    }
  }

  // ---- reads
  async function readDir(s: Session, dir: string, watcher?: (e: ZkEvent) => void): Promise<KvEntry[]> {
    const path = znode(dir);
    const base = cleanKey(dir);
    let children: string[];
    try {
      children = await getChildren(s, path, watcher);
    } catch (err) {
      if (zkCode(err) !== Exception.NO_NODE) throw err;
      // Absent: [] — and when watching, be told when it appears.
      if (watcher) {
        const stat = await exists(s, path, watcher);
        if (stat !== null) return readDir(s, dir, watcher);
      }
      return [];
    }
    const entries: KvEntry[] = [];
    for (const child of children.sort()) {
      if (path === '/' && child === 'zookeeper') continue;
      const childPath = path === '/' ? `/${child}` : `${path}/${child}`;
      try {
        const data = await getData(s, childPath, watcher);
        entries.push({ key: base === '' ? child : `${base}/${child}`, value: data ? data.toString() : '' });
      } catch (err) {
        if (zkCode(err) !== Exception.NO_NODE) throw err;
      }
    }
    return entries;
  }

  async function readKey(s: Session, key: string, watcher?: (e: ZkEvent) => void): Promise<string | undefined> {
    const path = znode(key);
    try {
      const data = await getData(s, path, watcher);
      return data ? data.toString() : '';
    } catch (err) {
      if (zkCode(err) !== Exception.NO_NODE) throw err;
      if (watcher) {
        const stat = await exists(s, path, watcher);
        if (stat !== null) return readKey(s, key, watcher);
      }
      return undefined;
    }
  }

  /**
   * Watches are one-shot: each read sets them again. A reconnection within the session
   * gets them back from the client; a new session (after an expiry) gets them from the
   * next read, which the session's events trigger.
   */
  async function* watchReads<T>(what: string, read: (s: Session, watcher: (e: ZkEvent) => void) => Promise<T>, signal: AbortSignal): AsyncGenerator<T> {
    const stop = AbortSignal.any([signal, closing.signal]);
    const s = reader();
    const wake = new Wakeup();
    // One function per watch: the client registers a watcher once per path, however often it is passed.
    const watcher = (): void => wake.notify();
    const unsubscribe = s.subscribe((ev) => {
      if (ev !== 'disconnected') wake.notify();
    });
    let last: string | undefined;
    try {
      while (!stop.aborted) {
        const read1 = await untilDone('zookeeper', stop, what, () => read(s, watcher));
        if (read1 === undefined) return;
        const shown = JSON.stringify(read1.value) ?? 'undefined';
        if (shown !== last) {
          last = shown;
          yield read1.value;
        }
        await wake.wait(stop);
      }
    } finally {
      unsubscribe();
    }
  }

  return {
    kind: 'zk',

    putWithTtl(key, value, ttlMs) {
      const k = cleanKey(key);
      return serialized(k, async () => {
        const s = sessionFor(ttlMs);
        const prev = registrations.get(k);
        if (prev) clearTimeout(prev.timer);
        if (prev && prev.session !== s) await removeIfOwned(prev.session, znode(k));
        await writeEphemeral(s, znode(k), value);
        registrations.set(k, { value, ttlMs, session: s, timer: expireLater(k, ttlMs) });
      });
    },

    delete(key) {
      const k = cleanKey(key);
      return serialized(k, async () => {
        const reg = registrations.get(k);
        if (reg) clearTimeout(reg.timer);
        registrations.delete(k);
        const s = reg?.session ?? reader();
        try {
          await remove(s, znode(k), -1);
        } catch (err) {
          if (zkCode(err) !== Exception.NO_NODE) throw err;
        }
      });
    },

    list(dir) {
      return readDir(reader(), dir);
    },

    watchTree(dir, signal) {
      return watchReads(`watch ${znode(dir)}`, (s, w) => readDir(s, dir, w), signal);
    },

    watchKey(key, signal) {
      return watchReads<string | undefined>(`watch ${znode(key)}`, (s, w) => readKey(s, key, w), signal);
    },

    campaign(key, value, ttlMs, signal) {
      return campaign(znode(key), value, ttlMs, signal);
    },

    async breakLock(key, value) {
      // Only the node holding the dead primary's address, at the version read.
      const s = reader();
      const path = znode(key);
      const stat = await exists(s, path);
      if (stat === null) return false;
      const data = await getData(s, path);
      if (data.toString('utf8') !== value) return false;
      try {
        await remove(s, path, stat.version);
        return true;
      } catch (err) {
        const code = zkCode(err);
        if (code === Exception.NO_NODE || code === Exception.BAD_VERSION) return false;
        throw err;
      }
    },

    async close() {
      if (closing.signal.aborted) return;
      closing.abort();
      for (const reg of registrations.values()) clearTimeout(reg.timer);
      registrations.clear();
      // Closing a session deletes its ephemeral nodes at once, as a process exiting does.
      await Promise.all([...sessions.values()].map((s) => s.close()));
      sessions.clear();
    },
  };

  /**
   * The lock is an ephemeral node at the key, created by the first candidate; the others
   * watch it and try again when it goes. The holder counts itself lost when the node goes
   * or changes owner, when its session expires, or when it has been disconnected for the
   * session timeout (the server may have expired the session by then).
   */
  async function* campaign(path: string, value: string, ttlMs: number, signal: AbortSignal): AsyncGenerator<boolean> {
    const stop = AbortSignal.any([signal, closing.signal]);
    const s = sessionFor(ttlMs);
    const wake = new Wakeup();
    const watcher = (): void => wake.notify();
    let lossTimer: NodeJS.Timeout | undefined;
    let lost: boolean;
    let held = false;
    const unsubscribe = s.subscribe((ev) => {
      switch (ev) {
        case 'connected':
          clearTimeout(lossTimer);
          lossTimer = undefined;
          break;
        case 'disconnected':
          if (held && lossTimer === undefined) {
            lossTimer = setTimeout(() => {
              lost = true;
              wake.notify();
            }, s.negotiatedMs());
          }
          break;
        case 'expired':
          lost = true;
          break;
        default: {
          const never: never = ev;
          throw new Error(`unknown session event ${String(never)}`);
        }
      }
      wake.notify();
    });
    /** Aborting releases at once, even while the caller is not pulling from us. */
    const release = (): void => {
      clearTimeout(lossTimer);
      if (!held) return;
      held = false;
      if (closing.signal.aborted) return; // the session's close removes the node
      removeIfOwned(s, path).catch((err: unknown) => log.debug('zookeeper lock release failed', { path, err: errText(err) }));
    };
    const onStop = (): void => release();
    stop.addEventListener('abort', onStop, { once: true });
    let delay = BACKOFF_FIRST_MS;
    try {
      while (!stop.aborted) {
        let won = false;
        try {
          await createEphemeral(s, path, value);
          won = true;
        } catch (err) {
          if (zkCode(err) !== Exception.NODE_EXISTS) {
            if (stop.aborted) return;
            log.debug('zookeeper campaign attempt failed', { path, err: errText(err), retryMs: delay });
            await pause(delay, stop);
            delay = Math.min(BACKOFF_CAP_MS, delay * 2);
            continue;
          }
        }
        delay = BACKOFF_FIRST_MS;
        if (!won) {
          try {
            const stat = await exists(s, path, watcher);
            if (stat === null) continue;
            if (s.owns(stat)) {
              // Our own node from before a loss we declared ourselves: clear it and run again.
              await removeIfOwned(s, path);
              continue;
            }
          } catch (err) {
            log.debug('zookeeper campaign watch failed', { path, err: errText(err) });
            await pause(delay, stop);
            continue;
          }
          await wake.wait(stop);
          continue;
        }

        held = true;
        // An expiry before this point shows as a node owned by another session below.
        lost = false;
        yield true;
        while (!stop.aborted && !lost) {
          try {
            const stat = await exists(s, path, watcher);
            if (stat === null || !s.owns(stat)) lost = true;
          } catch (err) {
            log.debug('zookeeper lock check failed; the session decides', { path, err: errText(err) });
          }
          if (lost || stop.aborted) break;
          await wake.wait(stop);
        }
        if (stop.aborted) return;
        held = false;
        clearTimeout(lossTimer);
        lossTimer = undefined;
        log.info('lost the zookeeper lock', { path });
        removeIfOwned(s, path).catch(() => undefined);
        yield false;
      }
    } finally {
      stop.removeEventListener('abort', onStop);
      unsubscribe();
      release();
    }
  }
}

registerKvStore('zk', createZkStore);
