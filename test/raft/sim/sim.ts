// Deterministic simulation of a raft cluster: one seed decides everything — cluster size,
// fault rates, message delays, crash times, the client workload — so any failure replays
// exactly. Virtual time only; nothing here reads a clock or sleeps.

import { createNode, foundingStorage } from '../../../src/raft/core/index.js';
import type { ConfChange, Entry, Message, NodeId, ProposeResult, RaftConfig, RaftNode, Ready } from '../../../src/raft/core/index.js';
import { FakeDisk } from './disk.js';
import { KvStore, decodeCommand, encodeCommand, registerModel } from './kv.js';
import type { KvCommand, KvInput } from './kv.js';
import { checkLinearizable } from './linearizability.js';
import type { Operation } from './linearizability.js';
import { Prng } from './prng.js';

export interface SimOptions {
  /** Collect a human-readable trace of faults, elections and violations. */
  readonly trace?: boolean;
  /** Virtual milliseconds of faults, then a calm period in which a leader must emerge. */
  readonly chaosMs?: number;
  readonly calmMs?: number;
}

export interface SimStats {
  readonly events: number;
  readonly messages: number;
  readonly leaders: number;
  readonly crashes: number;
  readonly snapshotsSent: number;
  readonly opsOk: number;
  readonly opsUnknown: number;
  readonly maxCommit: number;
}

export interface SimResult {
  readonly seed: number;
  readonly violations: readonly string[];
  readonly stats: SimStats;
  readonly trace: readonly string[];
  readonly scenario: string;
}

const TICK_MS = 100;
const ELECTION_TICKS = 10;
const HEARTBEAT_TICKS = 1;
const CLIENT_TIMEOUT_MS = 3000;
/** Clients stop this long before the end, so that convergence can be checked. */
const QUIET_MS = 3000;
const KEYS = ['a', 'b', 'c'];

type SimEvent =
  | { readonly kind: 'deliver'; readonly msg: Message; readonly sentAt: number; readonly senderIncarnation: number }
  | { readonly kind: 'tick'; readonly node: NodeId; readonly incarnation: number }
  | { readonly kind: 'diskDone'; readonly node: NodeId; readonly incarnation: number }
  | { readonly kind: 'restart'; readonly node: NodeId }
  | { readonly kind: 'crash'; readonly node: NodeId; readonly incarnation: number }
  | { readonly kind: 'client'; readonly client: number }
  | { readonly kind: 'request'; readonly op: number; readonly node: NodeId }
  | { readonly kind: 'clientTimeout'; readonly client: number; readonly op: number }
  | { readonly kind: 'fault' }
  | { readonly kind: 'checkLogs' }
  | { readonly kind: 'calm' };

interface Scheduled {
  readonly time: number;
  readonly seq: number;
  readonly event: SimEvent;
}

/** A binary min-heap on (time, insertion order): ties break the same way on every run. */
class EventQueue {
  private heap: Scheduled[] = [];
  private seq = 0;

  push(time: number, event: SimEvent): void {
    const h = this.heap;
    h.push({ time, seq: this.seq++, event });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  pop(): Scheduled | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    h[0] = last;
    const n = h.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && before(h[l], h[m])) m = l;
      if (r < n && before(h[r], h[m])) m = r;
      if (m === i) break;
      [h[m], h[i]] = [h[i], h[m]];
      i = m;
    }
    return top;
  }
}

function before(a: Scheduled, b: Scheduled): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

interface SimNode {
  readonly id: NodeId;
  incarnation: number;
  up: boolean;
  raft: RaftNode;
  kv: KvStore;
  readonly disk: FakeDisk;
  writing: Ready | null;
  readonly drift: number;
  /** Client writes waiting for their command to be applied here: `${client}:${seq}` -> op id. */
  waiters: Map<string, number>;
  /** Client reads waiting for a ReadState (ctx -> op id), then for the apply index to reach it. */
  reads: Map<string, number>;
  readsAwaitingApply: { index: number; op: number }[];
  /** Highest commit index this node has claimed that the checker has already examined. */
  checkedCommit: number;
  /** A stopped process (GC pause, SIGSTOP, a stalled VM): everything addressed to it waits. */
  pausedUntil: number;
  /** When each incarnation crashed (index = incarnation). */
  readonly crashedAt: number[];
  /** The last term in which this node, as leader, was seen to advance its commit index. */
  leaderCommitTerm: number;
  /** Crash right after the next Ready that sends something, before it leaves the process. */
  crashOnSend: boolean;
}

interface ClientOp {
  readonly id: number;
  readonly client: number;
  readonly seq: number;
  readonly key: string;
  readonly input: KvInput;
  readonly call: number;
  done: boolean;
}

