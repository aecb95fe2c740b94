// The store's pure core: transaction rules, optimistic concurrency, indexes, the change
// feed a watch resumes from, and snapshots.

import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import type { FieldsOf, ServiceFields, TaskFields, TaskState } from '../../src/store/index.js';
import { encodeInSlices, StoreState } from '../../src/store/index.js';
import type { Commit, Op, TxOutcome } from '../../src/store/index.js';

const T = '2026-11-22T10:00:00.000Z';

function service(name: string, replicas = 1): ServiceFields {
  return { spec: { annotations: { name }, taskTemplate: { containerSpec: { image: 'busybox' } }, mode: { replicated: { replicas } } } };
}

function task(serviceId: string, slot: number, nodeId: string | undefined, desiredState: TaskState = 'running'): TaskFields {
  return { serviceId, slot, ...(nodeId === undefined ? {} : { nodeId }), spec: { containerSpec: { image: 'busybox' } }, desiredState, status: { state: 'new', timestamp: T } };
}

class Harness {
  readonly state: StoreState;
  index = 0;
  constructor(limits?: { commits: number; tombstones: number }) {
    this.state = new StoreState(limits);
  }
  tx(...ops: Op[]): TxOutcome {
    // Through JSON, as a log entry travels.
    return this.state.apply(++this.index, JSON.parse(JSON.stringify({ time: T, ops })));
  }
  ok(...ops: Op[]): number {
    const out = this.tx(...ops);
    assert.ok(out.ok, out.ok ? '' : out.error.message);
    return out.version;
  }
}

const create = <K extends keyof FieldsOf>(kind: K, id: string, fields: FieldsOf[K]): Op => ({ op: 'create', kind, id, fields });

test('store state: create, update at the read version, delete; meta carries id, versions and times', () => {
  const h = new Harness();
  const v1 = h.ok(create('service', 's1', service('web')));
  const s = h.state.get('service', 's1');
  assert.deepEqual(s?.meta, { id: 's1', version: v1, createdVersion: v1, createdAt: T, updatedAt: T });
  assert.equal(h.state.byName('service', 'web')?.meta.id, 's1');
  const out = h.state.apply(++h.index, { time: '2026-11-22T11:00:00.000Z', ops: [{ op: 'update', kind: 'service', id: 's1', version: v1, fields: service('web', 3) }] });
  assert.ok(out.ok);
  const s2 = h.state.get('service', 's1');
  assert.equal(s2?.meta.version, out.version);
  assert.equal(s2?.meta.createdAt, T);
  assert.equal(s2?.meta.updatedAt, '2026-11-22T11:00:00.000Z');
  assert.deepEqual(s2?.spec.mode, { replicated: { replicas: 3 } });
  assert.throws(() => {
    (s2 as unknown as { spec: { mode: unknown } }).spec.mode = {};
  }, TypeError);
  h.ok({ op: 'delete', kind: 'service', id: 's1' });
  assert.equal(h.state.get('service', 's1'), undefined);
  assert.equal(h.state.byName('service', 'web'), undefined);
});

test('store state: a stale update or guarded delete is refused (versionConflict), never merged', () => {
  const h = new Harness();
  const v1 = h.ok(create('service', 's1', service('web')));
  h.ok({ op: 'update', kind: 'service', id: 's1', version: v1, fields: service('web', 2) });
  const stale = h.tx({ op: 'update', kind: 'service', id: 's1', version: v1, fields: service('web', 5) });
  assert.equal(stale.ok, false);
  assert.equal(!stale.ok && stale.error.code, 'versionConflict');
  assert.match(!stale.ok ? stale.error.message : '', /is at version 2, not 1: it changed since it was read/);
  assert.deepEqual(h.state.get('service', 's1')?.spec.mode, { replicated: { replicas: 2 } });
  const del = h.tx({ op: 'delete', kind: 'service', id: 's1', version: v1 });
  assert.equal(!del.ok && del.error.code, 'versionConflict');
  assert.ok(h.state.get('service', 's1') !== undefined);
});

