// One behaviour for every KvStore (etcd, zk, consul): what classic Swarm's discovery and
// primary election rely on, checked against a real server. Each store's test file calls
// kvConformance with a way to start its server; nothing here knows which store it is.
// Timing assertions are generous on purpose: they bound "about the TTL", not the clock.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { kvKey, type KvEntry, type KvFactory, type KvStore } from '../../legacy/discovery/kv.js';

const kvModule = new URL('../../legacy/discovery/kv.js', import.meta.url).href;

/**
 * A node process that registers `node` and campaigns for `lock` with the given TTL, says
 * "ready" once it holds the lock, and keeps renewing until it is killed.
 */
const childScript = `
const [kvModule, storeModule, scheme, endpoints, node, lock, ttl] = JSON.parse(process.argv[1]);
const { kvStoreFactory } = await import(kvModule);
await import(storeModule);
const store = kvStoreFactory(scheme)(endpoints, { timeoutMs: 2000 });
const renew = () => store.putWithTtl(node, 'child', ttl).catch(() => undefined);
await renew();
setInterval(renew, ttl / 3);
for await (const held of store.campaign(lock, 'child', ttl, new AbortController().signal)) {
  if (held) process.stdout.write('ready\\n');
}
`;

export interface KvHarness {
  /** A store connected to the running server. */
  store: KvStore;
  /** Another, independent client of the same server (another process, as far as the store can tell). */
  connect(): KvStore;
  /** Stops the server, keeping its data. */
  outage(): Promise<void>;
  /** Starts it again with its data. */
  recover(): Promise<void>;
  /** Closes the stores the harness made and stops the server. */
  close(): Promise<void>;
  /**
   * How a separate process makes the same store: the module that registers it (file URL)
   * and the scheme and endpoints to pass to its factory. Used to SIGKILL a registered
   * engine and a primary for real.
   */
  child: { module: string; scheme: string; endpoints: string[] };
}

/** What a store's test file supplies; storeHarness() does the wiring every store shares. */
export interface HarnessParts {
  /** The module that registers the store (file URL), for the SIGKILL test's child process. */
  module: string;
  scheme: string;
  /** The address clients use ("127.0.0.1:PORT"). */
  endpoint: string;
  factory: KvFactory;
  outage(): Promise<void>;
  recover(): Promise<void>;
  /** Stops the server (after every store the harness made is closed). */
  stop(): Promise<void>;
}

/** A harness whose stores are all closed, then the server stopped, by close(). */
export function storeHarness(parts: HarnessParts): KvHarness {
  const stores: KvStore[] = [];
  const connect = (): KvStore => {
    const s = parts.factory([parts.endpoint], { timeoutMs: 2000 });
    stores.push(s);
    return s;
  };
  return {
    store: connect(),
    connect,
    child: { module: parts.module, scheme: parts.scheme, endpoints: [parts.endpoint] },
    outage: parts.outage,
    recover: parts.recover,
    async close() {
      await Promise.all(stores.map((s) => s.close()));
      await parts.stop();
    },
  };
}

export interface ConformanceOptions {
  /** TTL for the expiry tests; the store must honour it within about itself (default 3 s). */
  ttlMs?: number;
}

const TIMEOUT = Symbol('timeout');

/** Pulls from an async iterable with a time limit per pull, keeping a pull that timed out for the next call. */
class Pull<T> {
  private readonly it: AsyncIterator<T>;
  private pending: Promise<IteratorResult<T>> | undefined;
  readonly seen: T[] = [];

  constructor(iterable: AsyncIterable<T>) {
    this.it = iterable[Symbol.asyncIterator]();
  }