interface Client {
  readonly id: number;
  seq: number;
  current: ClientOp | null;
}

function payloadOf(e: Entry): string {
  switch (e.kind) {
    case 'noop':
      return 'noop';
    case 'config':
      return `config:${JSON.stringify(e.change)}:${JSON.stringify(e.membership)}`;
    case 'command':
      return new TextDecoder().decode(e.data);
    default: {
      const never: never = e;
      return never;
    }
  }
}

function sameEntry(a: Entry, b: Entry): boolean {
  if (a === b) return true;
  return a.index === b.index && a.term === b.term && payloadOf(a) === payloadOf(b);
}

/**
 * Drops writes whose outcome the client never learned and whose (unique) value no read
 * ever returned. Sound and complete for this model: every state between such a write and
 * the next put contains its value, so no read saw any of them; the history is then
 * linearizable with the write iff it is without it (place it last). Left in, each one
 * multiplies the checker's search by the number of places it could go.
 */
function withoutUnobservedUnknowns(ops: readonly Operation<KvInput, string | null>[]): Operation<KvInput, string | null>[] {
  const seen = ops.map((o) => (o.input.op === 'get' ? (o.output ?? '') : '')).join('|');
  return ops.filter((o) => o.ret !== Infinity || o.input.op === 'get' || seen.includes(o.input.value));
}

export function runSeed(seed: number, options: SimOptions = {}): SimResult {
  return new Simulation(seed, options).run();
}

class Simulation {
  private now = 0;
  private readonly queue = new EventQueue();
  private readonly rng: Prng;
  private readonly net: Prng;
  private readonly faults: Prng;
  private readonly work: Prng;
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly ids: NodeId[];
  /** Group per node while partitioned; messages cross only within a group. */
  private partition: Map<NodeId, number> | null = null;
  private readonly loss: number;
  private readonly dup: number;
  private readonly minDelay: number;
  private readonly maxDelay: number;
  private readonly maxFsync: number;
  private readonly compactEvery: number;
  private readonly maxEntriesPerAppend: number;
  private readonly maxInflight: number;
  private readonly faultGapMs: number;
  /**
   * How long a sent message stays inside the sending process (transport queues, socket
   * buffers not yet flushed) before it is on the wire: a crash in that window loses it.
   */
  private readonly departMs: number;
  /**
   * 'mixed': every kind of fault. 'churn': leaders die as they win or as they first commit,
   * and come back quickly — a stream of short-lived leaders leaving entries of their terms
   * on minorities, the histories in which commitment rules go wrong (thesis Figure 3.7).
   */
  private readonly profile: 'mixed' | 'churn';
  private readonly winCrashChance: number;
  private readonly commitCrashChance: number;
  private calm = false;
  private readonly chaosMs: number;
  private readonly calmMs: number;
  private readonly quietMs: number;

  // Checker state.
  private readonly violations: string[] = [];
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /**
   * Every entry known committed, with the lowest term of any node that claimed so: it was
   * committed in that term or earlier, and so must be in the log of every leader of a later term.
   */
  private readonly committed = new Map<number, { term: number; payload: string; claimTerm: number }>();
  private readonly digestAt = new Map<number, number>();
  private maxCommitted = 0;

  // Workload.
  private readonly clients: Client[] = [];
  private readonly ops: ClientOp[] = [];
  private readonly history: { key: string; op: Operation<KvInput, string | null> }[] = [];

  private readonly traceOn: boolean;
  private readonly trace: string[] = [];
  private stats = { events: 0, messages: 0, leaders: 0, crashes: 0, snapshotsSent: 0, opsOk: 0, opsUnknown: 0, maxCommit: 0 };
  private readonly scenario: string;

