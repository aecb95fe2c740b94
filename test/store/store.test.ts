// The replicated store over three raft members with real WALs on disk (peers talk over an
// in-process network; test/raft/procs.e2e.test.ts kills real processes under the same
// driver and sealed WAL): transactions
// through raft, optimistic concurrency across managers, linearizable reads, watches that
// resume across a restart, and data at rest sealed.

import { strict as assert } from 'node:assert';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { NodeId } from '../../src/raft/core/index.js';
import { newDataKey } from '../../src/raft/driver/index.js';
import type { DataKey, Tuning } from '../../src/raft/driver/index.js';
import { ClusterStore, StoreError } from '../../src/store/index.js';
import type { Commit, Limits, ServiceFields, StoreObject } from '../../src/store/index.js';
import { MemoryNetwork } from '../raft/memnet.js';

const FAST: Partial<Tuning> = { tickMs: 10, electionTicks: 10, heartbeatTicks: 1, requestTimeoutMs: 3000 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function service(name: string, replicas = 1, labels: Record<string, string> = {}): ServiceFields {
  return { spec: { annotations: { name, labels }, taskTemplate: { containerSpec: { image: 'busybox' } }, mode: { replicated: { replicas } } } };
}

class Managers {
  readonly net = new MemoryNetwork();
  readonly stores = new Map<NodeId, ClusterStore>();
  readonly keys = new Map<NodeId, DataKey>();

  constructor(
    readonly root: string,
    readonly ids: NodeId[],
    readonly tuning: Partial<Tuning> = FAST,
    readonly limits: Partial<Limits> = {},
  ) {}

  async start(id: NodeId, key?: DataKey): Promise<ClusterStore> {
    const store = await ClusterStore.open({
      id,
      dir: join(this.root, id),
      transport: this.net.transport(id),
      addresses: new Map(),
      bootstrap: { kind: 'found', voters: this.ids },
      tuning: this.tuning,
      limits: this.limits,
      ...(key === undefined ? {} : { dataKey: key }),
    });
    this.stores.set(id, store);
    return store;
  }

  async startAll(): Promise<void> {
    for (const id of this.ids) await this.start(id);
  }

  get(id: NodeId): ClusterStore {
    const s = this.stores.get(id);
    if (s === undefined) throw new Error(`no manager ${id}`);
    return s;
  }

  async stop(id: NodeId): Promise<void> {
    await this.get(id).close();
    this.stores.delete(id);
  }

  /** A leader every manager already follows (one that has not heard from it yet would refuse with noLeader). */
  async leader(): Promise<ClusterStore> {
    for (let i = 0; i < 500; i++) {
      for (const s of this.stores.values()) {
        if (s.status().role !== 'leader') continue;
        const id = s.status().id;
        if ([...this.stores.values()].every((o) => o.status().leader === id)) return s;
      }
      await sleep(10);
    }
    throw new Error('no leader elected');
  }

  followers(leader: ClusterStore): ClusterStore[] {
    return [...this.stores.values()].filter((s) => s !== leader);
  }

  async converged(): Promise<void> {
    for (let i = 0; i < 500; i++) {
      const digests = new Set([...this.stores.values()].map((s) => `${s.version}|${s.digest()}`));
      if (digests.size === 1) return;
      await sleep(10);
    }
    throw new Error(`replicas did not converge: ${[...this.stores].map(([id, s]) => `${id}@${s.version}`).join(', ')}`);
  }
}

async function withManagers(fn: (m: Managers) => Promise<void>, tuning?: Partial<Tuning>, limits?: Partial<Limits>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'store-'));
  const m = new Managers(root, ['m1', 'm2', 'm3'], tuning, limits);
  try {
    await m.startAll();
    await fn(m);
  } finally {
    for (const id of [...m.stores.keys()]) await m.stop(id);
    await rm(root, { recursive: true, force: true });
  }
}