test('store state: exists, notFound, nameConflict and malformed ops are refused with the op that failed', () => {
  const h = new Harness();
  h.ok(create('service', 's1', service('web')));
  const cases: [Op[], string, number, RegExp][] = [
    [[create('service', 's1', service('other'))], 'exists', 0, /service s1 already exists/],
    [[{ op: 'update', kind: 'service', id: 'nope', version: 1, fields: service('x') }], 'notFound', 0, /service nope not found/],
    [[create('service', 's2', service('api')), create('service', 's3', service('web'))], 'nameConflict', 1, /service name "web" is already in use by s1/],
    [[create('service', 's2', service('api')), create('service', 's3', service('api'))], 'nameConflict', 1, /already in use by s2/],
    [[{ op: 'create', kind: 'gizmo' as 'service', id: 'g', fields: service('g') }], 'invalid', 0, /unknown kind "gizmo"/],
    [[create('task', 't1', { ...task('s1', 1, undefined), desiredState: 'sleeping' as TaskState })], 'invalid', 0, /desiredState must be a task state/],
    [[create('service', 's9', { spec: { annotations: { name: '' } } } as unknown as ServiceFields)], 'invalid', 0, /a service needs a name/],
    [[{ op: 'update', kind: 'service', id: 's1', fields: service('web') } as unknown as Op], 'invalid', 0, /must carry the version/],
    [[create('service', 's5', service('a')), { op: 'delete', kind: 'service', id: 's5' }], 'invalid', 1, /changed twice in one transaction/],
  ];
  for (const [ops, code, op, message] of cases) {
    const out = h.tx(...ops);
    assert.equal(out.ok, false, JSON.stringify(ops));
    if (!out.ok) {
      assert.equal(out.error.code, code, out.error.message);
      assert.equal(out.error.op, op);
      assert.match(out.error.message, message);
    }
  }
  // All-or-nothing: the valid first ops of refused transactions left nothing behind.
  assert.deepEqual(
    h.state.list('service').map((s) => s.meta.id),
    ['s1'],
  );
  assert.equal(h.state.apply(++h.index, 'not a transaction').ok, false);
  assert.equal(h.state.apply(++h.index, { time: T, ops: [] }).ok, false);
  // A rename frees the old name within the same transaction.
  const v = h.state.get('service', 's1')?.meta.version ?? 0;
  h.ok({ op: 'update', kind: 'service', id: 's1', version: v, fields: service('web2') }, create('service', 's6', service('web')));
  assert.equal(h.state.byName('service', 'web')?.meta.id, 's6');
  assert.equal(h.state.byName('service', 'web2')?.meta.id, 's1');
});

test('store state: tasks are indexed by service, node and desired state, and the indexes follow updates', () => {
  const h = new Harness();
  h.ok(create('task', 't1', task('s1', 1, 'n1')), create('task', 't2', task('s1', 2, 'n2')), create('task', 't3', task('s2', 1, 'n1')));
  const ids = (objs: { meta: { id: string } }[]): string[] => objs.map((o) => o.meta.id).sort();
  assert.deepEqual(ids(h.state.find('task', 'service', 's1')), ['t1', 't2']);
  assert.deepEqual(ids(h.state.find('task', 'node', 'n1')), ['t1', 't3']);
  assert.deepEqual(ids(h.state.find('task', 'desiredState', 'running')), ['t1', 't2', 't3']);
  const t1 = h.state.get('task', 't1');
  assert.ok(t1 !== undefined);
  h.ok({ op: 'update', kind: 'task', id: 't1', version: t1.meta.version, fields: { ...task('s1', 1, 'n2', 'shutdown') } });
  assert.deepEqual(ids(h.state.find('task', 'node', 'n1')), ['t3']);
  assert.deepEqual(ids(h.state.find('task', 'node', 'n2')), ['t1', 't2']);
  assert.deepEqual(ids(h.state.find('task', 'desiredState', 'shutdown')), ['t1']);
  h.ok({ op: 'delete', kind: 'task', id: 't2' });
  assert.deepEqual(ids(h.state.find('task', 'service', 's1')), ['t1']);
  assert.throws(() => h.state.find('task', 'colour' as 'node', 'x'), /no index colour on task/);
});