  constructor(
    private readonly seed: number,
    options: SimOptions,
  ) {
    this.rng = new Prng(seed);
    this.net = this.rng.fork();
    this.faults = this.rng.fork();
    this.work = this.rng.fork();
    this.traceOn = options.trace ?? false;
    this.chaosMs = options.chaosMs ?? 20_000;
    this.profile = this.rng.pick(['mixed', 'mixed', 'mixed', 'churn'] as const);
    const churn = this.profile === 'churn';
    // Churn needs a quorum to churn, and small batches: a follower acknowledging old-term
    // entries apart from the new leader's own is where counting them would go wrong.
    const founders = churn ? this.rng.pick([3, 3, 5]) : this.rng.pick([1, 3, 3, 5, 5]);
    const spares = this.rng.int(0, 2);
    this.loss = this.rng.pick([0, 0.01, 0.05, 0.2]);
    this.dup = this.rng.pick([0, 0.02, 0.1]);
    this.minDelay = this.rng.int(0, 5);
    this.maxDelay = this.minDelay + this.rng.pick([2, 20, 60]);
    this.maxFsync = this.rng.pick([1, 5, 20]);
    this.compactEvery = this.rng.pick([8, 30, 1000]);
    this.maxEntriesPerAppend = churn ? this.rng.pick([1, 2]) : this.rng.pick([1, 2, 16]);
    this.maxInflight = this.rng.pick([1, 4]);
    this.faultGapMs = this.rng.pick([150, 400, 1500, 3000]);
    // One entry per AppendEntries and one in flight over slow links: a member that lost its
    // whole log replicates about one entry per round trip, so catching up with a few dozen
    // entries takes longer than the usual quiet end (seed 216073: a learner 78 entries
    // behind, still progressing, judged stuck). Give such runs a longer calm and quiet end.
    const slow = this.maxEntriesPerAppend === 1 && this.maxInflight === 1 && this.maxDelay > 20;
    this.calmMs = options.calmMs ?? (slow ? 12_000 : 6_000);
    this.quietMs = slow ? 9_000 : QUIET_MS;
    this.departMs = this.profile === 'churn' ? this.rng.pick([2, 5]) : this.rng.pick([0, 2, 5]);
    this.winCrashChance = this.profile === 'churn' ? 0.5 : 0.15;
    this.commitCrashChance = this.profile === 'churn' ? 0.8 : 0.2;
    this.ids = Array.from({ length: founders + spares }, (_, i) => `n${i + 1}`);
    const voters = this.ids.slice(0, founders);
    for (const id of this.ids) {
      const disk = new FakeDisk();
      if (voters.includes(id)) {
        const boot = foundingStorage(voters);
        if (boot.snapshot !== null) disk.write({ kind: 'snapshot', snapshot: boot.snapshot });
        disk.fsync();
      }
      const node: SimNode = {
        id,
        incarnation: 0,
        up: true,
        raft: this.boot(id, disk),
        kv: new KvStore(),
        disk,
        writing: null,
        drift: 1 + (this.rng.next() - 0.5) * 0.1,
        waiters: new Map(),
        reads: new Map(),
        readsAwaitingApply: [],
        checkedCommit: 0,
        pausedUntil: 0,
        crashedAt: [],
        leaderCommitTerm: 0,
        crashOnSend: false,
      };
      this.nodes.set(id, node);
      this.queue.push(this.rng.int(0, TICK_MS), { kind: 'tick', node: id, incarnation: 0 });
    }
    const clients = this.rng.int(1, 4);
    for (let c = 1; c <= clients; c++) {
      this.clients.push({ id: c, seq: 0, current: null });
      this.queue.push(this.work.int(0, 500), { kind: 'client', client: c });
    }
    this.queue.push(this.faults.int(500, 2500), { kind: 'fault' });
    this.queue.push(1000, { kind: 'checkLogs' });
    this.queue.push(this.chaosMs, { kind: 'calm' });
    this.scenario =
      `voters=${founders} spares=${spares} loss=${this.loss} dup=${this.dup} delay=${this.minDelay}..${this.maxDelay}ms ` +
      `fsync<=${this.maxFsync}ms compactEvery=${this.compactEvery} batch=${this.maxEntriesPerAppend} inflight=${this.maxInflight} ` +
      `faultGap<=${this.faultGapMs}ms depart<=${this.departMs}ms profile=${this.profile} clients=${clients}`;
  }

  private boot(id: NodeId, disk: FakeDisk): RaftNode {
    const rand = this.rng.fork();
    const config: RaftConfig = {
      id,
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: HEARTBEAT_TICKS,
      maxEntriesPerAppend: this.maxEntriesPerAppend,
      maxInflightAppends: this.maxInflight,
      rand: () => rand.next(),
    };
    return createNode(config, disk.recover());
  }

  run(): SimResult {
    const end = this.chaosMs + this.calmMs;
    for (;;) {
      const next = this.queue.pop();
      if (next === undefined || next.time > end) break;
      this.now = next.time;
      this.stats.events++;
      this.handle(next.event);
      if (this.violations.length > 0) break;
    }
    if (this.violations.length === 0) this.finalChecks();
    return { seed: this.seed, violations: this.violations, stats: { ...this.stats }, trace: this.trace, scenario: this.scenario };
  }

  private log(line: string): void {
    if (this.traceOn) this.trace.push(`${String(this.now).padStart(6)}ms ${line}`);
  }

  private violation(what: string): void {
    this.violations.push(`${what} (at ${this.now}ms)`);
    this.log(`VIOLATION ${what}`);
  }

