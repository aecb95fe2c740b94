// The node host: runs one raft core against a real disk, a real clock and a transport.
//
// The Ready loop, one Ready at a time (the core's contract, core/types.ts):
//   1. leader appends and heartbeats go out at once (see sendsBeforeFsync);
//   2. snapshot, entries and hard state are appended to the WAL and fsynced;
//   3. every other message goes out (votes and acks only after what they promise is durable);
//   4. a received snapshot is restored, committed entries are applied, reads are served;
//   5. advance, then maybe take a snapshot and rewrite the WAL without compacted entries.
// Group commit falls out of this shape: while one fsync is in flight, every proposal that
// arrives is appended to the core's log in memory, and the next Ready writes them all
// with one fsync.

import { randomBytes } from 'node:crypto';
import { createNode, foundingStorage, JOINING_STORAGE } from '../core/index.js';
import type { ConfChange, Entry, HardState, Message, NodeId, RaftNode, Ready, Rejection, Snapshot, SoftState, Status, StorageState } from '../core/index.js';
import type { WalCipher } from '../wal/cipher.js';
import { recordsOf, Wal } from '../wal/wal.js';
import { decodeCommand, decodeSnapshot, encodeAddresses, encodeCommand, encodeSnapshot } from './envelope.js';
import type { AddressBook } from './envelope.js';
import { RaftError } from './errors.js';
import type { LeaderHint } from './errors.js';
import { forceNewClusterStorage } from './force.js';

/** The replicated state: deterministic, fed committed commands in log order. */
export interface StateMachine<R> {
  apply(index: number, command: Uint8Array): R;
  /** The whole state, as of the last applied index. */
  snapshot(): Uint8Array;
  /**
   * Optional, preferred: takes the state as of the last applied index now (cheaply, e.g.
   * references to immutable values) and serialises it later, in slices between turns of
   * the event loop, while apply() goes on. Without it, taking a snapshot stalls the loop
   * for the whole serialisation — and ticks and heartbeats wait behind it.
   */
  snapshotLater?(): Promise<Uint8Array>;
  /** Replaces the whole state (a snapshot from disk or from the leader). */
  restore(state: Uint8Array): void;
}

/** Moves the core's messages between nodes; src/raft/transport implements it over gRPC. */
export interface Transport {
  /** Starts delivering incoming messages to `deliver`. */
  start(deliver: (message: Message) => void): Promise<void>;
  /** Best effort: raft tolerates loss, so this never waits and never throws for a dead peer. */
  send(messages: readonly Message[]): void;
  setAddresses(addresses: AddressBook): void;
  stop(): Promise<void>;
}

export interface Tuning {
  /** Wall-clock length of one core tick. */
  readonly tickMs: number;
  /** Followers campaign after a random [electionTicks, 2*electionTicks) ticks without a leader. */
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly maxEntriesPerAppend: number;
  readonly maxInflightAppends: number;
  /** Take a snapshot after this many entries have been applied since the last one. */
  readonly snapshotInterval: number;
  /**
   * Entries kept in the log behind a snapshot, so that a follower that is only a little
   * behind (a restart, a short partition) catches up with entries, not a whole snapshot.
   */
  readonly keepEntries: number;
  /** Deadline for propose/read/membership calls. */
  readonly requestTimeoutMs: number;
}

/** Chosen from measurement: see src/raft/README.md, "Tunables". */
export const DEFAULT_TUNING: Tuning = {
  tickMs: 50,
  electionTicks: 10,
  heartbeatTicks: 1,
  maxEntriesPerAppend: 512,
  maxInflightAppends: 64,
  snapshotInterval: 50_000,
  keepEntries: 5_000,
  requestTimeoutMs: 5_000,
};

export type Bootstrap =
  /** A founding member of a new cluster: every founder must be given the same voters. */
  | { readonly kind: 'found'; readonly voters: readonly NodeId[] }
  /** Waits to be added by the cluster's leader (addMember there). */
  | { readonly kind: 'join' };