  async next(ms: number): Promise<T | typeof TIMEOUT> {
    this.pending ??= this.it.next();
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      this.pending,
      new Promise<typeof TIMEOUT>((resolve) => {
        timer = setTimeout(() => resolve(TIMEOUT), ms);
      }),
    ]);
    clearTimeout(timer);
    if (r === TIMEOUT) return TIMEOUT;
    this.pending = undefined;
    if (r.done === true) throw new Error(`the iterator ended; seen so far: ${JSON.stringify(this.seen)}`);
    this.seen.push(r.value);
    return r.value;
  }

  /** The first value satisfying pred within ms; fails with everything seen otherwise. */
  async until(what: string, pred: (v: T) => boolean, ms: number): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const v = await this.next(left);
      if (v === TIMEOUT) break;
      if (pred(v)) return v;
    }
    assert.fail(`${what}: not seen within ${ms} ms; seen ${JSON.stringify(this.seen)}`);
  }

  /** Ends the iteration (the signal has been aborted) and checks that it does end. */
  async end(ms = 10_000): Promise<void> {
    const last = this.pending ?? this.it.next();
    this.pending = undefined;
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      last,
      new Promise<typeof TIMEOUT>((resolve) => {
        timer = setTimeout(() => resolve(TIMEOUT), ms);
      }),
    ]);
    clearTimeout(timer);
    assert.notEqual(r, TIMEOUT, 'the iterator did not end within 10 s of its signal aborting');
    await this.it.return?.();
  }
}

const keysOf = (entries: KvEntry[]): string[] => entries.map((e) => e.key);

async function eventually(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(200);
  }
  assert.fail(`${what}: not within ${ms} ms`);
}

