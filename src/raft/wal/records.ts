// What a raft node writes to its log on disk, and how a sequence of those writes folds
// back into the state the core restarts from. Shared by the real WAL and the simulator's
// fake disk, so the simulation checks the same recovery rules production uses.

import type { Entry, HardState, Snapshot, StorageState } from '../core/index.js';

export type WalRecord =
  | { readonly kind: 'entries'; readonly entries: readonly Entry[] }
  | { readonly kind: 'hardState'; readonly hardState: HardState }
  | { readonly kind: 'snapshot'; readonly snapshot: Snapshot };

/** Replays records in write order. Throws if they leave a gap in the log: that is corruption. */
export function replay(records: Iterable<WalRecord>, initial: Snapshot | null = null): StorageState {
  let snapshot = initial;
  let entries: Entry[] = [];
  let hardState: HardState = { term: 0, vote: null, commit: 0 };
  for (const r of records) {
    switch (r.kind) {
      case 'hardState':
        hardState = r.hardState;
        break;
      case 'entries': {
        const first = r.entries[0];
        if (first === undefined) break;
        const base = snapshot?.meta.index ?? 0;
        // Entries written later replace any stored from the same index on (a leader
        // overwrote our uncommitted suffix).
        const keep = first.index - base - 1;
        if (keep > entries.length) throw new Error(`raft wal: entries at ${first.index} leave a gap after ${base + entries.length}`);
        entries = keep < 0 ? r.entries.filter((e) => e.index > base) : [...entries.slice(0, keep), ...r.entries];
        break;
      }
      case 'snapshot': {
        const meta = r.snapshot.meta;
        const base = snapshot?.meta.index ?? 0;
        const at = entries[meta.index - base - 1];
        // A snapshot of our own applied state keeps the log after it; one from a leader
        // that disagrees with our log replaces the log entirely.
        entries = at !== undefined && at.term === meta.term ? entries.slice(meta.index - base) : [];
        snapshot = r.snapshot;
        break;
      }
      default: {
        const never: never = r;
        return never;
      }
    }
  }
  return { hardState, snapshot, entries };
}
