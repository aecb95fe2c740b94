// The raft state machine (Ongaro, "Consensus: Bridging Theory and Practice", 2014).
//
// Pure: it is driven by step(message), tick() and the propose/read/transfer calls, and
// answers through ready(): what to persist, send and apply. No clock, socket, file or
// Math.random in here; the one source of randomness (election timeouts) is injected.
//
// Extensions beyond the basic algorithm, each for a reason the thesis gives:
// - pre-vote (§9.6): a node cut off from the cluster does not inflate its term, so its
//   return does not depose a healthy leader;
// - check-quorum and the leader lease on votes (§6.2, §4.2.3): a leader that cannot reach
//   a majority steps down, and followers that hear from a leader ignore campaigns;
// - single-server membership changes (§4.1, §4.2.1): a configuration takes effect when its
//   entry is appended, one change may be uncommitted at a time, and a new leader must
//   commit an entry of its own term before it starts one (the fix to the bug reported on
//   raft-dev in 2015);
// - leadership transfer (§3.10), ReadIndex reads (§6.4), forwarding from followers.

import { RaftLog } from './log.js';
import { Progress } from './progress.js';
import type {
  AppendAck,
  AppendReject,
  AppendRequest,
  ConfChange,
  Entry,
  HardState,
  Heartbeat,
  HeartbeatResponse,
  InstallSnapshot,
  Membership,
  Message,
  NodeId,
  PreVoteRequest,
  ProposeResult,
  RaftConfig,
  ReadState,
  Snapshot,
  Ready,
  Role,
  SoftState,
  Status,
  StorageState,
  TermMessage,
  VoteRequest,
} from './types.js';

export interface RaftNode {
  readonly id: NodeId;
  step(message: Message): void;
  tick(): void;
  propose(data: Uint8Array): ProposeResult;
  proposeConfChange(change: ConfChange): ProposeResult;
  /** Asks for a linearizable read; a ReadState with this ctx appears in a later Ready. */
  readIndex(ctx: string): ProposeResult;
  transferLeadership(target: NodeId): ProposeResult;
  /**
   * Folds the log up to `index` (≤ applied) into a snapshot of the state machine, `data`,
   * and drops those entries from memory. Returns the snapshot (metadata included) for the
   * driver to make durable before it discards the same entries on disk; null if `index`
   * is already covered by the current snapshot.
   */
  compact(index: number, data: Uint8Array): Snapshot | null;
  hasReady(): boolean;
  /** At most one Ready is outstanding: call advance(ready) before asking again. */
  ready(): Ready | null;
  advance(ready: Ready): void;
  status(): Status;
  /** Read-only access to the log, for drivers and checkers. */
  entry(index: number): Entry | undefined;
  term(index: number): number | undefined;
}

export function createNode(config: RaftConfig, storage: StorageState): RaftNode {
  if (!(config.heartbeatTicks >= 1 && config.electionTicks > config.heartbeatTicks)) {
    throw new Error(`raft config: need 1 <= heartbeatTicks (${config.heartbeatTicks}) < electionTicks (${config.electionTicks})`);
  }
  if (config.maxEntriesPerAppend < 1 || config.maxInflightAppends < 1) {
    throw new Error('raft config: maxEntriesPerAppend and maxInflightAppends must be at least 1');
  }
  return new Node(config, storage);
}

interface PendingRead {
  readonly seq: number;
  readonly index: number;
  readonly ctx: string;
  readonly from: NodeId;
}

function isTermMessage(m: Message): m is TermMessage {
  return m.type !== 'propose' && m.type !== 'readIndex' && m.type !== 'readIndexResp';
}

function membershipAfter(m: Membership, change: ConfChange): Membership | null {
  const isVoter = m.voters.includes(change.node);
  const isLearner = m.learners.includes(change.node);
  const sorted = (xs: NodeId[]): NodeId[] => xs.sort();
  switch (change.type) {
    case 'addVoter':
      if (isVoter) return null;
      return { voters: sorted([...m.voters, change.node]), learners: m.learners.filter((n) => n !== change.node) };
    case 'addLearner':
      if (isVoter || isLearner) return null;
      return { voters: m.voters, learners: sorted([...m.learners, change.node]) };
    case 'promote':
      if (!isLearner) return null;
      return { voters: sorted([...m.voters, change.node]), learners: m.learners.filter((n) => n !== change.node) };
    case 'remove':
      if (!isVoter && !isLearner) return null;
      if (isVoter && m.voters.length === 1) return null;
      return { voters: m.voters.filter((n) => n !== change.node), learners: m.learners.filter((n) => n !== change.node) };
    default: {
      const never: never = change;
      return never;
    }
  }
}