export function kvConformance(name: string, start: () => Promise<KvHarness>, options: ConformanceOptions = {}): void {
  const ttl = options.ttlMs ?? 3000;
  /** "Within about the TTL": the TTL, plus the store's own granularity, plus a slow machine. */
  const expiryBound = ttl * 2 + 10_000;

  describe(`KvStore conformance: ${name}`, () => {
    let h: KvHarness;
    const run = randomBytes(3).toString('hex');
    let n = 0;
    /** A fresh discovery prefix per test, so tests never see each other's keys. */
    const prefix = (): string => `conf-${run}-${++n}`;
    const nodes = (p: string): string => kvKey(p, 'docker/swarm/nodes');
    const leader = (p: string): string => kvKey(p, 'docker/swarm/leader');

    before(async () => {
      h = await start();
    });
    after(async () => {
      await h.close();
    });

    test('put, list (direct children, full keys), delete', async () => {
      const p = prefix();
      const dir = nodes(p);
      const a = kvKey(dir, '10.0.0.1:2375');
      const b = kvKey(dir, '10.0.0.2:2375');
      await h.store.putWithTtl(b, '10.0.0.2:2375', 60_000);
      await h.store.putWithTtl(a, '10.0.0.1:2375', 60_000);
      assert.deepEqual(await h.store.list(dir), [
        { key: a, value: '10.0.0.1:2375' },
        { key: b, value: '10.0.0.2:2375' },
      ]);
      // Re-putting renews in place, with a new value if there is one.
      await h.store.putWithTtl(a, '10.0.0.1:2376', 60_000);
      assert.deepEqual(await h.store.list(dir), [
        { key: a, value: '10.0.0.1:2376' },
        { key: b, value: '10.0.0.2:2375' },
      ]);
      // One level only: the engines are not children of the directory above.
      const parent = await h.store.list(kvKey(p, 'docker/swarm'));
      assert.ok(!parent.some((e) => e.key === a || e.key === b), `grandchildren listed: ${JSON.stringify(parent)}`);
      // Another client sees the same.
      const other = h.connect();
      assert.deepEqual(keysOf(await other.list(dir)), [a, b]);
      await h.store.delete(a);
      assert.deepEqual(keysOf(await h.store.list(dir)), [b]);
      await h.store.delete(a);
      await h.store.delete(kvKey(dir, 'never-there:1'));
      assert.deepEqual(keysOf(await other.list(dir)), [b]);
      await h.store.delete(b);
      assert.deepEqual(await h.store.list(dir), []);
    });

    test('a directory that does not exist lists as []', async () => {
      assert.deepEqual(await h.store.list(nodes(prefix())), []);
      assert.deepEqual(await h.store.list(`${prefix()}/no/such/dir`), []);
    });

    test('an unrenewed key expires after about its TTL', async () => {
      const dir = nodes(prefix());
      const k = kvKey(dir, '10.0.0.3:2375');
      const began = Date.now();
      await h.store.putWithTtl(k, '10.0.0.3:2375', ttl);
      assert.deepEqual(keysOf(await h.store.list(dir)), [k]);
      // Checked from another client: what the other managers see.
      const other = h.connect();
      await eventually('the key expires', expiryBound, async () => (await other.list(dir)).length === 0);
      const lived = Date.now() - began;
      assert.ok(lived >= ttl / 2, `the key vanished after ${lived} ms, well before its TTL of ${ttl} ms`);
    });

    test('renewals keep a key alive well past its TTL', async () => {
      const dir = nodes(prefix());
      const k = kvKey(dir, '10.0.0.4:2375');
      const other = h.connect();
      const until = Date.now() + ttl * 2.5;
      while (Date.now() < until) {
        await h.store.putWithTtl(k, '10.0.0.4:2375', ttl);
        assert.deepEqual(keysOf(await other.list(dir)), [k], 'a renewed key went missing');
        await sleep(ttl / 4);
      }
      await h.store.delete(k);
    });

    test('watchTree yields the list now, on an addition and on an expiry', async () => {
      const dir = nodes(prefix());
      const k = kvKey(dir, '10.0.0.5:2375');
      const stop = new AbortController();
      const watcher = h.connect();
      const w = new Pull(watcher.watchTree(dir, stop.signal));
      try {
        assert.deepEqual(await w.until('the first list', () => true, 10_000), []);
        await h.store.putWithTtl(k, '10.0.0.5:2375', ttl);
        await w.until('the added engine', (l) => keysOf(l).includes(k), 10_000);
        await w.until('the expired engine gone', (l) => l.length === 0, expiryBound);
        stop.abort();
        await w.end();
      } finally {
        stop.abort();
      }
    });

    test('breakLock takes the lock only from the named holder; a waiting candidate is elected and the old holder learns it', async () => {
      const key = leader(prefix());
      const holderStore = h.connect();
      const stop = new AbortController();
      const holder = new Pull(holderStore.campaign(key, '10.0.0.50:4000', ttl, stop.signal));
      try {
        assert.equal(await holder.next(10_000), true);

        assert.equal(await h.store.breakLock(key, '10.0.0.99:4000'), false, 'a lock held by someone else was broken');
        const heir = new Pull(h.store.campaign(key, '10.0.0.51:4000', ttl, stop.signal));
        assert.equal(await heir.next(1000), TIMEOUT, 'elected while the lock was held');
        assert.equal(await h.store.breakLock(key, '10.0.0.50:4000'), true);
        assert.equal(await heir.next(expiryBound), true, 'the waiting candidate was not elected after the lock was broken');
        assert.equal(await holder.next(expiryBound), false, 'the holder did not learn that it lost the lock');
      } finally {
        stop.abort();
      }
    });

    test('campaign: first wins, second waits, first aborts -> second; watchKey follows the holder', async () => {
      const key = leader(prefix());
      const a = h.connect();
      const b = h.connect();
      const stopA = new AbortController();
      const stopB = new AbortController();
      const stopW = new AbortController();
      const ca = new Pull(a.campaign(key, '10.0.0.10:4000', ttl, stopA.signal));
      const watch = new Pull(h.store.watchKey(key, stopW.signal));
      try {
        assert.equal(await ca.next(10_000), true, 'the only candidate was not elected');
        await watch.until("the primary's address", (v) => v === '10.0.0.10:4000', 10_000);
        const cb = new Pull(b.campaign(key, '10.0.0.11:4000', ttl, stopB.signal));
        assert.equal(await cb.next(ttl + 1000), TIMEOUT, 'a second candidate was elected while the first held the lock');
        stopA.abort();
        await ca.end();
        assert.equal(await cb.next(expiryBound), true, 'the second candidate was not elected after the first released');
        await watch.until("the new primary's address", (v) => v === '10.0.0.11:4000', 10_000);
        stopB.abort();
        await cb.end();
        await watch.until('no primary', (v) => v === undefined, expiryBound);
        stopW.abort();
        await watch.end();
      } finally {
        stopA.abort();
        stopB.abort();
        stopW.abort();
      }
    });

    test('a holder that dies (store closed, nothing released) loses the lock within about the TTL', async () => {
      const key = leader(prefix());
      const dying = h.connect();
      const heir = h.connect();
      const stop = new AbortController();
      try {
        const cd = new Pull(dying.campaign(key, '10.0.0.20:4000', ttl, stop.signal));
        assert.equal(await cd.next(10_000), true);
        const ch = new Pull(heir.campaign(key, '10.0.0.21:4000', ttl, stop.signal));
        assert.equal(await ch.next(1000), TIMEOUT);
        await dying.close();
        const began = Date.now();
        await cd.end();
        assert.equal(await ch.next(expiryBound), true, 'the lock of a dead holder was never freed');
        const took = Date.now() - began;
        const stopW = new AbortController();
        const w = new Pull(h.store.watchKey(key, stopW.signal));
        await w.until("the heir's address", (v) => v === '10.0.0.21:4000', 10_000);
        stopW.abort();
        await w.end();
        stop.abort();
        await ch.end();
        process.stderr.write(`# ${name}: dead holder's lock taken over after ${took} ms (TTL ${ttl} ms)\n`);
      } finally {
        stop.abort();
      }
    });

    test('a process killed with SIGKILL: its registration and its lock go within about the TTL', async () => {
      const p = prefix();
      const dir = nodes(p);
      const node = kvKey(dir, '10.0.0.40:2375');
      const lock = leader(p);
      const child = spawn(process.execPath, ['--input-type=module', '-e', childScript, JSON.stringify([kvModule, h.child.module, h.child.scheme, h.child.endpoints, node, lock, ttl])], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const stop = new AbortController();
      try {
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        await eventually('the child holds the lock', 20_000, () => Promise.resolve(out.includes('ready')));
        assert.deepEqual(keysOf(await h.store.list(dir)), [node]);
        const heir = h.connect();
        const ch = new Pull(heir.campaign(lock, '10.0.0.41:4000', ttl, stop.signal));
        assert.equal(await ch.next(1000), TIMEOUT, 'elected while the child held the lock');
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
        const began = Date.now();
        const elected = ch.next(expiryBound);
        await eventually('the killed engine unregistered', expiryBound, async () => (await h.store.list(dir)).length === 0);
        const gone = Date.now() - began;
        assert.equal(await elected, true, 'the lock of a killed primary was never freed');
        const took = Date.now() - began;
        process.stderr.write(`# ${name}: after SIGKILL the registration went in ~${gone} ms, the lock passed in ${took} ms (TTL ${ttl} ms)\n`);
        stop.abort();
        await ch.end();
      } finally {
        stop.abort();
        child.kill('SIGKILL');
      }
    });

    // Last: it restarts the server.
    test('the store goes away and comes back under a running watchTree: no empty list, changes after are seen', async () => {
      const dir = nodes(prefix());
      const a = kvKey(dir, '10.0.0.30:2375');
      const b = kvKey(dir, '10.0.0.31:2375');
      // A TTL longer than the outage: the registration itself must survive it.
      await h.store.putWithTtl(a, '10.0.0.30:2375', 60_000);
      const watcher = h.connect();
      const stop = new AbortController();
      const w = new Pull(watcher.watchTree(dir, stop.signal));
      // A primary through the outage: it may lose the lock (unreachable past the TTL) but must hold it again after.
      const lock = leader(dir);
      const primary = new Pull(watcher.campaign(lock, '10.0.0.32:4000', ttl, stop.signal));
      try {
        await w.until('the engine before the outage', (l) => keysOf(l).includes(a), 10_000);
        assert.equal(await primary.next(10_000), true);
        await h.outage();
        await assert.rejects(watcher.list(dir), 'list() answered while the store was down');
        const during = await w.next(3000);
        assert.notDeepEqual(during, [], 'an empty list was yielded while the store was down');
        await h.recover();
        await h.store.putWithTtl(b, '10.0.0.31:2375', 60_000);
        const both = await w.until('the engine added after recovery', (l) => keysOf(l).includes(b), 30_000);
        assert.ok(keysOf(both).includes(a), `the engine registered before the outage is missing: ${JSON.stringify(both)}`);
        for (const l of w.seen) assert.notDeepEqual(l, [], `an empty list was yielded: ${JSON.stringify(w.seen)}`);
        const afterOutage = await primary.next(expiryBound);
        if (afterOutage === false) await primary.until('the primary elected again', (v) => v, 30_000);
        else assert.equal(afterOutage, TIMEOUT, 'elected twice without losing the lock in between');
        const stopKey = new AbortController();
        const k = new Pull(h.store.watchKey(lock, stopKey.signal));
        await k.until("the primary's address after the outage", (v) => v === '10.0.0.32:4000', expiryBound);
        stopKey.abort();
        await k.end();
        process.stderr.write(`# ${name}: the primary through the outage saw ${JSON.stringify(primary.seen)}\n`);
        stop.abort();
        await w.end();
        await primary.end();
      } finally {
        stop.abort();
      }
    });
  });
}