  private handle(ev: SimEvent): void {
    const addressee = ev.kind === 'deliver' ? ev.msg.to : ev.kind === 'tick' || ev.kind === 'diskDone' || ev.kind === 'request' ? ev.node : null;
    const paused = addressee === null ? undefined : this.nodes.get(addressee);
    if (paused !== undefined && paused.pausedUntil > this.now) {
      this.queue.push(paused.pausedUntil, ev);
      return;
    }
    switch (ev.kind) {
      case 'deliver': {
        const n = this.nodes.get(ev.msg.to);
        if (n === undefined || !n.up) return;
        const sender = this.nodes.get(ev.msg.from);
        const crashed = sender?.crashedAt[ev.senderIncarnation];
        if (crashed !== undefined && crashed < ev.sentAt + this.departMs) return; // died before it left
        n.raft.step(ev.msg);
        this.afterInput(n);
        return;
      }
      case 'tick': {
        const n = this.nodes.get(ev.node);
        if (n === undefined || !n.up || n.incarnation !== ev.incarnation) return;
        n.raft.tick();
        this.afterInput(n);
        this.queue.push(this.now + Math.round(TICK_MS * n.drift), ev);
        return;
      }
      case 'diskDone': {
        const n = this.nodes.get(ev.node);
        if (n === undefined || !n.up || n.incarnation !== ev.incarnation || n.writing === null) return;
        const rd = n.writing;
        n.writing = null;
        n.disk.fsync();
        this.finish(n, rd);
        this.afterInput(n);
        return;
      }
      case 'crash': {
        const n = this.nodes.get(ev.node);
        if (n !== undefined && n.up && n.incarnation === ev.incarnation) this.crash(n);
        return;
      }
      case 'restart': {
        const n = this.nodes.get(ev.node);
        if (n !== undefined && !n.up) this.restart(n);
        return;
      }
      case 'client':
        this.clientStep(ev.client);
        return;
      case 'request':
        this.clientRequest(ev.op, ev.node);
        return;
      case 'clientTimeout':
        this.clientTimeout(ev.client, ev.op);
        return;
      case 'fault':
        if (this.calm) return;
        this.injectFault();
        this.queue.push(this.now + this.faults.int(100, this.faultGapMs), ev);
        return;
      case 'checkLogs':
        this.checkLogMatching();
        this.queue.push(this.now + 1000, ev);
        return;
      case 'calm':
        this.calm = true;
        this.partition = null;
        for (const n of this.nodes.values()) n.pausedUntil = 0;
        this.log('calm: partitions healed, every node restarted, no more loss or duplication');
        for (const n of this.nodes.values()) if (!n.up) this.restart(n);
        return;
      default: {
        const never: never = ev;
        return never;
      }
    }
  }

  // ------------------------------------------------------------------ nodes

  private afterInput(n: SimNode): void {
    this.observe(n);
    while (n.up && n.writing === null) {
      const rd = n.raft.ready();
      if (rd === null) break;
      let wrote = false;
      if (rd.snapshot !== null) {
        n.disk.write({ kind: 'snapshot', snapshot: rd.snapshot });
        wrote = true;
      }
      if (rd.entries.length > 0) {
        n.disk.write({ kind: 'entries', entries: rd.entries });
        wrote = true;
      }
      if (rd.hardState !== null) {
        n.disk.write({ kind: 'hardState', hardState: rd.hardState });
        wrote = true;
      }
      if (wrote) {
        // The Ready stays outstanding while the write is in flight: a crash in this window
        // loses some suffix of it, and nothing in it has been sent or applied yet.
        n.writing = rd;
        const done = this.now + this.net.int(0, this.maxFsync);
        this.queue.push(done, { kind: 'diskDone', node: n.id, incarnation: n.incarnation });
        // Crashes at random times almost never land inside a write; aim some there, so
        // that torn and lost writes are exercised.
        if (!this.calm && this.faults.chance(0.003)) this.queue.push(this.faults.int(this.now, done), { kind: 'crash', node: n.id, incarnation: n.incarnation });
        return;
      }
      this.finish(n, rd);
    }
  }

  private finish(n: SimNode, rd: Ready): void {
    for (const m of rd.messages) this.send(m);
    if (n.crashOnSend && rd.messages.length > 0) {
      n.crashOnSend = false;
      this.queue.push(this.now + this.faults.int(0, this.departMs), { kind: 'crash', node: n.id, incarnation: n.incarnation });
    }
    if (rd.snapshot !== null) this.applySnapshot(n, rd.snapshot.meta.index, rd.snapshot.data);
    for (const e of rd.committedEntries) this.applyEntry(n, e);
    for (const rs of rd.readStates) {
      const op = n.reads.get(rs.ctx);
      if (op === undefined) continue;
      n.reads.delete(rs.ctx);
      n.readsAwaitingApply.push({ index: rs.index, op });
    }
    this.serveReads(n);
    n.raft.advance(rd);
    this.observe(n);
    this.maybeCompact(n);
  }

