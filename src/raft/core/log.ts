// The in-memory raft log: a snapshot base followed by contiguous entries, plus the
// bookkeeping of which suffix is not yet durable. It knows nothing of roles or messages.

import type { Entry, Membership, Snapshot, SnapshotMeta } from './types.js';

export const EMPTY_MEMBERSHIP: Membership = { voters: [], learners: [] };

export class RaftLog {
  /** The last entry folded into a snapshot; index 0 / term 0 for a log never compacted. */
  private base: SnapshotMeta;
  /** Kept so that a leader can send it to followers that fall behind the compaction point. */
  private baseData: Uint8Array;
  private entries: Entry[];
  /** Highest index known durable on this node's disk. */
  stable: number;
  /** A snapshot received from a leader that the driver has not persisted yet. */
  unstableSnapshot: Snapshot | null = null;

  constructor(snapshot: Snapshot | null, entries: readonly Entry[]) {
    this.base = snapshot?.meta ?? { index: 0, term: 0, membership: EMPTY_MEMBERSHIP };
    this.baseData = snapshot?.data ?? new Uint8Array(0);
    this.entries = entries.filter((e) => e.index > this.base.index);
    this.entries.forEach((e, i) => {
      if (e.index !== this.base.index + 1 + i) throw new Error(`raft log: stored entries not contiguous at index ${e.index}`);
    });
    this.stable = this.lastIndex();
  }

  snapshotMeta(): SnapshotMeta {
    return this.base;
  }

  snapshot(): Snapshot {
    return { meta: this.base, data: this.baseData };
  }

  firstIndex(): number {
    return this.base.index + 1;
  }

  lastIndex(): number {
    return this.base.index + this.entries.length;
  }

  lastTerm(): number {
    const last = this.entries[this.entries.length - 1];
    return last === undefined ? this.base.term : last.term;
  }

  /** The term at index, or undefined when the entry is compacted away or not yet there. */
  term(index: number): number | undefined {
    if (index === this.base.index) return this.base.term;
    return this.entry(index)?.term;
  }

  entry(index: number): Entry | undefined {
    if (index <= this.base.index) return undefined;
    return this.entries[index - this.base.index - 1];
  }

  /** Entries in [lo, hi); lo must not be compacted. */
  slice(lo: number, hi: number): Entry[] {
    if (lo <= this.base.index) throw new Error(`raft log: slice from compacted index ${lo}`);
    return this.entries.slice(lo - this.base.index - 1, Math.max(0, hi - this.base.index - 1));
  }

  /** Raft's "at least as up-to-date" comparison (§5.4.1): last term first, then length. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  append(entry: Entry): void {
    if (entry.index !== this.lastIndex() + 1) throw new Error(`raft log: append at ${entry.index}, last is ${this.lastIndex()}`);
    this.entries.push(entry);
  }

  /**
   * Keeps what already matches and replaces everything from the first conflicting entry
   * on. Returns the index of the first entry that was truncated, or null if none was.
   * Entries must directly follow an index whose term matched.
   */
  merge(incoming: readonly Entry[], committed: number): number | null {
    let truncatedAt: number | null = null;
    for (let i = 0; i < incoming.length; i++) {
      const e = incoming[i];
      if (e === undefined) break;
      const have = this.term(e.index);
      if (have === e.term) continue;
      if (have !== undefined) {
        // A committed entry can never conflict with a leader's log: reaching here means a
        // safety bug elsewhere, and continuing would apply divergent state.
        if (e.index <= committed) throw new Error(`raft log: conflict at committed index ${e.index}`);
        this.entries.length = e.index - this.base.index - 1;
        this.stable = Math.min(this.stable, e.index - 1);
        truncatedAt = e.index;
      }
      for (let j = i; j < incoming.length; j++) {
        const next = incoming[j];
        if (next !== undefined) this.append(next);
      }
      break;
    }
    return truncatedAt;
  }

  /** Replaces the whole log with a snapshot received from a leader. */
  restore(snapshot: Snapshot): void {
    this.base = snapshot.meta;
    this.baseData = snapshot.data;
    this.entries = [];
    this.unstableSnapshot = snapshot;
    this.stable = Math.min(this.stable, snapshot.meta.index);
  }

  /** Drops entries up to meta.index, which the driver has already made durable as a snapshot. */
  compact(meta: SnapshotMeta, data: Uint8Array): void {
    if (meta.index <= this.base.index) return;
    if (meta.index > this.lastIndex()) throw new Error(`raft log: compact to ${meta.index} beyond last index ${this.lastIndex()}`);
    this.entries = this.entries.slice(meta.index - this.base.index);
    this.base = meta;
    this.baseData = data;
    this.stable = Math.max(this.stable, meta.index);
  }

  unstableEntries(): Entry[] {
    return this.entries.slice(Math.max(0, this.stable - this.base.index));
  }

  /** The index of the newest config entry at or below `upTo`, or null if only the base has one. */
  lastConfigIndex(upTo: number): number | null {
    for (let i = Math.min(upTo, this.lastIndex()); i > this.base.index; i--) {
      if (this.entry(i)?.kind === 'config') return i;
    }
    return null;
  }

  membershipAt(index: number): Membership {
    const at = this.lastConfigIndex(index);
    const e = at === null ? undefined : this.entry(at);
    return e?.kind === 'config' ? e.membership : this.base.membership;
  }
}