test('store: writes on any manager replicate; a linearizable read on a follower sees the last acknowledged write', () =>
  withManagers(async (m) => {
    const leader = await m.leader();
    const [f1, f2] = m.followers(leader) as [ClusterStore, ClusterStore];
    const web = await leader.create('service', service('web', 2));
    assert.equal(web.meta.id.length, 25);
    assert.ok(web.meta.version > 0);
    const net = await f1.create('network', { spec: { annotations: { name: 'backend' }, driver: 'overlay' } });
    const task = await f2.create('task', { serviceId: web.meta.id, slot: 1, spec: web.spec.taskTemplate, desiredState: 'running', status: { state: 'new', timestamp: new Date().toISOString() } });
    const seen = await f1.read((r) => r.find('task', 'service', web.meta.id).map((t) => t.meta.id), { linearizable: true });
    assert.deepEqual(seen, [task.meta.id]);
    assert.equal(f2.byName('network', 'backend')?.meta.id, net.meta.id);
    // Names stay unique across managers: the second create of "web" is refused wherever it comes from.
    await assert.rejects(f2.create('service', service('web')), (err: unknown) => err instanceof StoreError && err.code === 'nameConflict' && /service name "web" is already in use/.test(err.message));
    await m.converged();
  }));

test('store: concurrent updates from three managers: stale writes are refused, and modify() retries so no update is lost', () =>
  withManagers(async (m) => {
    const leader = await m.leader();
    const svc = await leader.create('service', service('counter', 1, { n: '0' }));
    await m.converged();
    // Two managers read the same version; only the first write wins.
    const [a, b] = m.followers(leader) as [ClusterStore, ClusterStore];
    const readA = a.get('service', svc.meta.id) as StoreObject<'service'>;
    const readB = b.get('service', svc.meta.id) as StoreObject<'service'>;
    const results = await Promise.allSettled([a.update('service', readA, service('counter', 2, { n: '0' })), b.update('service', readB, service('counter', 3, { n: '0' }))]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const refused = results.find((r) => r.status === 'rejected');
    assert.ok(refused?.status === 'rejected' && refused.reason instanceof StoreError && refused.reason.code === 'versionConflict');
    // Increments racing from every manager: read-modify-write with retry loses none.
    const bump = (s: ClusterStore): Promise<unknown> =>
      s.modify(
        'service',
        svc.meta.id,
        (cur) => ({ ...cur, spec: { ...cur.spec, annotations: { name: 'counter', labels: { n: String(Number(cur.spec.annotations.labels?.n) + 1) } } } }),
        50,
      );
    await Promise.all([...m.stores.values()].flatMap((s) => Array.from({ length: 10 }, () => bump(s))));
    const final = await leader.read((r) => r.get('service', svc.meta.id), { linearizable: true });
    assert.equal(final?.spec.annotations.labels?.n, '30');
    await m.converged();
  }));

test('store: a watch resumed after its manager restarts sees every change once, also across snapshots', () =>
  withManagers(
    async (m) => {
      const leader = await m.leader();
      const watcherId = (m.followers(leader)[0] as ClusterStore) === m.get('m1') ? 'm1' : (m.followers(leader)[0] as ClusterStore) === m.get('m2') ? 'm2' : 'm3';
      const from = m.get(watcherId).version;
      // The consumer: applies each change to its own copy and records the last version it finished.
      const mirror = new Map<string, number>();
      let position = from;
      let catchUps = 0;
      // A failing writer must fail the test, not leave the consumer waiting forever.
      const abort = new AbortController();
      const consume = async (store: ClusterStore, stopAfter: (c: Commit) => boolean): Promise<void> => {
        for await (const commit of store.watch({ from: position, kinds: ['service'], signal: abort.signal })) {
          if (commit.catchUp === true) catchUps++;
          for (const change of commit.changes) {
            if (change.action === 'delete') {
              assert.ok(mirror.has(change.object.meta.id), `delete of ${change.object.meta.id}, never seen`);
              mirror.delete(change.object.meta.id);
            } else {
              if (change.action === 'create') assert.ok(!mirror.has(change.object.meta.id), `create of ${change.object.meta.id} seen twice`);
              const prev = mirror.get(change.object.meta.id);
              assert.ok(prev === undefined || prev < change.object.meta.version, 'a change seen twice');
              mirror.set(change.object.meta.id, change.object.meta.version);
            }
          }
          position = commit.version;
          if (stopAfter(commit)) return;
        }
      };
      const writer = (async () => {
        const ids: string[] = [];
        for (let i = 0; i < 120; i++) {
          if (i % 4 === 3 && ids.length > 0) await leader.delete('service', ids.shift() as string);
          else ids.push((await leader.create('service', service(`s${i}`))).meta.id);
          if (i % 3 === 0 && ids.length > 0) await leader.modify('service', ids[0] as string, (cur) => ({ ...cur, spec: { ...cur.spec, mode: { replicated: { replicas: i } } } }));
        }
      })();
      writer.catch(() => abort.abort());
      // Consume a while, then the watcher's manager restarts (from its snapshot + WAL) and the watch resumes.
      await consume(m.get(watcherId), () => mirror.size >= 20);
      await m.stop(watcherId);
      await sleep(100);
      const again = await m.start(watcherId);
      await writer;
      const target = leader.version;
      await consume(again, (c) => c.version >= target);
      assert.equal(abort.signal.aborted, false, 'the writer failed');
      // The restart restored a snapshot taken after the watcher's position: it resumed through a catch-up batch.
      assert.ok(catchUps >= 1, `catch-up batches: ${catchUps}`);
      await m.converged();
      const expected = new Map(again.list('service').map((s) => [s.meta.id, s.meta.version]));
      assert.deepEqual(new Map([...mirror].sort()), new Map([...expected].sort()));
      assert.ok(again.status().snapshotIndex > from, 'a snapshot was taken while the watcher consumed');
    },
    { ...FAST, snapshotInterval: 40, keepEntries: 10 },
    { commits: 16 },
  ));

test('store: a watch from a version whose deletes are forgotten fails with compacted and says what to do', () =>
  withManagers(
    async (m) => {
      const leader = await m.leader();
      const from = leader.version;
      const first = await leader.create('config', { spec: { annotations: { name: 'c' }, data: '' } });
      for (let i = 0; i < 12; i++) {
        const c = await leader.create('config', { spec: { annotations: { name: `x${i}` }, data: '' } });
        await leader.delete('config', c.meta.id);
      }
      const w = leader.watch({ from });
      await assert.rejects(w.next(), (err: unknown) => err instanceof StoreError && err.code === 'compacted' && /read the store again and watch from its version/.test(err.message));
      // snapshotAndWatch is the way back: a consistent list, then everything after it.
      const { version, objects, watch } = leader.snapshotAndWatch(['config']);
      assert.deepEqual(
        objects.config.map((c) => c.meta.id),
        [first.meta.id],
      );
      const next = watch.next();
      await leader.delete('config', first.meta.id);
      const got = await next;
      assert.equal(got.done, false);
      assert.ok(!got.done && got.value.version > version && got.value.changes[0]?.action === 'delete');
      await watch.return();
    },
    FAST,
    { commits: 4, tombstones: 4 },
  ));

test('store: data at rest is sealed (no secret readable in any file of any manager), and a manager will not start with the wrong key', () =>
  withManagers(
    async (m) => {
      const leader = await m.leader();
      const plain = 'correct-horse-battery-staple';
      const data = Buffer.from(plain).toString('base64');
      await leader.create('secret', { spec: { annotations: { name: 'db-password' }, data } });
      for (let i = 0; i < 60; i++) await leader.create('config', { spec: { annotations: { name: `cfg${i}` }, data } });
      await m.converged();
      assert.ok(leader.status().snapshotIndex > 0, 'a snapshot is on disk too');
      const files: string[] = [];
      const walk = async (dir: string): Promise<void> => {
        for (const e of await readdir(dir, { withFileTypes: true })) {
          if (e.isDirectory()) await walk(join(dir, e.name));
          else files.push(join(dir, e.name));
        }
      };
      await walk(m.root);
      assert.ok(files.some((f) => f.endsWith('/raft/wal')));
      for (const f of files) {
        const bytes = await readFile(f);
        for (const needle of [plain, data, 'db-password', 'cfg1']) assert.equal(bytes.includes(needle), false, `${needle} readable in ${f}`);
      }
      const id = [...m.stores.keys()].find((k) => m.get(k) !== leader) as NodeId;
      await m.stop(id);
      await assert.rejects(m.start(id, newDataKey('wrong')), /sealed with data key "dek-[0-9a-f]+", which this node was not given/);
      const back = await m.start(id);
      await m.converged();
      assert.equal(back.byName('secret', 'db-password')?.spec.data, data);
    },
    { ...FAST, snapshotInterval: 30, keepEntries: 5 },
  ));

test('store: an oversized transaction is refused before it is proposed', () =>
  withManagers(async (m) => {
    const leader = await m.leader();
    const huge = 'x'.repeat(2 * 1024 * 1024);
    await assert.rejects(leader.create('config', { spec: { annotations: { name: 'big' }, data: huge } }), (err: unknown) => err instanceof StoreError && err.code === 'tooLarge' && /exceeds the \d+ byte limit; split it/.test(err.message));
    assert.equal(leader.byName('config', 'big'), undefined);
  }));