  private applySnapshot(n: SimNode, index: number, data: Uint8Array): void {
    n.kv = KvStore.restore(data);
    if (n.kv.appliedIndex !== index) this.violation(`${n.id}: snapshot for index ${index} holds state at ${n.kv.appliedIndex}`);
    const digest = this.digestAt.get(index);
    if (digest !== undefined && digest !== n.kv.digest) this.violation(`state machine safety: ${n.id} installed a snapshot at ${index} that differs from what others applied`);
    this.log(`${n.id} installed snapshot at ${index}`);
  }

  private applyEntry(n: SimNode, e: Entry): void {
    const payload = payloadOf(e);
    const known = this.committed.get(e.index);
    if (known === undefined) this.committed.set(e.index, { term: e.term, payload, claimTerm: n.raft.status().term });
    else if (known.term !== e.term || known.payload !== payload) {
      this.violation(`state machine safety: ${n.id} applied ${e.index}@${e.term} "${payload}" but another node applied ${e.index}@${known.term} "${known.payload}"`);
      return;
    }
    this.maxCommitted = Math.max(this.maxCommitted, e.index);
    this.stats.maxCommit = this.maxCommitted;
    if (e.index !== n.kv.appliedIndex + 1) {
      this.violation(`${n.id} applied ${e.index} after ${n.kv.appliedIndex}: a gap or a repeat`);
      return;
    }
    const cmd: KvCommand | null = e.kind === 'command' ? decodeCommand(e.data) : null;
    const effect = n.kv.apply(e.index, payload, cmd);
    const digest = this.digestAt.get(e.index);
    if (digest === undefined) this.digestAt.set(e.index, n.kv.digest);
    else if (digest !== n.kv.digest) this.violation(`state machine safety: ${n.id} state after ${e.index} differs from other nodes'`);
    if (e.kind === 'config') this.log(`${n.id} applied config ${JSON.stringify(e.change)} -> ${JSON.stringify(e.membership)}`);
    if (effect !== null) {
      const key = `${effect.client}:${effect.seq}`;
      const op = n.waiters.get(key);
      if (op !== undefined) {
        n.waiters.delete(key);
        this.complete(op, null);
      }
    }
  }

  private serveReads(n: SimNode): void {
    if (n.readsAwaitingApply.length === 0) return;
    const still: { index: number; op: number }[] = [];
    for (const r of n.readsAwaitingApply) {
      if (r.index > n.kv.appliedIndex) still.push(r);
      else {
        const op = this.ops[r.op];
        if (op !== undefined) this.complete(r.op, n.kv.get(op.key));
      }
    }
    n.readsAwaitingApply = still;
  }

  private maybeCompact(n: SimNode): void {
    const st = n.raft.status();
    if (st.applied - st.snapshotIndex < this.compactEvery) return;
    const snap = n.raft.compact(st.applied, n.kv.snapshot());
    if (snap === null) return;
    // Durable before the log it replaces could be dropped (it never is on this fake disk,
    // but a restart must be able to start from it).
    n.disk.write({ kind: 'snapshot', snapshot: snap });
    n.disk.fsync();
  }

  /**
   * A node's commit index is a claim that everything up to it is committed: record it as
   * such the moment it is made, not only when applied, so that an entry committed and then
   * lost is caught even if no one applied it yet.
   */
  private observeCommit(n: SimNode, commit: number, firstIndex: number, term: number): void {
    for (let i = Math.max(n.checkedCommit + 1, firstIndex); i <= commit; i++) {
      const e = n.raft.entry(i);
      if (e === undefined) break;
      const payload = payloadOf(e);
      const known = this.committed.get(i);
      if (known === undefined) this.committed.set(i, { term: e.term, payload, claimTerm: term });
      else if (known.term !== e.term || known.payload !== payload) {
        this.violation(`state machine safety: ${n.id} committed ${i}@${e.term} "${payload}" but ${i}@${known.term} "${known.payload}" was committed before`);
        return;
      }
      else if (term < known.claimTerm) known.claimTerm = term;
      this.maxCommitted = Math.max(this.maxCommitted, i);
    }
    n.checkedCommit = Math.max(n.checkedCommit, commit);
  }