export interface DriverOptions<R> {
  readonly id: NodeId;
  /** Holds the WAL (and the snapshot inside it). */
  readonly dir: string;
  readonly stateMachine: StateMachine<R>;
  readonly transport: Transport;
  /** Addresses known at start (this node's own included); the replicated book adds to them. */
  readonly addresses: AddressBook;
  /** Used only when `dir` holds no log yet; a restarted node recovers from its disk. */
  readonly bootstrap: Bootstrap;
  /** Rewrite the membership to this node alone, from its own log (quorum lost for good). */
  readonly forceNewCluster?: boolean;
  readonly tuning?: Partial<Tuning>;
  /** Election jitter; injectable so that tests can replay. */
  readonly rand?: () => number;
  /** Seals the WAL and the snapshots in it (data at rest); a sealed log opens only with it. */
  readonly cipher?: WalCipher | null;
  /** The disk or the state machine failed: the node has stopped itself. */
  readonly onFatal?: (error: Error) => void;
}

export interface Applied<R> {
  readonly index: number;
  readonly result: R;
}

export interface DriverStatus extends Status {
  readonly leaderAddress: string | null;
  /** Applied to the local state machine (the core's own figure can run ahead after a snapshot arrives). */
  readonly appliedLocally: number;
  readonly walTruncatedBytes: number;
  readonly fsyncs: number;
}

interface Waiter<T> {
  readonly resolve: (value: T) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** An entry this node appended itself, so it knows the slot: another entry there means dropped. */
interface SlotWaiter {
  readonly term: number;
  /** true: our entry was applied there; an Error: it was not, or its fate cannot be known. */
  readonly settle: (outcome: true | Error) => void;
}

/** At most one commit-only hard state write per this many ms (see handle). */
const COMMIT_WRITE_MS = 100;

function isDurableTerm(m: Message, durableTerm: number): boolean {
  return (m.type === 'append' || m.type === 'heartbeat') && m.term <= durableTerm;
}

/**
 * A leader's AppendEntries and heartbeats can leave before its own fsync (thesis §10.2.1):
 * the leader counts itself toward a commit only for entries it has made durable (the core
 * uses its stable index), so this overlaps the leader's disk write with the followers'
 * instead of adding them up. Only for terms already durable here: the vote that made this
 * node leader of that term was fsynced before it campaigned.
 */
function splitMessages(messages: readonly Message[], durableTerm: number): { early: Message[]; late: Message[] } {
  const early: Message[] = [];
  const late: Message[] = [];
  for (const m of messages) (isDurableTerm(m, durableTerm) ? early : late).push(m);
  return { early, late };
}

export class RaftDriver<R> {
  private readonly core: RaftNode;
  private readonly sm: StateMachine<R>;
  private readonly transport: Transport;
  private readonly tuning: Tuning;
  private addresses: Map<NodeId, string>;
  private applied: number;
  private snapshotIndex: number;
  /** A snapshot taken but not yet folded into the log: that waits until keepEntries more are applied. */
  private pendingSnapshot: { readonly index: number; readonly data: Uint8Array } | null = null;
  /** A snapshotLater() is serialising. */
  private capturing = false;
  private persistedHard: HardState;
  private lastCommitWrite = -Infinity;
  /** The newest hard state was not written (throttled); a clean stop writes it. */
  private commitUnwritten = false;
  private durableTerm: number;
  private soft: SoftState = { role: 'follower', leader: null, term: 0 };
  private stopped = false;
  private closed = false;
  private wakeUp: (() => void) | null = null;
  private workPending = false;
  private loopDone: Promise<void> = Promise.resolve();
  private ticker: NodeJS.Timeout | null = null;
  private fsyncs = 0;

