// The leader's view of one follower: how much of the log it holds and how to send it more.
//
// probe:     we do not know where its log matches ours; one AppendEntries at a time.
// replicate: it is keeping up; pipeline up to maxInflight AppendEntries without waiting.
// snapshot:  it needs a snapshot; send nothing else until it reports having applied one.

import type { NodeId, PeerProgress } from './types.js';

export class Progress implements PeerProgress {
  match = 0;
  next: number;
  state: 'probe' | 'replicate' | 'snapshot' = 'probe';
  /** In probe: an AppendEntries is outstanding, wait for its answer or the next heartbeat. */
  probeSent = false;
  /** Last index of each unacknowledged AppendEntries in replicate state, oldest first. */
  inflight: number[] = [];
  pendingSnapshot = 0;
  /** Ticks spent in snapshot state: a lost snapshot must not park the follower forever. */
  snapshotTicks = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** Match index when the previous heartbeat answer came: no progress between two means loss. */
  matchAtHeartbeat = -1;
  /** Newest ReadIndex round this follower has acknowledged. */
  readAck = 0;

  constructor(
    readonly id: NodeId,
    next: number,
    private readonly maxInflight: number,
  ) {
    this.next = next;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflight.length >= this.maxInflight;
      case 'snapshot':
        return true;
      default: {
        const never: never = this.state;
        return never;
      }
    }
  }

  becomeProbe(): void {
    // After a snapshot the follower holds at least the snapshot; start probing right after it.
    this.next = this.state === 'snapshot' ? Math.max(this.match, this.pendingSnapshot) + 1 : this.match + 1;
    this.state = 'probe';
    this.probeSent = false;
    this.inflight = [];
    this.pendingSnapshot = 0;
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.inflight = [];
    this.pendingSnapshot = 0;
  }

  becomeSnapshot(index: number): void {
    this.state = 'snapshot';
    this.pendingSnapshot = index;
    this.snapshotTicks = 0;
    this.inflight = [];
  }

  /** Returns true when this acknowledgement moved the follower forward. */
  acknowledge(matchIndex: number): boolean {
    const moved = matchIndex > this.match;
    if (moved) this.match = matchIndex;
    if (this.next < matchIndex + 1) this.next = matchIndex + 1;
    while (this.inflight.length > 0 && (this.inflight[0] ?? 0) <= matchIndex) this.inflight.shift();
    return moved;
  }

  sentEntries(lastIndex: number): void {
    switch (this.state) {
      case 'replicate':
        this.next = lastIndex + 1;
        this.inflight.push(lastIndex);
        return;
      case 'probe':
        this.probeSent = true;
        return;
      case 'snapshot':
        throw new Error('raft progress: entries sent to a follower awaiting a snapshot');
      default: {
        const never: never = this.state;
        return never;
      }
    }
  }
}
