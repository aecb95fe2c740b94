// Scenario tests for the pure raft core, each driving a small cluster by hand: which node
// ticks, which messages are delivered. Persistence is instantaneous here; the simulator
// (sim.test.ts) covers crashes, lost writes and random schedules.

import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { JOINING_STORAGE, createNode, foundingStorage } from '../../src/raft/core/index.js';
import type { Entry, Message, NodeId, RaftNode, ReadState, StorageState } from '../../src/raft/core/index.js';
import { Prng } from './sim/prng.js';

const ELECTION = 10;

class Cluster {
  readonly nodes = new Map<NodeId, RaftNode>();
  readonly applied = new Map<NodeId, Entry[]>();
  readonly reads = new Map<NodeId, ReadState[]>();
  readonly snapshotsInstalled = new Map<NodeId, number>();
  private inFlight: Message[] = [];
  /** Messages matching this are lost. */
  dropIf: (m: Message) => boolean = () => false;
  /** Nodes cut off from everyone else. */
  readonly isolated = new Set<NodeId>();

  constructor(
    voters: readonly NodeId[],
    seed = 1,
    private readonly batch = 4,
  ) {
    const rng = new Prng(seed);
    for (const id of voters) this.add(id, foundingStorage(voters), rng.fork());
  }

  add(id: NodeId, storage: StorageState = JOINING_STORAGE, rng = new Prng(id.length * 7919)): RaftNode {
    const node = createNode({ id, electionTicks: ELECTION, heartbeatTicks: 1, maxEntriesPerAppend: this.batch, maxInflightAppends: 2, rand: () => rng.next() }, storage);
    this.nodes.set(id, node);
    this.applied.set(id, []);
    this.reads.set(id, []);
    return node;
  }

  node(id: NodeId): RaftNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** Processes every node's Ready (persisting is instant) and queues what they send. */
  private drain(): void {
    for (const [id, n] of this.nodes) {
      for (let rd = n.ready(); rd !== null; rd = n.ready()) {
        this.inFlight.push(...rd.messages);
        if (rd.snapshot !== null) this.snapshotsInstalled.set(id, rd.snapshot.meta.index);
        this.applied.get(id)?.push(...rd.committedEntries);
        this.reads.get(id)?.push(...rd.readStates);
        n.advance(rd);
      }
    }
  }

  /** Delivers messages until the cluster is quiet (or a bound is hit). */
  settle(): void {
    for (let round = 0; round < 1000; round++) {
      this.drain();
      if (this.inFlight.length === 0) return;
      const batch = this.inFlight;
      this.inFlight = [];
      for (const m of batch) {
        if (this.isolated.has(m.from) || this.isolated.has(m.to) || this.dropIf(m)) continue;
        this.nodes.get(m.to)?.step(m);
      }
    }
    throw new Error('cluster did not settle');
  }

  tick(ids: readonly NodeId[], times: number): void {
    for (let i = 0; i < times; i++) {
      for (const id of ids) this.node(id).tick();
      this.settle();
    }
  }

  tickAll(times: number): void {
    this.tick([...this.nodes.keys()], times);
  }

  /** Makes `id` leader by letting only it time out. */
  elect(id: NodeId): void {
    this.tick([id], 2 * ELECTION);
    assert.equal(this.node(id).status().role, 'leader', `${id} should have won the election`);
  }

  leaders(): NodeId[] {
    return [...this.nodes].filter(([, n]) => n.status().role === 'leader').map(([id]) => id);
  }

  commands(id: NodeId): string[] {
    return (this.applied.get(id) ?? []).flatMap((e) => (e.kind === 'command' ? [new TextDecoder().decode(e.data)] : []));
  }
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

test('a leader is elected and a proposal is committed and applied everywhere', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  assert.deepEqual(c.node('a').propose(bytes('x=1')), { ok: true, index: 2 });
  c.settle();
  c.tickAll(1);
  for (const id of ['a', 'b', 'c']) assert.deepEqual(c.commands(id), ['x=1']);
});

test('followers forward proposals to the leader', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  assert.deepEqual(c.node('b').propose(bytes('from-b')), { ok: true, index: null });
  c.settle();
  c.tickAll(1);
  for (const id of ['a', 'b', 'c']) assert.deepEqual(c.commands(id), ['from-b']);
});