  private observe(n: SimNode): void {
    const st = n.raft.status();
    const commitBefore = n.checkedCommit;
    this.observeCommit(n, st.commit, st.firstIndex, st.term);
    if (st.role !== 'leader') return;
    // A new leader's first commit settles what its predecessors left behind: the moment
    // the commitment rules are tested hardest (thesis Figure 3.7). Crash it right there,
    // before what it sends next has left the process, now and then.
    if (st.commit > commitBefore && n.leaderCommitTerm !== st.term) {
      n.leaderCommitTerm = st.term;
      if (!this.calm && this.faults.chance(this.commitCrashChance)) {
        this.queue.push(this.now + this.faults.int(0, this.departMs), { kind: 'crash', node: n.id, incarnation: n.incarnation });
      }
    }
    const prev = this.leaderOfTerm.get(st.term);
    if (prev === n.id) return;
    if (prev !== undefined) {
      this.violation(`election safety: ${prev} and ${n.id} both leaders in term ${st.term}`);
      return;
    }
    this.leaderOfTerm.set(st.term, n.id);
    this.stats.leaders++;
    this.log(`${n.id} became leader of term ${st.term} (last index ${st.lastIndex}, commit ${st.commit})`);
    // Leaders that die within a round trip or two of winning leave entries of their term on
    // a minority: the raw material of the subtle histories (thesis Figure 3.7).
    if (!this.calm && this.faults.chance(this.winCrashChance)) {
      // Half of them once their noop is on disk but before their appends leave the
      // process: the noop stays theirs alone.
      if (this.faults.chance(0.5)) n.crashOnSend = true;
      else this.queue.push(this.now + this.faults.int(0, 2 * this.maxDelay + this.maxFsync), { kind: 'crash', node: n.id, incarnation: n.incarnation });
    }
    // Leader completeness: everything applied anywhere was committed, and so must be here.
    for (let i = st.snapshotIndex + 1; i <= this.maxCommitted; i++) {
      const c = this.committed.get(i);
      const e = n.raft.entry(i);
      // A leader of an older term can still win after later terms committed (its vote
      // replies were delayed): the property only binds leaders of later terms.
      if (c === undefined || c.claimTerm >= st.term) continue;
      if (e === undefined || e.term !== c.term || payloadOf(e) !== c.payload) {
        this.violation(`leader completeness: ${n.id}, leader of term ${st.term}, lacks committed entry ${i}@${c.term}`);
        return;
      }
    }
  }

  private crash(n: SimNode): void {
    n.crashedAt[n.incarnation] = this.now;
    n.crashOnSend = false;
    const lost = n.disk.crash(this.faults);
    n.up = false;
    n.writing = null;
    n.incarnation++;
    n.waiters.clear();
    n.reads.clear();
    n.readsAwaitingApply = [];
    n.checkedCommit = 0;
    this.stats.crashes++;
    this.log(`${n.id} crashed (lost ${lost} unsynced records)`);
    const downMs = this.profile === 'churn' ? this.faults.int(100, 4000) : this.faults.int(100, Math.max(500, 2 * this.faultGapMs));
    this.queue.push(this.now + downMs, { kind: 'restart', node: n.id });
  }

  private restart(n: SimNode): void {
    const storage = n.disk.recover();
    n.raft = this.boot(n.id, n.disk);
    n.kv = KvStore.restore(storage.snapshot?.data ?? new Uint8Array(0));
    if (n.kv.appliedIndex !== (storage.snapshot?.meta.index ?? 0)) this.violation(`${n.id}: stored snapshot does not match its metadata`);
    n.up = true;
    this.log(`${n.id} restarted (term ${storage.hardState.term}, commit ${storage.hardState.commit}, ${storage.entries.length} entries after snapshot ${storage.snapshot?.meta.index ?? 'none'})`);
    this.queue.push(this.now + this.rng.int(1, TICK_MS), { kind: 'tick', node: n.id, incarnation: n.incarnation });
  }

  // ------------------------------------------------------------------ network

  private send(m: Message): void {
    this.stats.messages++;
    if (m.type === 'installSnapshot') this.stats.snapshotsSent++;
    if (this.partition !== null && this.partition.get(m.from) !== this.partition.get(m.to)) return;
    if (!this.calm && this.net.chance(this.loss)) return;
    const copies = !this.calm && this.net.chance(this.dup) ? 2 : 1;
    // Independent delays per message reorder them.
    const senderIncarnation = this.nodes.get(m.from)?.incarnation ?? 0;
    for (let i = 0; i < copies; i++) {
      this.queue.push(this.now + this.net.int(this.minDelay, this.maxDelay), { kind: 'deliver', msg: m, sentAt: this.now, senderIncarnation });
    }
  }

  // ------------------------------------------------------------------ faults

  private leaderNode(): SimNode | null {
    let best: SimNode | null = null;
    let bestTerm = -1;
    for (const n of this.nodes.values()) {
      if (!n.up) continue;
      const st = n.raft.status();
      if (st.role === 'leader' && st.term > bestTerm) {
        best = n;
        bestTerm = st.term;
      }
    }
    return best;
  }