  private readonly proposalPrefix = randomBytes(8);
  private proposalSeq = 0n;
  private readonly byProposal = new Map<string, Waiter<Applied<R>>>();
  private readonly bySlot = new Map<number, SlotWaiter>();
  private readonly reads = new Map<string, Waiter<number>>();
  private readsAwaitingApply: { readonly index: number; readonly waiter: Waiter<number>; readonly ctx: string }[] = [];
  private readSeq = 0;

  private constructor(
    private readonly opts: DriverOptions<R>,
    private readonly wal: Wal,
    storage: StorageState,
    private readonly walTruncatedBytes: number,
  ) {
    this.sm = opts.stateMachine;
    this.transport = opts.transport;
    this.tuning = { ...DEFAULT_TUNING, ...opts.tuning };
    this.addresses = new Map(opts.addresses);
    const snap = storage.snapshot;
    if (snap !== null) {
      const decoded = decodeSnapshot(snap.data);
      this.sm.restore(decoded.state);
      for (const [id, a] of decoded.addresses) this.addresses.set(id, a);
    }
    this.learnAddresses(storage.entries);
    this.applied = snap?.meta.index ?? 0;
    this.snapshotIndex = this.applied;
    this.persistedHard = storage.hardState;
    this.durableTerm = storage.hardState.term;
    const rand = opts.rand ?? Math.random;
    this.core = createNode(
      {
        id: opts.id,
        electionTicks: this.tuning.electionTicks,
        heartbeatTicks: this.tuning.heartbeatTicks,
        maxEntriesPerAppend: this.tuning.maxEntriesPerAppend,
        maxInflightAppends: this.tuning.maxInflightAppends,
        rand,
      },
      storage,
    );
  }

  /** Opens (or founds) the node's disk state, recovers, and starts the loop, timers and transport. */
  static async start<R>(opts: DriverOptions<R>): Promise<RaftDriver<R>> {
    const opened = await Wal.open(opts.dir, { cipher: opts.cipher ?? null });
    let storage = opened.storage;
    const fresh = storage.snapshot === null && storage.entries.length === 0 && storage.hardState.term === 0;
    if (fresh) {
      switch (opts.bootstrap.kind) {
        case 'found': {
          const voters = opts.bootstrap.voters;
          if (!voters.includes(opts.id)) throw new Error(`raft driver: founding member ${opts.id} is not among the voters ${voters.join(', ')}`);
          const boot = foundingStorage(voters);
          const book = new Map([...opts.addresses].filter(([id]) => voters.includes(id)));
          const snapshot = boot.snapshot === null ? null : { meta: boot.snapshot.meta, data: encodeSnapshot(book, opts.stateMachine.snapshot()) };
          storage = { ...boot, snapshot };
          await opened.wal.rewrite(storage);
          break;
        }
        case 'join':
          storage = JOINING_STORAGE;
          break;
        default: {
          const never: never = opts.bootstrap;
          return never;
        }
      }
    }
    if (opts.forceNewCluster === true) {
      storage = forceNewClusterStorage(opts.id, storage);
      await opened.wal.rewrite(storage);
    }
    const driver = new RaftDriver(opts, opened.wal, storage, opened.truncatedBytes);
    try {
      await driver.begin();
    } catch (err) {
      // E.g. the transport's address is taken: leave nothing open behind the error.
      await driver.stop();
      throw err;
    }
    return driver;
  }