test('pre-vote: a partitioned node that rejoins does not disrupt the leader', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  const term = c.node('a').status().term;
  c.isolated.add('c');
  c.tick(['a', 'b'], 1);
  // Cut off, c times out over and over; with pre-vote its term does not move.
  c.tick(['c'], 10 * ELECTION);
  assert.equal(c.node('c').status().term, term);
  c.isolated.delete('c');
  c.tickAll(3 * ELECTION);
  assert.deepEqual(c.leaders(), ['a']);
  assert.equal(c.node('a').status().term, term);
  assert.equal(c.node('c').status().leader, 'a');
});

test('check-quorum: a leader that cannot reach a majority steps down', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.isolated.add('a');
  c.tick(['a'], 2 * ELECTION);
  assert.equal(c.node('a').status().role, 'follower');
  // Meanwhile the majority elects a new leader once its lease on the old one expires.
  c.tick(['b', 'c'], 3 * ELECTION);
  assert.equal(c.leaders().length, 1);
  assert.notEqual(c.leaders()[0], 'a');
});

test('a leader keeps its lease: a follower that campaigns during it is ignored', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  const term = c.node('a').status().term;
  // b's timer fires (say its heartbeats were delayed), but a and c heard from a recently.
  c.isolated.add('b');
  c.tick(['b'], 2 * ELECTION);
  c.isolated.delete('b');
  c.tick(['a', 'c'], 1);
  c.tick(['b'], 1);
  assert.deepEqual(c.leaders(), ['a']);
  assert.equal(c.node('a').status().term, term);
});

test('leadership transfer hands over to the chosen voter', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  const term = c.node('a').status().term;
  c.node('a').propose(bytes('before'));
  c.settle();
  assert.deepEqual(c.node('a').transferLeadership('c'), { ok: true, index: null });
  // Proposals are refused while the transfer is in progress.
  const during = c.node('a').propose(bytes('during'));
  c.settle();
  assert.deepEqual(c.leaders(), ['c']);
  assert.equal(c.node('c').status().term, term + 1);
  if (c.node('a').status().role === 'leader') assert.deepEqual(during, { ok: false, reason: 'transferring' });
  c.node('c').propose(bytes('after'));
  c.settle();
  c.tickAll(1);
  assert.deepEqual(c.commands('b'), ['before', 'after']);
});

test('a learner catches up without voting, then is promoted', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  for (let i = 0; i < 10; i++) c.node('a').propose(bytes(`v${i}`));
  c.settle();
  c.add('d');
  assert.deepEqual(c.node('a').proposeConfChange({ type: 'addLearner', node: 'd' }).ok, true);
  // Only one membership change may be uncommitted at a time.
  assert.deepEqual(c.node('a').proposeConfChange({ type: 'remove', node: 'b' }), { ok: false, reason: 'configPending' });
  c.settle();
  c.tickAll(2);
  assert.deepEqual(c.commands('d'), c.commands('a'));
  assert.deepEqual(c.node('d').status().membership, { voters: ['a', 'b', 'c'], learners: ['d'] });
  // A learner never campaigns, however long it goes without hearing from a leader.
  c.isolated.add('d');
  c.tick(['d'], 5 * ELECTION);
  assert.equal(c.node('d').status().role, 'follower');
  c.isolated.delete('d');
  c.tickAll(2);
  assert.equal(c.node('a').proposeConfChange({ type: 'promote', node: 'd' }).ok, true);
  c.settle();
  c.tickAll(2);
  assert.deepEqual(c.node('b').status().membership, { voters: ['a', 'b', 'c', 'd'], learners: [] });
  // d now counts: with b and c gone, a and d are not a majority of four, with them they are.
  c.isolated.add('b');
  c.isolated.add('c');
  c.node('a').propose(bytes('needs-d'));
  c.settle();
  c.tick(['a', 'd'], 1);
  assert.equal(c.commands('a').includes('needs-d'), false);
  c.isolated.delete('b');
  c.tickAll(1);
  assert.equal(c.commands('a').includes('needs-d'), true);
});

test('promotion is refused until the learner holds everything committed', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.add('d');
  c.isolated.add('d');
  c.node('a').proposeConfChange({ type: 'addLearner', node: 'd' });
  c.settle();
  c.tickAll(1);
  assert.deepEqual(c.node('a').proposeConfChange({ type: 'promote', node: 'd' }), { ok: false, reason: 'notCaughtUp' });
});

test('removing the leader: it commits its removal, hands over, and stops leading', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  assert.equal(c.node('a').proposeConfChange({ type: 'remove', node: 'a' }).ok, true);
  c.settle();
  c.tickAll(3 * ELECTION);
  const leaders = c.leaders();
  assert.equal(leaders.length, 1);
  assert.notEqual(leaders[0], 'a');
  assert.deepEqual(c.node('b').status().membership.voters, ['b', 'c']);
});