  private injectFault(): void {
    // Churn keeps to crashes and partitions, mostly of leaders; the rest is mixed.
    const r = this.profile === 'churn' ? this.faults.pick([0.1, 0.25, 0.4, 0.5, 0.5, 0.5]) : this.faults.next();
    const up = [...this.nodes.values()].filter((n) => n.up);
    if (r < 0.2) {
      const groups = new Map<NodeId, number>();
      if (this.faults.chance(0.5)) {
        const lonely = this.faults.pick(this.ids);
        for (const id of this.ids) groups.set(id, id === lonely ? 1 : 0);
      } else {
        for (const id of this.ids) groups.set(id, this.faults.int(0, 1));
      }
      this.partition = groups;
      this.log(`partition ${JSON.stringify([...groups])}`);
    } else if (r < 0.35) {
      this.partition = null;
      this.log('heal');
    } else if (r < 0.45) {
      if (up.length > 0) this.crash(this.faults.pick(up));
    } else if (r < 0.55) {
      // Leaders are where the interesting histories start: crash or cut off the current one.
      const leader = this.leaderNode();
      if (leader === null) return;
      if (this.faults.chance(0.5)) this.crash(leader);
      else {
        this.partition = new Map(this.ids.map((id) => [id, id === leader.id ? 1 : 0]));
        this.log(`isolate leader ${leader.id}`);
      }
    } else if (r < 0.65) {
      const leader = this.leaderNode();
      if (leader === null) return;
      const voters = leader.raft.status().membership.voters.filter((v) => v !== leader.id);
      if (voters.length === 0) return;
      const target = this.faults.pick(voters);
      const res = leader.raft.transferLeadership(target);
      this.log(`${leader.id} transfer leadership to ${target}: ${res.ok ? 'started' : res.reason}`);
      this.afterInput(leader);
    } else if (r < 0.85) {
      this.changeMembership();
    } else {
      const leader = this.leaderNode();
      const victim = leader !== null && this.faults.chance(0.5) ? leader : up.length > 0 ? this.faults.pick(up) : null;
      if (victim === null) return;
      victim.pausedUntil = this.now + this.faults.int(300, 3000);
      this.log(`${victim.id} paused until ${victim.pausedUntil}ms`);
    }
  }

  private changeMembership(): void {
    const leader = this.leaderNode();
    if (leader === null) return;
    const m = leader.raft.status().membership;
    const outsiders = this.ids.filter((id) => !m.voters.includes(id) && !m.learners.includes(id));
    const choice = this.faults.next();
    let change: ConfChange;
    if (outsiders.length > 0 && choice < 0.4) change = { type: 'addLearner', node: this.faults.pick(outsiders) };
    else if (m.learners.length > 0 && choice < 0.7) change = { type: 'promote', node: this.faults.pick(m.learners) };
    else if (m.voters.length > 2) change = { type: 'remove', node: this.faults.pick(m.voters) };
    else if (outsiders.length > 0) change = { type: 'addVoter', node: this.faults.pick(outsiders) };
    else return;
    const res = leader.raft.proposeConfChange(change);
    this.log(`${leader.id} propose ${JSON.stringify(change)}: ${res.ok ? `at ${res.index ?? '?'}` : res.reason}`);
    this.afterInput(leader);
  }

  // ------------------------------------------------------------------ clients

  private clientStep(clientId: number): void {
    const client = this.clients[clientId - 1];
    if (client === undefined || client.current !== null) return;
    if (this.now > this.chaosMs + this.calmMs - this.quietMs) return;
    const node = this.work.pick(this.ids);
    const key = this.work.pick(KEYS);
    const r = this.work.next();
    client.seq++;
    // Unique, and delimited so that no value is a substring of another's.
    const value = `[${client.id}.${client.seq}]`;
    const input: KvInput = r < 0.3 ? { op: 'get' } : r < 0.55 ? { op: 'put', value } : { op: 'append', value };
    const op: ClientOp = { id: this.ops.length, client: client.id, seq: client.seq, key, input, call: this.now, done: false };
    this.ops.push(op);
    client.current = op;
    this.queue.push(this.now + CLIENT_TIMEOUT_MS, { kind: 'clientTimeout', client: client.id, op: op.id });
    this.queue.push(this.now + this.net.int(this.minDelay, this.maxDelay), { kind: 'request', op: op.id, node });
  }