class Node implements RaftNode {
  readonly id: NodeId;
  private readonly cfg: RaftConfig;
  private readonly log: RaftLog;
  private currentTerm: number;
  private vote: NodeId | null;
  private committed: number;
  /** Highest index handed to the driver to apply and acknowledged by advance(). */
  private applied: number;
  private role: Role = 'follower';
  private leader: NodeId | null = null;
  private membership: Membership;
  /** Newest config entry still in the log; null when the membership comes from the snapshot. */
  private configIndex: number | null;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedTimeout = 0;
  private votes = new Map<NodeId, boolean>();
  private progress = new Map<NodeId, Progress>();
  private transferee: NodeId | null = null;
  private transferElapsed = 0;

  private readSeq = 0;
  private pendingReads: PendingRead[] = [];
  private readsAwaitingCommit: { ctx: string; from: NodeId }[] = [];

  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  private persistedHard: HardState;
  private lastSoft: SoftState;
  // Leader work deferred to ready(): proposals arriving between two readies go out in one
  // AppendEntries per follower (batching), and one heartbeat round serves many reads.
  private appendPending = false;
  private commitPending = false;
  private heartbeatPending = false;
  private outstanding: Ready | null = null;

  constructor(config: RaftConfig, storage: StorageState) {
    this.id = config.id;
    this.cfg = config;
    this.log = new RaftLog(storage.snapshot, storage.entries);
    const hs = storage.hardState;
    this.currentTerm = hs.term;
    this.vote = hs.vote;
    const base = this.log.snapshotMeta().index;
    if (hs.commit > this.log.lastIndex()) {
      throw new Error(`raft: stored commit index ${hs.commit} is beyond the stored log (last index ${this.log.lastIndex()})`);
    }
    this.committed = Math.max(hs.commit, base);
    this.applied = base;
    this.configIndex = this.log.lastConfigIndex(this.log.lastIndex());
    this.membership = this.log.membershipAt(this.log.lastIndex());
    this.persistedHard = hs;
    this.lastSoft = this.softState();
    this.resetRandomizedTimeout();
  }

  // ------------------------------------------------------------------ public API