test('a follower behind the compaction point is sent a snapshot', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.isolated.add('c');
  for (let i = 0; i < 20; i++) c.node('a').propose(bytes(`v${i}`));
  c.settle();
  c.tick(['a', 'b'], 1);
  const st = c.node('a').status();
  const snap = c.node('a').compact(st.applied, bytes(`state-at-${st.applied}`));
  assert.notEqual(snap, null);
  assert.ok(c.node('a').status().firstIndex > 2);
  c.isolated.delete('c');
  c.tickAll(2);
  assert.equal(c.snapshotsInstalled.get('c'), st.applied);
  // After the snapshot, replication continues from the log.
  c.node('a').propose(bytes('after-snapshot'));
  c.settle();
  c.tickAll(1);
  assert.deepEqual(c.commands('c'), ['after-snapshot']);
  assert.equal(c.node('c').status().commit, c.node('a').status().commit);
});

test('ReadIndex: confirmed by a heartbeat round on the leader, forwarded from followers, never on a cut-off leader', () => {
  const c = new Cluster(['a', 'b', 'c']);
  c.elect('a');
  c.node('a').propose(bytes('w'));
  c.settle();
  c.tickAll(1);
  const commit = c.node('a').status().commit;
  c.node('a').readIndex('r1');
  c.settle();
  assert.deepEqual(c.reads.get('a'), [{ ctx: 'r1', index: commit }]);
  c.node('b').readIndex('r2');
  c.settle();
  assert.deepEqual(c.reads.get('b'), [{ ctx: 'r2', index: commit }]);
  // A leader that cannot reach a majority cannot confirm it is still leader.
  c.isolated.add('a');
  c.node('a').readIndex('r3');
  c.tick(['a'], 3);
  assert.deepEqual(c.reads.get('a'), [{ ctx: 'r1', index: commit }]);
});

test('a new leader answers reads only after committing an entry of its own term', () => {
  const c = new Cluster(['a', 'b', 'c']);
  // Hold back every acknowledgement of AppendEntries: a wins but cannot commit its noop.
  c.dropIf = (m) => m.type === 'appendAck';
  c.elect('a');
  c.node('a').readIndex('early');
  c.tickAll(3);
  assert.deepEqual(c.reads.get('a'), []);
  c.dropIf = () => false;
  c.tickAll(2);
  const reads = c.reads.get('a') ?? [];
  assert.equal(reads.length, 1);
  assert.equal(c.node('a').term(reads[0]?.index ?? 0), c.node('a').status().term);
});

test('an entry from an earlier term is not committed by counting replicas (thesis Figure 3.7)', () => {
  const c = new Cluster(['a', 'b', 'c'], 1, 1);
  c.elect('a');
  // a, leader of the first term, appends X but no one else receives it.
  c.dropIf = (m) => m.type === 'append' && m.entries.length > 0;
  c.node('a').propose(bytes('X'));
  c.settle();
  const xIndex = c.node('a').status().lastIndex;
  c.dropIf = () => false;
  // b becomes leader of a later term and appends its noop at X's index, reaching no one.
  c.isolated.add('a');
  c.dropIf = (m) => m.type === 'append' && m.entries.length > 0;
  c.tick(['b', 'c'], 3 * ELECTION);
  assert.equal(c.node('b').status().role, 'leader');
  c.isolated.add('b');
  c.isolated.delete('a');
  // a wins again (c's log is no newer than a's) and appends its own noop after X. c first
  // rejects a's probe (it lacks X), then gets X alone (one entry per AppendEntries), then
  // loses every later AppendEntries carrying a's new-term noop.
  const bTerm = c.node('b').status().term;
  let newTermAppends = 0;
  c.dropIf = (m) => m.type === 'append' && m.entries.some((e) => e.term > bTerm) && ++newTermAppends > 1;
  c.tick(['a', 'c'], 3 * ELECTION);
  const a = c.node('a').status();
  assert.equal(a.role, 'leader');
  c.tick(['a', 'c'], 2);
  assert.equal(c.node('c').term(xIndex), c.node('a').term(xIndex), 'c holds X');
  // X is on a majority (a, c), but it is from an old term: counting must not commit it,
  // since b could still win with c's vote and overwrite it.
  assert.ok(c.node('a').status().commit < xIndex, `X at ${xIndex} must not be committed yet`);
  c.dropIf = () => false;
  c.tick(['a', 'c'], 2);
  assert.ok(c.node('a').status().commit > xIndex);
  assert.ok(c.commands('c').includes('X'));
});