  private clientRequest(opId: number, node: NodeId): void {
    const op = this.ops[opId];
    const target = this.nodes.get(node);
    if (op === undefined || op.done || target === undefined) return;
    let accepted: ProposeResult = { ok: false, reason: 'noLeader' };
    if (target.up) {
      if (op.input.op === 'get') {
        const ctx = `r${op.id}`;
        accepted = target.raft.readIndex(ctx);
        if (accepted.ok) target.reads.set(ctx, op.id);
      } else {
        const cmd: KvCommand = { op: op.input.op, client: op.client, seq: op.seq, key: op.key, value: op.input.value };
        accepted = target.raft.propose(encodeCommand(cmd));
        if (accepted.ok) target.waiters.set(`${op.client}:${op.seq}`, op.id);
      }
    }
    if (accepted.ok) {
      this.afterInput(target);
      return;
    }
    // Refused outright (node down, no leader known): the operation never entered the
    // system, so it is not part of the history.
    op.done = true;
    const client = this.clients[op.client - 1];
    if (client !== undefined && client.current === op) {
      client.current = null;
      this.queue.push(this.now + this.work.int(10, 300), { kind: 'client', client: client.id });
    }
  }

  private complete(opId: number, output: string | null): void {
    const op = this.ops[opId];
    if (op === undefined || op.done) return;
    op.done = true;
    this.stats.opsOk++;
    this.history.push({ key: op.key, op: { input: op.input, output, call: op.call, ret: this.now } });
    const client = this.clients[op.client - 1];
    if (client !== undefined && client.current === op) {
      client.current = null;
      this.queue.push(this.now + this.work.int(10, 300), { kind: 'client', client: client.id });
    }
  }

  private clientTimeout(clientId: number, opId: number): void {
    const op = this.ops[opId];
    const client = this.clients[clientId - 1];
    if (op === undefined || client === undefined || op.done) return;
    this.abandon(op);
    client.current = null;
    this.queue.push(this.now + this.work.int(10, 300), { kind: 'client', client: client.id });
  }

  /** A write whose fate the client never learned may have happened at any time after its call. */
  private abandon(op: ClientOp): void {
    op.done = true;
    if (op.input.op === 'get') return;
    this.stats.opsUnknown++;
    this.history.push({ key: op.key, op: { input: op.input, output: null, call: op.call, ret: Infinity } });
  }

  // ------------------------------------------------------------------ checks

  private checkLogMatching(): void {
    const up = [...this.nodes.values()].filter((n) => n.up);
    for (let a = 0; a < up.length; a++) {
      for (let b = a + 1; b < up.length; b++) {
        const x = up[a];
        const y = up[b];
        if (x === undefined || y === undefined) continue;
        const sx = x.raft.status();
        const sy = y.raft.status();
        const lo = Math.max(sx.firstIndex, sy.firstIndex);
        let i = Math.min(sx.lastIndex, sy.lastIndex);
        while (i >= lo && x.raft.term(i) !== y.raft.term(i)) i--;
        // Log matching: the same (index, term) means identical logs up to there.
        for (let j = i; j >= lo; j--) {
          const ex = x.raft.entry(j);
          const ey = y.raft.entry(j);
          if (ex === undefined || ey === undefined || !sameEntry(ex, ey)) {
            this.violation(`log matching: ${x.id} and ${y.id} agree at ${i}@${x.raft.term(i) ?? '?'} but differ at ${j}`);
            return;
          }
        }
      }
    }
  }

  private finalChecks(): void {
    this.checkLogMatching();
    if (this.violations.length > 0) return;
    const leader = this.leaderNode();
    if (leader === null) this.violation(`liveness: no leader ${this.calmMs}ms after the faults stopped`);
    else {
      // Clients went quiet before the end: every member must have caught up with the leader.
      const ls = leader.raft.status();
      for (const id of [...ls.membership.voters, ...ls.membership.learners]) {
        const st = this.nodes.get(id)?.raft.status();
        if (st !== undefined && (st.commit !== ls.commit || st.lastIndex !== ls.lastIndex)) {
          this.violation(`liveness: ${id} stuck at commit ${st.commit}/last ${st.lastIndex}, leader ${leader.id} at ${ls.commit}/${ls.lastIndex}`);
        }
      }
    }
    for (const op of this.ops) if (!op.done) this.abandon(op);
    const byKey = new Map<string, Operation<KvInput, string | null>[]>();
    for (const h of this.history) {
      const list = byKey.get(h.key) ?? [];
      list.push(h.op);
      byKey.set(h.key, list);
    }
    for (const [key, all] of byKey) {
      const ops = withoutUnobservedUnknowns(all);
      const out = checkLinearizable(registerModel, ops);
      if (out.result === 'illegal') this.violation(`linearizability: the history of key "${key}" (${ops.length} operations) has no legal order`);
      else if (out.result === 'gaveUp') this.violation(`linearizability: search for key "${key}" gave up after ${out.steps} steps`);
    }
  }
}