  tick(): void {
    if (this.role === 'leader') {
      this.tickLeader();
      return;
    }
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedTimeout && this.promotable()) this.campaign('pre', false);
  }

  step(m: Message): void {
    if (m.to !== this.id || m.from === this.id) return;
    if (isTermMessage(m) && !this.checkTerm(m)) return;
    switch (m.type) {
      case 'preVote':
        this.handlePreVote(m);
        return;
      case 'vote':
        this.handleVote(m);
        return;
      case 'preVoteResp':
        if (this.role !== 'preCandidate') return;
        if (m.granted && m.term !== this.currentTerm + 1) return;
        this.tally(m.from, m.granted);
        return;
      case 'voteResp':
        if (this.role === 'candidate' && m.term === this.currentTerm) this.tally(m.from, m.granted);
        return;
      case 'append':
      case 'heartbeat':
      case 'installSnapshot':
        // Two leaders in one term would violate election safety; never follow a peer leader.
        if (this.role === 'leader') return;
        if (this.role !== 'follower') this.becomeFollower(this.currentTerm, m.from);
        this.leader = m.from;
        this.electionElapsed = 0;
        if (m.type === 'append') this.handleAppend(m);
        else if (m.type === 'heartbeat') this.handleHeartbeat(m);
        else this.handleSnapshot(m);
        return;
      case 'appendAck':
        if (this.role === 'leader') this.handleAck(m);
        return;
      case 'appendReject':
        if (this.role === 'leader') this.handleReject(m);
        return;
      case 'heartbeatResp':
        if (this.role === 'leader') this.handleHeartbeatResp(m);
        return;
      case 'timeoutNow':
        if (this.role !== 'leader') this.campaign('real', true);
        return;
      case 'propose':
        if (this.role === 'leader' && this.transferee === null) {
          for (const data of m.commands) this.appendEntry({ kind: 'command', data });
        }
        return;
      case 'readIndex':
        if (this.role === 'leader') this.handleRead(m.ctx, m.from);
        return;
      case 'readIndexResp':
        // Valid whatever our term: the leader confirmed its leadership after receiving the
        // request, so its commit index then bounds every write that completed before it.
        this.readStates.push({ ctx: m.ctx, index: m.index });
        return;
      default: {
        const never: never = m;
        return never;
      }
    }
  }

  propose(data: Uint8Array): ProposeResult {
    if (this.role === 'leader') {
      if (this.transferee !== null) return { ok: false, reason: 'transferring' };
      return { ok: true, index: this.appendEntry({ kind: 'command', data }) };
    }
    if (this.leader === null) return { ok: false, reason: 'noLeader' };
    this.msgs.push({ type: 'propose', from: this.id, to: this.leader, commands: [data] });
    return { ok: true, index: null };
  }

  proposeConfChange(change: ConfChange): ProposeResult {
    if (this.role !== 'leader') return { ok: false, reason: 'notLeader' };
    if (this.transferee !== null) return { ok: false, reason: 'transferring' };
    if (!this.committedInCurrentTerm()) return { ok: false, reason: 'leaderNotReady' };
    if (this.configIndex !== null && this.configIndex > this.committed) return { ok: false, reason: 'configPending' };
    const next = membershipAfter(this.membership, change);
    if (next === null) return { ok: false, reason: 'invalidChange' };
    if (change.type === 'promote') {
      // A learner only gets a vote once it holds everything committed so far; promoting a
      // far-behind learner would make it part of every quorum while it cannot ack anything.
      const pr = this.progress.get(change.node);
      if (pr === undefined || pr.match < this.committed) return { ok: false, reason: 'notCaughtUp' };
    }
    return { ok: true, index: this.appendEntry({ kind: 'config', change, membership: next }) };
  }

  readIndex(ctx: string): ProposeResult {
    if (this.role === 'leader') {
      this.handleRead(ctx, this.id);
      return { ok: true, index: null };
    }
    if (this.leader === null) return { ok: false, reason: 'noLeader' };
    this.msgs.push({ type: 'readIndex', from: this.id, to: this.leader, ctx });
    return { ok: true, index: null };
  }

  transferLeadership(target: NodeId): ProposeResult {
    if (this.role !== 'leader') return { ok: false, reason: 'notLeader' };
    if (target === this.id) return { ok: true, index: null };
    const pr = this.progress.get(target);
    if (pr === undefined || !this.membership.voters.includes(target)) return { ok: false, reason: 'invalidChange' };
    this.transferee = target;
    this.transferElapsed = 0;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.sendAppends(pr, false);
    return { ok: true, index: null };
  }

  compact(index: number, data: Uint8Array): Snapshot | null {
    if (index <= this.log.snapshotMeta().index) return null;
    if (index > this.applied) throw new Error(`raft: compact to ${index} beyond applied index ${this.applied}`);
    const term = this.log.term(index);
    if (term === undefined) throw new Error(`raft: compact to unknown index ${index}`);
    const meta = { index, term, membership: this.log.membershipAt(index) };
    this.log.compact(meta, data);
    if (this.configIndex !== null && this.configIndex <= index) this.configIndex = null;
    return { meta, data };
  }

  hasReady(): boolean {
    if (this.outstanding !== null) return false;
    if (this.role === 'leader' && (this.appendPending || this.commitPending || this.heartbeatPending)) return true;
    return (
      this.msgs.length > 0 ||
      this.readStates.length > 0 ||
      this.log.unstableSnapshot !== null ||
      this.log.lastIndex() > this.log.stable ||
      this.committed > this.applied ||
      this.hardStateChanged() ||
      this.softStateChanged()
    );
  }

  ready(): Ready | null {
    if (this.outstanding !== null) throw new Error('raft: ready() called before advance() of the previous Ready');
    if (this.role === 'leader') this.flush();
    if (!this.hasReady()) return null;
    const hs = this.hardState();
    const rd: Ready = {
      softState: this.softStateChanged() ? this.softState() : null,
      hardState: this.hardStateChanged() ? hs : null,
      snapshot: this.log.unstableSnapshot,
      entries: this.log.unstableEntries(),
      messages: this.msgs,
      committedEntries: this.committed > this.applied ? this.log.slice(this.applied + 1, this.committed + 1) : [],
      readStates: this.readStates,
    };
    this.msgs = [];
    this.readStates = [];
    this.outstanding = rd;
    return rd;
  }

  advance(rd: Ready): void {
    if (rd !== this.outstanding) throw new Error('raft: advance() with a Ready that is not the outstanding one');
    this.outstanding = null;
    if (rd.snapshot !== null && this.log.snapshotMeta() === rd.snapshot.meta) {
      this.log.unstableSnapshot = null;
      this.log.stable = Math.max(this.log.stable, rd.snapshot.meta.index);
    }
    const last = rd.entries[rd.entries.length - 1];
    // Entries may have been replaced while the driver was writing them; only what is still
    // in the log at the same term became durable.
    if (last !== undefined && this.log.term(last.index) === last.term) this.log.stable = Math.max(this.log.stable, last.index);
    if (rd.hardState !== null) this.persistedHard = rd.hardState;
    if (rd.softState !== null) this.lastSoft = rd.softState;
    const applied = rd.committedEntries[rd.committedEntries.length - 1];
    if (applied !== undefined) this.applied = Math.max(this.applied, applied.index);
    // The leader counts itself toward a quorum only for what it has made durable.
    if (this.role === 'leader') this.maybeCommit();
  }

  status(): Status {
    return {
      id: this.id,
      role: this.role,
      term: this.currentTerm,
      vote: this.vote,
      leader: this.leader,
      commit: this.committed,
      applied: this.applied,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      snapshotIndex: this.log.snapshotMeta().index,
      membership: this.membership,
      progress: new Map([...this.progress].map(([id, p]) => [id, { match: p.match, next: p.next, state: p.state }])),
      transferee: this.transferee,
    };
  }

  entry(index: number): Entry | undefined {
    return this.log.entry(index);
  }

  term(index: number): number | undefined {
    return this.log.term(index);
  }

  // ------------------------------------------------------------------ terms and roles

  /** Applies the term rules common to every message; returns false when the message is to be dropped. */
  private checkTerm(m: TermMessage): boolean {
    if (m.term > this.currentTerm) {
      const campaign = m.type === 'preVote' || (m.type === 'vote' && !m.transfer);
      // Within a lease we heard from a live leader: whoever campaigns is disconnected
      // or slow, and letting it raise our term would depose a healthy leader.
      if (campaign && this.inLease()) return false;
      // A pre-vote asks about a future term; it must not move ours.
      if (m.type === 'preVote') return true;
      if (m.type === 'preVoteResp' && m.granted) return true;
      const isLeaderMessage = m.type === 'append' || m.type === 'heartbeat' || m.type === 'installSnapshot';
      this.becomeFollower(m.term, isLeaderMessage ? m.from : null);
      return true;
    }
    if (m.term < this.currentTerm) {
      if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'installSnapshot') {
        // A deposed leader: our term makes it step down. Without this, a leader cut off
        // and then reconnected would keep sending until its own check-quorum fired.
        this.msgs.push({ type: 'heartbeatResp', from: this.id, to: m.from, term: this.currentTerm, readSeq: 0 });
      } else if (m.type === 'preVote') {
        this.msgs.push({ type: 'preVoteResp', from: this.id, to: m.from, term: this.currentTerm, granted: false });
      } else if (m.type === 'vote') {
        this.msgs.push({ type: 'voteResp', from: this.id, to: m.from, term: this.currentTerm, granted: false });
      }
      return false;
    }
    return true;
  }

  private inLease(): boolean {
    return this.leader !== null && this.electionElapsed < this.cfg.electionTicks;
  }

  private promotable(): boolean {
    return this.membership.voters.includes(this.id);
  }

  private quorum(): number {
    return Math.floor(this.membership.voters.length / 2) + 1;
  }

  private resetRandomizedTimeout(): void {
    const r = this.cfg.rand();
    this.randomizedTimeout = this.cfg.electionTicks + Math.floor(Math.min(Math.max(r, 0), 0.999999) * this.cfg.electionTicks);
  }

  private reset(): void {
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedTimeout();
    this.votes.clear();
    this.progress.clear();
    this.transferee = null;
    this.pendingReads = [];
    this.readsAwaitingCommit = [];
    this.appendPending = false;
    this.commitPending = false;
    this.heartbeatPending = false;
  }

  private becomeFollower(term: number, leader: NodeId | null): void {
    if (term !== this.currentTerm) {
      this.currentTerm = term;
      this.vote = null;
    }
    this.role = 'follower';
    this.reset();
    this.leader = leader;
  }

  private campaign(kind: 'pre' | 'real', transfer: boolean): void {
    if (!this.promotable()) return;
    this.reset();
    this.leader = null;
    let electionTerm: number;
    if (kind === 'pre') {
      this.role = 'preCandidate';
      electionTerm = this.currentTerm + 1;
    } else {
      this.role = 'candidate';
      this.currentTerm += 1;
      this.vote = this.id;
      electionTerm = this.currentTerm;
    }
    this.votes.set(this.id, true);
    if (this.tallyOutcome() === 'won') {
      this.won();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const v of this.membership.voters) {
      if (v === this.id) continue;
      if (kind === 'pre') this.msgs.push({ type: 'preVote', from: this.id, to: v, term: electionTerm, lastIndex, lastTerm });
      else this.msgs.push({ type: 'vote', from: this.id, to: v, term: electionTerm, lastIndex, lastTerm, transfer });
    }
  }

  private tally(from: NodeId, granted: boolean): void {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    const outcome = this.tallyOutcome();
    if (outcome === 'won') this.won();
    else if (outcome === 'lost') this.becomeFollower(this.currentTerm, null);
  }

  private tallyOutcome(): 'won' | 'lost' | 'pending' {
    let granted = 0;
    let rejected = 0;
    for (const v of this.membership.voters) {
      const got = this.votes.get(v);
      if (got === true) granted++;
      else if (got === false) rejected++;
    }
    const q = this.quorum();
    if (granted >= q) return 'won';
    if (this.membership.voters.length - rejected < q) return 'lost';
    return 'pending';
  }

  private won(): void {
    if (this.role === 'preCandidate') this.campaign('real', false);
    else this.becomeLeader();
  }

  private becomeLeader(): void {
    this.role = 'leader';
    this.reset();
    this.leader = this.id;
    this.syncProgress();
    // Commitment is only ever decided by counting replicas of an entry of the current
    // term (§5.4.2), so a new leader needs one of its own to commit anything at all.
    this.appendEntry({ kind: 'noop' });
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    for (const pr of this.progress.values()) {
      if (pr.state === 'snapshot' && ++pr.snapshotTicks >= this.cfg.electionTicks) pr.becomeProbe();
    }
    if (this.transferee !== null && ++this.transferElapsed >= this.cfg.electionTicks) this.transferee = null;
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      if (!this.quorumActive()) {
        this.becomeFollower(this.currentTerm, null);
        return;
      }
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.heartbeatPending = true;
    }
  }

  private quorumActive(): boolean {
    let active = 0;
    for (const v of this.membership.voters) {
      if (v === this.id) active++;
      else if (this.progress.get(v)?.recentActive === true) active++;
    }
    for (const pr of this.progress.values()) pr.recentActive = false;
    return active >= this.quorum();
  }

  // ------------------------------------------------------------------ votes

  private handlePreVote(m: PreVoteRequest): void {
    const granted = m.term > this.currentTerm && this.log.isUpToDate(m.lastIndex, m.lastTerm);
    this.msgs.push({ type: 'preVoteResp', from: this.id, to: m.from, term: granted ? m.term : this.currentTerm, granted });
  }

  private handleVote(m: VoteRequest): void {
    const canVote = this.vote === m.from || (this.vote === null && this.leader === null);
    const granted = canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm);
    if (granted) {
      this.vote = m.from;
      this.electionElapsed = 0;
    }
    this.msgs.push({ type: 'voteResp', from: this.id, to: m.from, term: this.currentTerm, granted });
  }

  // ------------------------------------------------------------------ follower side

  private handleAppend(m: AppendRequest): void {
    let prevIndex = m.prevIndex;
    let prevTerm = m.prevTerm;
    let entries = m.entries;
    if (prevIndex < this.committed) {
      // Everything up to our commit index is in every later leader's log, so it matches;
      // judge the request from there (this also covers indexes we have compacted away).
      entries = entries.filter((e) => e.index > this.committed);
      prevIndex = this.committed;
      prevTerm = this.log.term(this.committed) ?? -1;
    }
    const have = this.log.term(prevIndex);
    if (have !== prevTerm) {
      this.msgs.push(this.rejection(m, have));
      return;
    }
    const truncatedAt = this.log.merge(entries, this.committed);
    if (truncatedAt !== null || entries.some((e) => e.kind === 'config')) this.refreshMembership();
    const lastNew = prevIndex + entries.length;
    // Not lastIndex: entries beyond lastNew may still be from an old term and be replaced.
    this.commitTo(Math.min(m.commit, lastNew));
    this.msgs.push({ type: 'appendAck', from: this.id, to: m.from, term: this.currentTerm, matchIndex: lastNew });
  }

  private rejection(m: AppendRequest, have: number | undefined): AppendReject {
    const base = { type: 'appendReject' as const, from: this.id, to: m.from, term: this.currentTerm, rejectedIndex: m.prevIndex };
    if (have === undefined) return { ...base, hintIndex: this.log.lastIndex() + 1, hintTerm: 0 };
    let first = m.prevIndex;
    while (first - 1 > this.committed && this.log.term(first - 1) === have) first--;
    return { ...base, hintIndex: first, hintTerm: have };
  }

  private handleHeartbeat(m: Heartbeat): void {
    this.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.msgs.push({ type: 'heartbeatResp', from: this.id, to: m.from, term: this.currentTerm, readSeq: m.readSeq });
  }

  private handleSnapshot(m: InstallSnapshot): void {
    const meta = m.snapshot.meta;
    const ack = (matchIndex: number): void => {
      this.msgs.push({ type: 'appendAck', from: this.id, to: m.from, term: this.currentTerm, matchIndex });
    };
    if (meta.index <= this.committed) {
      ack(this.committed);
      return;
    }
    if (this.log.term(meta.index) === meta.term) {
      // We already hold the snapshot's last entry, so everything before it matches too.
      this.commitTo(meta.index);
      ack(meta.index);
      return;
    }
    this.log.restore(m.snapshot);
    this.committed = meta.index;
    this.applied = Math.max(this.applied, meta.index);
    this.configIndex = null;
    this.membership = meta.membership;
    ack(meta.index);
  }

  private commitTo(index: number): void {
    if (index > this.committed) this.committed = index;
  }

  private refreshMembership(): void {
    this.configIndex = this.log.lastConfigIndex(this.log.lastIndex());
    this.applyMembership(this.log.membershipAt(this.log.lastIndex()));
  }

  private applyMembership(m: Membership): void {
    this.membership = m;
    if (this.role === 'leader') this.syncProgress();
    if (this.transferee !== null && !m.voters.includes(this.transferee)) this.transferee = null;
  }

  // ------------------------------------------------------------------ leader side

  private committedInCurrentTerm(): boolean {
    return this.log.term(this.committed) === this.currentTerm;
  }

  private appendEntry(payload: { kind: 'noop' } | { kind: 'command'; data: Uint8Array } | { kind: 'config'; change: ConfChange; membership: Membership }): number {
    const index = this.log.lastIndex() + 1;
    const entry: Entry = { ...payload, index, term: this.currentTerm };
    this.log.append(entry);
    if (entry.kind === 'config') {
      this.configIndex = index;
      this.applyMembership(entry.membership);
    }
    this.appendPending = true;
    return index;
  }

  private syncProgress(): void {
    const members = new Set([...this.membership.voters, ...this.membership.learners]);
    members.delete(this.id);
    for (const id of [...this.progress.keys()]) if (!members.has(id)) this.progress.delete(id);
    for (const id of members) {
      if (!this.progress.has(id)) this.progress.set(id, new Progress(id, this.log.lastIndex() + 1, this.cfg.maxInflightAppends));
    }
  }

  /** Sends what is pending to every follower; called once per Ready. */
  private flush(): void {
    const withCommit = this.commitPending;
    const heartbeat = this.heartbeatPending;
    this.appendPending = false;
    this.commitPending = false;
    this.heartbeatPending = false;
    for (const pr of this.progress.values()) {
      if (heartbeat) {
        const commit = Math.min(pr.match, this.committed);
        this.msgs.push({ type: 'heartbeat', from: this.id, to: pr.id, term: this.currentTerm, commit, readSeq: this.readSeq });
      }
      this.sendAppends(pr, withCommit);
    }
  }

  /** Sends as many AppendEntries as the follower's state allows. */
  private sendAppends(pr: Progress, evenIfEmpty: boolean): void {
    let sendEmpty = evenIfEmpty;
    while (this.sendAppend(pr, sendEmpty)) sendEmpty = false;
  }

  /** Returns true if entries went out and more might follow. */
  private sendAppend(pr: Progress, evenIfEmpty: boolean): boolean {
    if (pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) {
      this.sendSnapshot(pr);
      return false;
    }
    const last = this.log.lastIndex();
    const entries = pr.next <= last ? this.log.slice(pr.next, Math.min(last + 1, pr.next + this.cfg.maxEntriesPerAppend)) : [];
    // An empty AppendEntries is still worth sending to carry a new commit index, or to
    // probe a follower whose agreement with us is unknown.
    if (entries.length === 0 && !evenIfEmpty && !(pr.state === 'probe' && pr.match < prevIndex)) return false;
    this.msgs.push({ type: 'append', from: this.id, to: pr.id, term: this.currentTerm, prevIndex, prevTerm, entries, commit: this.committed });
    const lastSent = entries[entries.length - 1];
    if (lastSent !== undefined) {
      pr.sentEntries(lastSent.index);
      return true;
    }
    if (pr.state === 'probe') pr.probeSent = true;
    return false;
  }

  private sendSnapshot(pr: Progress): void {
    const snapshot = this.log.snapshot();
    this.msgs.push({ type: 'installSnapshot', from: this.id, to: pr.id, term: this.currentTerm, snapshot });
    pr.becomeSnapshot(snapshot.meta.index);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.msgs.push({ type: 'timeoutNow', from: this.id, to, term: this.currentTerm });
  }

  private handleAck(m: AppendAck): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    const moved = pr.acknowledge(m.matchIndex);
    if (pr.state === 'probe') pr.becomeReplicate();
    else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) pr.becomeReplicate();
    if (moved) {
      this.maybeCommit();
      if (this.role !== 'leader') return;
      if (this.transferee === m.from && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
    }
    this.sendAppends(pr, false);
  }

  private handleReject(m: AppendReject): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    switch (pr.state) {
      case 'replicate':
        if (m.rejectedIndex <= pr.match) return;
        break;
      case 'probe':
        if (m.rejectedIndex !== pr.next - 1) return;
        break;
      case 'snapshot':
        return;
      default: {
        const never: never = pr.state;
        return never;
      }
    }
    pr.becomeProbe();
    pr.next = Math.max(pr.match + 1, Math.min(this.nextAfterReject(m), m.rejectedIndex));
    this.sendAppends(pr, false);
  }

  /** Where to probe next, skipping the follower's whole conflicting term in one step. */
  private nextAfterReject(m: AppendReject): number {
    if (m.hintTerm === 0) return m.hintIndex;
    for (let i = Math.min(m.rejectedIndex - 1, this.log.lastIndex()); i >= this.log.snapshotMeta().index; i--) {
      const t = this.log.term(i);
      if (t === undefined || t < m.hintTerm) break;
      if (t === m.hintTerm) return i + 1;
    }
    return m.hintIndex;
  }

  private handleHeartbeatResp(m: HeartbeatResponse): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (pr.state === 'probe') pr.probeSent = false;
    // The follower answers heartbeats but its match has not moved over a whole heartbeat
    // round while entries are outstanding: an AppendEntries or its answer was lost. Fall
    // back to probing, which resends; waiting would stall it until the next proposal.
    else if (pr.state === 'replicate' && pr.match < this.log.lastIndex() && pr.match === pr.matchAtHeartbeat) pr.becomeProbe();
    pr.matchAtHeartbeat = pr.match;
    if (pr.match < this.log.lastIndex()) this.sendAppends(pr, false);
    if (m.readSeq > pr.readAck) {
      pr.readAck = m.readSeq;
      this.confirmReads();
    }
  }

  private maybeCommit(): void {
    const voters = this.membership.voters;
    if (voters.length === 0) return;
    const matches = voters.map((v) => (v === this.id ? this.log.stable : (this.progress.get(v)?.match ?? 0))).sort((a, b) => b - a);
    const index = matches[this.quorum() - 1] ?? 0;
    // Only entries of the current term are committed by counting (§5.4.2); earlier ones
    // are committed indirectly, by the Log Matching property.
    if (index <= this.committed || this.log.term(index) !== this.currentTerm) return;
    this.committed = index;
    this.commitPending = true;
    if (this.readsAwaitingCommit.length > 0) {
      const waiting = this.readsAwaitingCommit;
      this.readsAwaitingCommit = [];
      for (const r of waiting) this.handleRead(r.ctx, r.from);
    }
    if (!voters.includes(this.id) && this.configIndex !== null && this.committed >= this.configIndex) this.stepDownAfterRemoval();
  }

  /** Our removal is committed: hand leadership to the most up-to-date voter and leave. */
  private stepDownAfterRemoval(): void {
    let best: Progress | null = null;
    for (const v of this.membership.voters) {
      const pr = this.progress.get(v);
      if (pr !== undefined && (best === null || pr.match > best.match)) best = pr;
    }
    // Let followers learn the commit of our removal before we stop sending.
    this.flush();
    if (best !== null && best.match === this.log.lastIndex()) this.sendTimeoutNow(best.id);
    this.becomeFollower(this.currentTerm, null);
  }

  // ------------------------------------------------------------------ reads

  private handleRead(ctx: string, from: NodeId): void {
    // Until it commits an entry of its term, a new leader does not know the commit index
    // of its predecessors (§6.4 step 1).
    if (!this.committedInCurrentTerm()) {
      this.readsAwaitingCommit.push({ ctx, from });
      return;
    }
    const read = { seq: ++this.readSeq, index: this.committed, ctx, from };
    if (this.quorum() === 1 && this.membership.voters.includes(this.id)) {
      this.deliverRead(read);
      return;
    }
    this.pendingReads.push(read);
    this.heartbeatPending = true;
  }

  private confirmReads(): void {
    const q = this.quorum();
    while (this.pendingReads.length > 0) {
      const read = this.pendingReads[0];
      if (read === undefined) break;
      let acks = 0;
      for (const v of this.membership.voters) {
        if (v === this.id || (this.progress.get(v)?.readAck ?? 0) >= read.seq) acks++;
      }
      if (acks < q) break;
      this.pendingReads.shift();
      this.deliverRead(read);
    }
  }

  private deliverRead(read: PendingRead): void {
    if (read.from === this.id) this.readStates.push({ ctx: read.ctx, index: read.index });
    else this.msgs.push({ type: 'readIndexResp', from: this.id, to: read.from, ctx: read.ctx, index: read.index });
  }

  // ------------------------------------------------------------------ ready bookkeeping

  private hardState(): HardState {
    return { term: this.currentTerm, vote: this.vote, commit: this.committed };
  }

  private hardStateChanged(): boolean {
    const p = this.persistedHard;
    return p.term !== this.currentTerm || p.vote !== this.vote || p.commit !== this.committed;
  }

  private softState(): SoftState {
    return { role: this.role, leader: this.leader, term: this.currentTerm };
  }

  private softStateChanged(): boolean {
    const s = this.lastSoft;
    return s.role !== this.role || s.leader !== this.leader || s.term !== this.currentTerm;
  }
}