test('store state: changesSince gives the kept commits, then a catch-up batch, then refuses (compacted)', () => {
  const h = new Harness({ commits: 3, tombstones: 3 });
  const v1 = h.ok(create('service', 'a', service('a')));
  const v2 = h.ok(create('service', 'b', service('b')));
  assert.deepEqual(
    h.state.changesSince(v1)?.map((c) => c.version),
    [v2],
  );
  assert.deepEqual(h.state.changesSince(v2), []);
  // Many more commits: the early ones are dropped from the feed.
  for (let i = 0; i < 10; i++) {
    const b = h.state.get('service', 'b');
    h.ok({ op: 'update', kind: 'service', id: 'b', version: b?.meta.version ?? 0, fields: service('b', i) });
  }
  const v13 = h.ok(create('service', 'c', service('c')), { op: 'delete', kind: 'service', id: 'a' });
  h.ok(create('service', 'd', service('d')));
  const vLast = h.ok({ op: 'delete', kind: 'service', id: 'd' });
  const batch = h.state.changesSince(v2) as Commit[];
  assert.equal(batch.length, 1);
  const only = batch[0] as Commit;
  assert.equal(only.catchUp, true);
  assert.equal(only.version, vLast);
  // a: seen, deleted -> delete; b: seen, updated -> one update in its final state;
  // c: born after -> create; d: born and gone after v2 -> nothing.
  assert.deepEqual(
    only.changes.map((c) => `${c.action} ${c.object.meta.id}`),
    ['delete a', 'update b', 'create c'],
  );
  assert.deepEqual((only.changes[1]?.object as { spec: ServiceFields['spec'] }).spec.mode, { replicated: { replicas: 9 } });
  assert.ok(v13 > v2);
  // Deletes keep happening until the one after v2 is forgotten: no longer resumable.
  for (let i = 0; i < 8; i++) {
    h.ok(create('config', `c${i}`, { spec: { annotations: { name: `c${i}` }, data: '' } }));
    h.ok({ op: 'delete', kind: 'config', id: `c${i}` });
  }
  assert.equal(h.state.changesSince(v2), null);
  assert.ok(h.state.resumableFrom > v2);
});

test('store state: a snapshot restores objects, indexes and remembered deletes; digests match', async () => {
  const h = new Harness();
  h.ok(create('service', 's1', service('web')), create('task', 't1', task('s1', 1, 'n1')));
  h.ok(create('secret', 'x1', { spec: { annotations: { name: 'pw' }, data: 'aHVudGVyMg==' } }));
  const mid = h.index;
  h.ok({ op: 'delete', kind: 'secret', id: 'x1' });
  const copy = new StoreState();
  copy.restore(h.state.encode());
  assert.equal(copy.version, h.state.version);
  assert.equal(copy.digest(), h.state.digest());
  assert.equal(copy.find('task', 'service', 's1')[0]?.meta.id, 't1');
  assert.equal(copy.byName('service', 'web')?.meta.id, 's1');
  // A watcher behind the snapshot still learns of the delete.
  assert.deepEqual(
    copy.changesSince(mid)?.[0]?.changes.map((c) => `${c.action} ${c.kind} ${c.object.meta.id}`),
    ['delete secret x1'],
  );
  // Restored objects are frozen like applied ones.
  assert.throws(() => {
    (copy.get('service', 's1') as unknown as { spec: unknown }).spec = null;
  }, TypeError);
  // The sliced serialisation the raft driver uses is the same text.
  assert.equal((await encodeInSlices(h.state.capture())).toString('utf8'), h.state.encode());
  const empty = new StoreState();
  empty.restore('');
  assert.equal(empty.version, 0);
});
