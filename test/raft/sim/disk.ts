// A fake disk with the failure semantics that matter to raft: records written but not yet
// fsynced may survive a crash, in part or not at all. What survives is always a prefix of
// what was written (an append-only log whose torn last record fails its checksum and is
// cut off on recovery), never a hole in the middle.

import type { StorageState } from '../../../src/raft/core/index.js';
import { replay } from '../../../src/raft/wal/records.js';
import type { WalRecord } from '../../../src/raft/wal/records.js';
import type { Prng } from './prng.js';

export type DiskRecord = WalRecord;

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
    return replay(this.records);
  }
}
