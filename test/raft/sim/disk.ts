// A fake disk with the failure semantics that matter to raft: records written but not yet
// fsynced may survive a crash, in part or not at all. What survives is always a prefix of
// what was written (an append-only log whose torn last record fails its checksum and is
// cut off on recovery), never a hole in the middle.

import type { Entry, HardState, Snapshot, StorageState } from '../../../src/raft/core/index.js';
import type { Prng } from './prng.js';

export type DiskRecord =
  | { readonly kind: 'entries'; readonly entries: readonly Entry[] }
  | { readonly kind: 'hardState'; readonly hardState: HardState }
  | { readonly kind: 'snapshot'; readonly snapshot: Snapshot };

export class FakeDisk {
  private records: DiskRecord[] = [];
  private synced = 0;
  fsyncs = 0;

  write(record: DiskRecord): void {
    this.records.push(record);
  }

  fsync(): void {
    this.synced = this.records.length;
    this.fsyncs++;
  }

  unsynced(): number {
    return this.records.length - this.synced;
  }

  /** Loses what was not fsynced, except a random prefix of it; returns how many records were lost. */
  crash(rng: Prng): number {
    const pending = this.records.length - this.synced;
    const kept = pending === 0 ? 0 : rng.int(0, pending);
    this.records.length = this.synced + kept;
    this.synced = this.records.length;
    return pending - kept;
  }

  /** Replays the records into the state a restarted node begins from. */
  recover(): StorageState {
    let snapshot: Snapshot | null = null;
    let entries: Entry[] = [];
    let hardState: HardState = { term: 0, vote: null, commit: 0 };
    for (const r of this.records) {
      switch (r.kind) {
        case 'hardState':
          hardState = r.hardState;
          break;
        case 'entries': {
          const first = r.entries[0];
          if (first === undefined) break;
          const base = snapshot?.meta.index ?? 0;
          const keep = first.index - base - 1;
          if (keep < 0 || keep > entries.length) throw new Error(`disk: entries at ${first.index} leave a gap after ${base + entries.length}`);
          entries = [...entries.slice(0, keep), ...r.entries];
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
}
