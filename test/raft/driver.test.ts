// The node host over a real temp dir: the Ready loop, group commit, restart from snapshot
// + WAL, torn tails, snapshot catch-up, membership, ReadIndex and force-new-cluster. Peers
// talk over an in-process network; tests/raft/procs.e2e.test.ts does it with processes.

import { strict as assert } from 'node:assert';
import { appendFile, mkdtemp, readFile, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { NodeId } from '../../src/raft/core/index.js';
import { RaftDriver, RaftError } from '../../src/raft/driver/index.js';
import type { Bootstrap, Tuning } from '../../src/raft/driver/index.js';
import { frame, parse } from '../../src/raft/wal/wal.js';
import { KvMachine, encodePut } from './kvmachine.js';
import { MemoryNetwork } from './memnet.js';

const FAST: Partial<Tuning> = { tickMs: 10, electionTicks: 10, heartbeatTicks: 1, requestTimeoutMs: 3000 };

interface Member {
  readonly id: NodeId;
  driver: RaftDriver<null>;
  kv: KvMachine;
}

class Cluster {
  readonly net = new MemoryNetwork();
  readonly members = new Map<NodeId, Member>();

  constructor(
    readonly root: string,
    readonly tuning: Partial<Tuning> = FAST,
  ) {}

  async start(id: NodeId, bootstrap: Bootstrap, forceNewCluster = false): Promise<Member> {
    const kv = new KvMachine();
    const driver = await RaftDriver.start({
      id,
      dir: join(this.root, id),
      stateMachine: kv,
      transport: this.net.transport(id),
      addresses: new Map(),
      bootstrap,
      forceNewCluster,
      tuning: this.tuning,
    });
    const m = { id, driver, kv };
    this.members.set(id, m);
    return m;
  }

  get(id: NodeId): Member {
    const m = this.members.get(id);
    if (m === undefined) throw new Error(`no member ${id}`);
    return m;
  }

  async stop(id: NodeId): Promise<void> {
    await this.get(id).driver.stop();
    this.members.delete(id);
  }

  async stopAll(): Promise<void> {
    for (const id of [...this.members.keys()]) await this.stop(id);
  }

  /** A leader that every reachable member already follows (a follower that has not heard from it yet refuses proposals with noLeader). */
  async leader(): Promise<Member> {
    for (let i = 0; i < 500; i++) {
      for (const m of this.members.values()) {
        const st = m.driver.status();
        if (st.role !== 'leader' || this.net.isolated.has(m.id)) continue;
        const others = [...this.members.values()].filter((o) => o !== m && !this.net.isolated.has(o.id));
        if (others.every((o) => o.driver.status().leader === m.id)) return m;
      }
      await sleep(10);
    }
    throw new Error('no leader elected');
  }

  /** Waits until every running member applied the same state as `ref`. */
  async converged(): Promise<void> {
    for (let i = 0; i < 500; i++) {
      const digests = new Set([...this.members.values()].map((m) => `${m.driver.status().appliedLocally}|${m.kv.digest()}`));
      if (digests.size === 1) return;
      await sleep(10);
    }
    const states = [...this.members.values()].map((m) => `${m.id}: applied ${m.driver.status().appliedLocally}, ${m.kv.data.size} keys`);
    throw new Error(`replicas did not converge: ${states.join('; ')}`);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function withCluster(fn: (c: Cluster) => Promise<void>, tuning?: Partial<Tuning>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'raft-driver-'));
  const c = new Cluster(root, tuning);
  try {
    await fn(c);
  } finally {
    await c.stopAll();
    await rm(root, { recursive: true, force: true });
  }
}

const put = (m: Member, key: string, value: string): Promise<unknown> => m.driver.propose(encodePut({ key, value }));

async function found(c: Cluster, ids: NodeId[]): Promise<void> {
  for (const id of ids) await c.start(id, { kind: 'found', voters: ids });
}

test('driver: three nodes elect a leader, apply proposals made on leader and followers, and serve linearizable reads', () =>
  withCluster(async (c) => {
    await found(c, ['a', 'b', 'c']);
    const leader = await c.leader();
    const follower = [...c.members.values()].find((m) => m !== leader);
    assert.ok(follower !== undefined);
    // Many proposals at once: they share fsyncs (group commit).
    const before = leader.driver.status().fsyncs;
    const applied = await Promise.all(Array.from({ length: 200 }, (_, i) => put(i % 2 === 0 ? leader : follower, `k${i}`, `v${i}`)));
    assert.equal(applied.length, 200);
    assert.ok(leader.driver.status().fsyncs - before < 150, `group commit: ${leader.driver.status().fsyncs - before} fsyncs for 200 proposals`);
    // A read on a follower sees the last acknowledged write.
    await put(leader, 'last', 'x');
    await follower.driver.readBarrier();
    assert.equal(follower.kv.data.get('last'), 'x');
    await c.converged();
  }));

test('driver: a node with no known leader refuses with a clear error', () =>
  withCluster(async (c) => {
    const lonely = await c.start('j', { kind: 'join' });
    await assert.rejects(put(lonely, 'k', 'v'), (err: unknown) => err instanceof RaftError && err.code === 'noLeader' && /no leader is known/.test(err.message));
    await assert.rejects(lonely.driver.readBarrier(), (err: unknown) => err instanceof RaftError && err.code === 'noLeader');
  }));

test('driver: restart recovers from snapshot + WAL, and the WAL is rewritten without compacted entries', () =>
  withCluster(
    async (c) => {
      await found(c, ['a', 'b', 'c']);
      const leader = await c.leader();
      for (let i = 0; i < 300; i++) await put(leader, `k${i % 50}`, `v${i}`);
      await c.converged();
      const st = leader.driver.status();
      assert.ok(st.snapshotIndex >= 200, `snapshot index ${st.snapshotIndex}`);
      assert.ok(st.lastIndex - st.snapshotIndex < 80, `log kept ${st.lastIndex - st.snapshotIndex} entries`);
      const digest = leader.kv.digest();
      await c.stopAll();
      await found(c, ['a', 'b', 'c']);
      const again = await c.leader();
      await put(again, 'after', 'restart');
      await c.converged();
      const kv = c.get('a').kv;
      assert.equal(kv.data.get('after'), 'restart');
      kv.data.delete('after');
      assert.equal(kv.digest(), digest);
    },
    { ...FAST, snapshotInterval: 50, keepEntries: 20 },
  ));

test('driver: a torn WAL tail (crash mid-write) is cut off on restart and no acknowledged write is lost', () =>
  withCluster(async (c) => {
    await found(c, ['solo']);
    const solo = await c.leader();
    for (let i = 0; i < 20; i++) await put(solo, `k${i}`, `v${i}`);
    await c.stop('solo');
    const wal = join(c.root, 'solo', 'wal');
    // The process died while writing a record that was never fsynced, so never acknowledged:
    // half of its frame reached the disk.
    const torn = frame({ kind: 'entries', entries: [{ kind: 'noop', index: 999, term: 99 }] });
    await appendFile(wal, torn.subarray(0, Math.floor(torn.length / 2)));
    let m = await c.start('solo', { kind: 'found', voters: ['solo'] });
    assert.equal(m.driver.status().walTruncatedBytes, Math.floor(torn.length / 2));
    await c.leader();
    await m.driver.readBarrier();
    for (let i = 0; i < 20; i++) assert.equal(m.kv.data.get(`k${i}`), `v${i}`);
    // Torn inside the last hard state record: the entries before it are intact and recommitted.
    await c.stop('solo');
    await truncate(wal, (await stat(wal)).size - 3);
    m = await c.start('solo', { kind: 'found', voters: ['solo'] });
    assert.ok(m.driver.status().walTruncatedBytes > 0);
    await c.leader();
    await put(m, 'more', 'yes');
    for (let i = 0; i < 20; i++) assert.equal(m.kv.data.get(`k${i}`), `v${i}`);
  }));

test('driver: a follower far behind catches up through a snapshot', () =>
  withCluster(
    async (c) => {
      await found(c, ['a', 'b', 'c']);
      const leader = await c.leader();
      const behind = [...c.members.keys()].find((id) => id !== leader.id);
      assert.ok(behind !== undefined);
      await c.stop(behind);
      for (let i = 0; i < 200; i++) await put(leader, `k${i}`, `v${i}`);
      assert.ok(leader.driver.status().snapshotIndex > 100);
      await c.start(behind, { kind: 'found', voters: ['a', 'b', 'c'] });
      await c.converged();
      assert.equal(c.get(behind).kv.data.get('k199'), 'v199');
      assert.ok(c.get(behind).driver.status().snapshotIndex > 100, 'caught up through a snapshot, not entries');
      // The installed snapshot was folded into its WAL, not appended after the old log.
      await c.stop(behind);
      const first = parse(await readFile(join(c.root, behind, 'wal'))).records[0];
      assert.ok(first?.kind === 'snapshot' && first.snapshot.meta.index > 100, `the WAL starts with ${JSON.stringify(first?.kind)}`);
    },
    { ...FAST, snapshotInterval: 40, keepEntries: 10 },
  ));

test('driver: add a learner, promote it, remove the old leader; the rest converge', () =>
  withCluster(async (c) => {
    await found(c, ['a', 'b', 'c']);
    let leader = await c.leader();
    for (let i = 0; i < 30; i++) await put(leader, `k${i}`, `v${i}`);
    await c.start('d', { kind: 'join' });
    await leader.driver.addMember('d', 'mem://d', 'learner');
    for (let i = 0; ; i++) {
      try {
        await leader.driver.promote('d');
        break;
      } catch (err) {
        if (!(err instanceof RaftError && err.code === 'notCaughtUp') || i > 100) throw err;
        await sleep(20);
      }
    }
    assert.deepEqual([...leader.driver.status().membership.voters], ['a', 'b', 'c', 'd']);
    assert.equal(c.get('d').driver.addressBook().get('d'), 'mem://d');
    const old = leader.id;
    await leader.driver.removeMember(old);
    await c.stop(old);
    leader = await c.leader();
    await put(leader, 'after', 'removal');
    await c.converged();
    assert.deepEqual([...leader.driver.status().membership.voters], ['a', 'b', 'c', 'd'].filter((id) => id !== old));
  }));

test('driver: force-new-cluster brings back the last survivor alone with every write it held', () =>
  withCluster(async (c) => {
    await found(c, ['a', 'b', 'c']);
    const leader = await c.leader();
    for (let i = 0; i < 50; i++) await put(leader, `k${i}`, `v${i}`);
    await c.converged();
    await c.stopAll();
    // a and c are gone for good; b restarts alone.
    const b = await c.start('b', { kind: 'found', voters: ['a', 'b', 'c'] }, true);
    await c.leader();
    await put(b, 'alone', 'yes');
    assert.deepEqual(b.driver.status().membership, { voters: ['b'], learners: [] });
    for (let i = 0; i < 50; i++) assert.equal(b.kv.data.get(`k${i}`), `v${i}`);
    // And it stays that way across a normal restart.
    await c.stop('b');
    const again = await c.start('b', { kind: 'found', voters: ['a', 'b', 'c'] });
    await c.leader();
    assert.deepEqual(again.driver.status().membership, { voters: ['b'], learners: [] });
    await again.driver.readBarrier();
    assert.equal(again.kv.data.get('alone'), 'yes');
  }));

test('driver: a partitioned leader steps down, and its proposals time out instead of hanging', () =>
  withCluster(
    async (c) => {
      await found(c, ['a', 'b', 'c']);
      const leader = await c.leader();
      c.net.isolated.add(leader.id);
      const pending = put(leader, 'lost', 'maybe');
      await assert.rejects(pending, (err: unknown) => err instanceof RaftError && (err.code === 'timeout' || err.code === 'dropped'));
      const other = await c.leader();
      assert.notEqual(other.id, leader.id);
      c.net.isolated.delete(leader.id);
      await put(other, 'healed', 'yes');
      await c.converged();
    },
    { ...FAST, requestTimeoutMs: 1000 },
  ));

test('driver: commit-only hard states are written at most every 100 ms, and a restart still applies every acknowledged write', () =>
  withCluster(async (c) => {
    await found(c, ['a', 'b', 'c']);
    const leader = await c.leader();
    for (let i = 0; i < 150; i++) await put(leader, `k${i}`, `v${i}`);
    await c.converged();
    const digest = leader.kv.digest();
    const follower = [...c.members.values()].find((m) => m !== leader) as Member;
    // On the leader, each write's commit is a Ready of its own (followers get it with the next append).
    const { records } = parse(await readFile(join(c.root, leader.id, 'wal')));
    const commitOnly = records.filter((r) => r.kind === 'hardState').length;
    assert.ok(commitOnly < 75, `${commitOnly} hard state records for 150 sequential writes`);
    await c.stopAll();
    await found(c, ['a', 'b', 'c']);
    await c.leader();
    await c.converged();
    assert.equal(c.get(follower.id).kv.digest(), digest);
  }));
