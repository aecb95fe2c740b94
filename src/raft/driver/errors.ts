// Errors a caller of the driver can act on: each says what happened and, when another node
// leads, where to go instead.

import type { NodeId, Rejection } from '../core/index.js';

export type RaftErrorCode =
  | Rejection
  /** The entry's slot in the log went to another entry (a leader change overwrote it). */
  | 'dropped'
  /** A snapshot from the leader replaced the log over the entry's slot: it may or may not have been applied. */
  | 'outcomeUnknown'
  /** No outcome within the deadline: the write may still be applied later. */
  | 'timeout'
  /** The node was stopped before the outcome was known. */
  | 'stopped';

export interface LeaderHint {
  readonly id: NodeId;
  /** Null when this node has no address for it (it never learned one). */
  readonly address: string | null;
}

const TEXT: Record<RaftErrorCode, string> = {
  notLeader: 'this node is not the leader',
  noLeader: 'no leader is known (an election may be under way); retry shortly',
  transferring: 'leadership is being transferred; retry shortly',
  configPending: 'another membership change is still being committed; retry when it is done',
  leaderNotReady: 'the leader has not committed an entry of its term yet; retry shortly',
  notCaughtUp: 'the learner has not caught up with the leader yet; retry when it has',
  invalidChange: 'the membership change does not apply to the current membership',
  dropped: 'the proposal was dropped by a leader change; its outcome is: not applied',
  outcomeUnknown: 'a snapshot from the leader covered the proposal; whether it was applied is unknown',
  timeout: 'no outcome within the deadline; the proposal may still be applied',
  stopped: 'the raft node was stopped',
};

export class RaftError extends Error {
  constructor(
    readonly code: RaftErrorCode,
    readonly leader: LeaderHint | null = null,
    detail?: string,
  ) {
    const where = leader === null ? '' : ` (leader: ${leader.id}${leader.address === null ? '' : ` at ${leader.address}`})`;
    super(`raft: ${TEXT[code]}${where}${detail === undefined ? '' : `: ${detail}`}`);
    this.name = 'RaftError';
  }
}