  private async begin(): Promise<void> {
    this.transport.setAddresses(this.addresses);
    await this.transport.start((m) => this.receive(m));
    this.loopDone = this.run().catch((err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))));
    this.ticker = setInterval(() => {
      this.core.tick();
      this.wake();
    }, this.tuning.tickMs);
  }

  get id(): NodeId {
    return this.opts.id;
  }

  // ------------------------------------------------------------------ public API

  /** Delivers a message from a peer (the transport calls this). */
  receive(message: Message): void {
    if (this.stopped) return;
    this.core.step(message);
    this.wake();
  }

  /** Resolves once the command is applied here, with its index and the state machine's result. */
  propose(command: Uint8Array): Promise<Applied<R>> {
    if (this.stopped) return Promise.reject(new RaftError('stopped'));
    const id = Buffer.alloc(16);
    this.proposalPrefix.copy(id, 0);
    id.writeBigUInt64BE(++this.proposalSeq, 8);
    const key = id.toString('hex');
    const res = this.core.propose(encodeCommand(id, command));
    if (!res.ok) return Promise.reject(this.rejection(res.reason));
    const term = this.core.status().term;
    const index = res.index;
    this.wake();
    return new Promise<Applied<R>>((resolve, reject) => {
      const waiter = this.waiter(resolve, reject, () => {
        this.byProposal.delete(key);
        if (index !== null) this.bySlot.delete(index);
      });
      this.byProposal.set(key, waiter);
      if (index !== null) {
        this.bySlot.set(index, {
          term,
          settle: (outcome) => {
            if (outcome === true) return; // resolved by the proposal id, with the result
            this.byProposal.delete(key);
            clearTimeout(waiter.timer);
            waiter.reject(outcome);
          },
        });
      }
    });
  }

  /**
   * Linearizable read barrier (ReadIndex, thesis §6.4): resolves once this node has applied
   * everything committed when the read was issued, with that applied index. Read the state
   * machine right after: it reflects every write acknowledged before the call.
   */
  readBarrier(): Promise<number> {
    if (this.stopped) return Promise.reject(new RaftError('stopped'));
    const ctx = `${this.opts.id}:${this.proposalPrefix.toString('hex')}:${++this.readSeq}`;
    const res = this.core.readIndex(ctx);
    if (!res.ok) return Promise.reject(this.rejection(res.reason));
    this.wake();
    return new Promise<number>((resolve, reject) => {
      this.reads.set(
        ctx,
        this.waiter(resolve, reject, () => {
          this.reads.delete(ctx);
          this.readsAwaitingApply = this.readsAwaitingApply.filter((r) => r.ctx !== ctx);
        }),
      );
    });
  }

  /**
   * Adds a member: first its address goes into the replicated address book (so every node,
   * the newcomer included, can reach it), then the membership change. Learners receive the
   * log without voting; promote() them once they have caught up.
   */
  async addMember(id: NodeId, address: string, as: 'learner' | 'voter'): Promise<number> {
    const book = new Map(this.addresses);
    book.set(id, address);
    await this.appendOwn(() => this.core.propose(encodeAddresses(book)));
    return this.changeMembership({ type: as === 'learner' ? 'addLearner' : 'addVoter', node: id });
  }

  promote(id: NodeId): Promise<number> {
    return this.changeMembership({ type: 'promote', node: id });
  }

  removeMember(id: NodeId): Promise<number> {
    return this.changeMembership({ type: 'remove', node: id });
  }

  transferLeadership(to: NodeId): void {
    const res = this.core.transferLeadership(to);
    if (!res.ok) throw this.rejection(res.reason);
    this.wake();
  }

  status(): DriverStatus {
    const st = this.core.status();
    return {
      ...st,
      leaderAddress: st.leader === null ? null : (this.addresses.get(st.leader) ?? null),
      appliedLocally: this.applied,
      walTruncatedBytes: this.walTruncatedBytes,
      fsyncs: this.fsyncs,
    };
  }

  addressBook(): AddressBook {
    return this.addresses;
  }

  /** Stops timers, the loop and the transport; pending calls fail with 'stopped'. Nothing is flushed: every Ready was already durable before it had effects. */
  async stop(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopped = true;
    if (this.ticker !== null) clearInterval(this.ticker);
    this.wake();
    await this.loopDone;
    this.rejectAll(new RaftError('stopped'));
    await this.transport.stop();
    if (this.commitUnwritten) await this.wal.append([{ kind: 'hardState', hardState: this.persistedHard }]).catch(() => undefined);
    await this.wal.close();
  }

  // ------------------------------------------------------------------ internals

  private changeMembership(change: ConfChange): Promise<number> {
    return this.appendOwn(() => this.core.proposeConfChange(change));
  }

  /** Appends through `append` (leader only) and waits for that slot to be applied with our entry. */
  private appendOwn(append: () => ReturnType<RaftNode['propose']>): Promise<number> {
    if (this.stopped) return Promise.reject(new RaftError('stopped'));
    if (this.core.status().role !== 'leader') return Promise.reject(this.rejection('notLeader'));
    const res = append();
    if (!res.ok) return Promise.reject(this.rejection(res.reason));
    const index = res.index;
    if (index === null) return Promise.reject(this.rejection('notLeader'));
    const term = this.core.status().term;
    this.wake();
    return new Promise<number>((resolve, reject) => {
      const waiter = this.waiter(resolve, reject, () => this.bySlot.delete(index));
      this.bySlot.set(index, {
        term,
        settle: (outcome) => {
          clearTimeout(waiter.timer);
          if (outcome === true) waiter.resolve(index);
          else waiter.reject(outcome);
        },
      });
    });
  }

  private waiter<T>(resolve: (v: T) => void, reject: (e: Error) => void, forget: () => void): Waiter<T> {
    const timer = setTimeout(() => {
      forget();
      reject(new RaftError('timeout', this.leaderHint()));
    }, this.tuning.requestTimeoutMs);
    return { resolve, reject, timer };
  }

  private leaderHint(): LeaderHint | null {
    const leader = this.core.status().leader;
    if (leader === null || leader === this.opts.id) return null;
    return { id: leader, address: this.addresses.get(leader) ?? null };
  }

  private rejection(reason: Rejection): RaftError {
    // Without a known leader, "not leader" gives the caller nothing to act on but a retry.
    if (reason === 'notLeader' && this.core.status().leader === null) return new RaftError('noLeader');
    return new RaftError(reason, this.leaderHint());
  }

  private wake(): void {
    this.workPending = true;
    const w = this.wakeUp;
    if (w !== null) {
      this.wakeUp = null;
      w();
    }
  }

  private async run(): Promise<void> {
    let withoutIo = 0;
    while (!this.stopped) {
      this.workPending = false;
      const rd = this.core.ready();
      if (rd === null) {
        if (!this.workPending) await new Promise<void>((resolve) => (this.wakeUp = resolve));
        continue;
      }
      const didIo = await this.handle(rd);
      // Readies that need no disk write complete synchronously; let sockets and timers in.
      withoutIo = didIo ? 0 : withoutIo + 1;
      if (withoutIo >= 64) {
        withoutIo = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }

  private async handle(rd: Ready): Promise<boolean> {
    const { early, late } = splitMessages(rd.messages, this.durableTerm);
    if (early.length > 0) this.transport.send(early);
    const records = recordsOf(rd);
    const sync = this.needsSync(rd);
    if (sync) {
      await this.wal.append(records);
      await this.wal.sync();
      this.fsyncs++;
      if (this.stopped) return true; // a crash here would have lost nothing acknowledged
    }
    if (rd.hardState !== null) {
      this.persistedHard = rd.hardState;
      this.durableTerm = rd.hardState.term;
    }
    this.learnAddresses(rd.entries);
    if (late.length > 0) this.transport.send(late);
    if (rd.snapshot !== null) this.restoreSnapshot(rd.snapshot.meta.index, rd.snapshot.data);
    for (const e of rd.committedEntries) this.apply(e);
    for (const rs of rd.readStates) {
      const w = this.reads.get(rs.ctx);
      if (w === undefined) continue;
      this.reads.delete(rs.ctx);
      this.readsAwaitingApply.push({ index: rs.index, waiter: w, ctx: rs.ctx });
    }
    this.serveReads();
    if (rd.softState !== null) this.soft = rd.softState;
    // Not needing an fsync, it need not precede anything either: written last, it stays off
    // the path from commit to the client's answer. And not every time: a commit index on
    // disk that lags only makes a restarted node relearn the last few commits from the
    // leader (see needsSync), so under load one write per COMMIT_WRITE_MS serves, not one
    // per Ready — a WAL write fewer per proposal on every member.
    if (!sync && records.length > 0) {
      const now = performance.now();
      if (now - this.lastCommitWrite >= COMMIT_WRITE_MS) {
        this.lastCommitWrite = now;
        this.commitUnwritten = false;
        await this.wal.append(records);
      } else {
        this.commitUnwritten = true;
      }
    } else if (sync && rd.hardState !== null) {
      this.commitUnwritten = false;
    }
    this.core.advance(rd);
    // A snapshot from the leader was appended to the WAL after everything it replaces:
    // fold it in now, or every install would grow the file by a whole state.
    if (rd.snapshot !== null) await this.rewriteWal(rd.snapshot);
    else await this.maybeSnapshot();
    return records.length > 0;
  }

  /**
   * A Ready whose only durable change is a higher commit index is written but not fsynced:
   * nothing sent or acknowledged depends on it (commitment is a fact about a quorum's disks,
   * not ours), and a crash that loses it only makes the node relearn the commit index from
   * the leader. This takes an fsync off every write's path on both leader and followers.
   */
  private needsSync(rd: Ready): boolean {
    if (rd.snapshot !== null || rd.entries.length > 0) return true;
    const hs = rd.hardState;
    return hs !== null && (hs.term !== this.persistedHard.term || hs.vote !== this.persistedHard.vote);
  }

  private restoreSnapshot(index: number, data: Uint8Array): void {
    if (index <= this.applied) return;
    const decoded = decodeSnapshot(data);
    this.sm.restore(decoded.state);
    for (const [id, a] of decoded.addresses) this.addresses.set(id, a);
    this.transport.setAddresses(this.addresses);
    this.applied = index;
    this.snapshotIndex = index;
    this.pendingSnapshot = null;
    // Slots the snapshot skipped over: their outcome cannot be known from here.
    for (const [slot, w] of this.bySlot) {
      if (slot > index) continue;
      this.bySlot.delete(slot);
      w.settle(new RaftError('outcomeUnknown', this.leaderHint()));
    }
  }

  private apply(e: Entry): void {
    if (e.index <= this.applied) return;
    const slot = this.bySlot.get(e.index);
    let mine: boolean;
    switch (e.kind) {
      case 'noop':
      case 'config':
        mine = slot !== undefined && slot.term === e.term;
        break;
      case 'command': {
        const cmd = decodeCommand(e.data);
        switch (cmd.kind) {
          case 'addresses':
            for (const [id, a] of cmd.addresses) this.addresses.set(id, a);
            this.transport.setAddresses(this.addresses);
            mine = slot !== undefined && slot.term === e.term;
            break;
          case 'command': {
            const result = this.sm.apply(e.index, cmd.payload);
            const w = this.byProposal.get(cmd.proposal);
            if (w !== undefined) {
              this.byProposal.delete(cmd.proposal);
              clearTimeout(w.timer);
              w.resolve({ index: e.index, result });
            }
            mine = slot !== undefined && slot.term === e.term;
            break;
          }
          default: {
            const never: never = cmd;
            return never;
          }
        }
        break;
      }
      default: {
        const never: never = e;
        return never;
      }
    }
    this.applied = e.index;
    if (slot !== undefined) {
      this.bySlot.delete(e.index);
      slot.settle(mine ? true : new RaftError('dropped', this.leaderHint()));
    }
  }

  private serveReads(): void {
    if (this.readsAwaitingApply.length === 0) return;
    const still: typeof this.readsAwaitingApply = [];
    for (const r of this.readsAwaitingApply) {
      if (r.index > this.applied) still.push(r);
      else {
        clearTimeout(r.waiter.timer);
        r.waiter.resolve(this.applied);
      }
    }
    this.readsAwaitingApply = still;
  }

  /** Address entries are hints for reaching peers: use them as soon as they are in the log. */
  private learnAddresses(entries: readonly Entry[]): void {
    let changed = false;
    for (const e of entries) {
      if (e.kind !== 'command' || e.data[0] !== 2) continue;
      const cmd = decodeCommand(e.data);
      if (cmd.kind !== 'addresses') continue;
      for (const [id, a] of cmd.addresses) {
        if (this.addresses.get(id) !== a) {
          this.addresses.set(id, a);
          changed = true;
        }
      }
    }
    if (changed) this.transport.setAddresses(this.addresses);
  }

  /**
   * Snapshots are taken every snapshotInterval applied entries but folded into the log only
   * keepEntries later, so the log always keeps at least keepEntries entries for followers
   * that are a little behind. Folding rewrites the WAL (tmp + fsync + rename + dir fsync)
   * as snapshot + the entries after it, which bounds both disk use and restart time.
   */
  private async maybeSnapshot(): Promise<void> {
    if (this.pendingSnapshot === null && !this.capturing && this.applied - this.snapshotIndex >= this.tuning.snapshotInterval) {
      const index = this.applied;
      if (this.sm.snapshotLater === undefined) {
        this.pendingSnapshot = { index, data: encodeSnapshot(this.addresses, this.sm.snapshot()) };
      } else {
        const book = new Map(this.addresses);
        this.capturing = true;
        this.sm.snapshotLater().then(
          (state) => {
            this.capturing = false;
            // A snapshot from the leader may have overtaken this one meanwhile.
            if (this.stopped || index <= this.snapshotIndex) return;
            this.pendingSnapshot = { index, data: encodeSnapshot(book, state) };
            this.wake();
          },
          (err: unknown) => {
            this.capturing = false;
            this.fail(err instanceof Error ? err : new Error(String(err)));
          },
        );
      }
    }
    const pending = this.pendingSnapshot;
    if (pending === null || this.applied < pending.index + this.tuning.keepEntries) return;
    this.pendingSnapshot = null;
    const snapshot = this.core.compact(pending.index, pending.data);
    if (snapshot === null) return;
    await this.rewriteWal(snapshot);
  }

  /** The WAL becomes the snapshot, the entries after it and the last persisted hard state. */
  private async rewriteWal(snapshot: Snapshot): Promise<void> {
    const last = this.core.status().lastIndex;
    const entries: Entry[] = [];
    for (let i = snapshot.meta.index + 1; i <= last; i++) {
      const e = this.core.entry(i);
      if (e === undefined) break;
      entries.push(e);
    }
    await this.wal.rewrite({ hardState: this.persistedHard, snapshot, entries });
    this.snapshotIndex = snapshot.meta.index;
  }

  private rejectAll(error: Error): void {
    for (const w of this.byProposal.values()) {
      clearTimeout(w.timer);
      w.reject(error);
    }
    this.byProposal.clear();
    for (const s of this.bySlot.values()) s.settle(error);
    this.bySlot.clear();
    for (const w of this.reads.values()) {
      clearTimeout(w.timer);
      w.reject(error);
    }
    this.reads.clear();
    for (const r of this.readsAwaitingApply) {
      clearTimeout(r.waiter.timer);
      r.waiter.reject(error);
    }
    this.readsAwaitingApply = [];
  }

  private fail(error: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.ticker !== null) clearInterval(this.ticker);
    this.rejectAll(error);
    this.opts.onFatal?.(error);
  }

  /** The role and leader as of the last Ready (for callers that log transitions). */
  softState(): SoftState {
    return this.soft;
  }
}
