// The plain data the raft core consumes and produces. Everything here is serialisable
// by a driver (WAL, transport) without knowing how the core works.

export type NodeId = string;

/** Who votes and who only listens. Kept sorted so that equal memberships compare equal. */
export interface Membership {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** One single-server change (Ongaro thesis §4.1): at most one is uncommitted at a time. */
export type ConfChange =
  | { readonly type: 'addVoter'; readonly node: NodeId }
  | { readonly type: 'addLearner'; readonly node: NodeId }
  | { readonly type: 'promote'; readonly node: NodeId }
  | { readonly type: 'remove'; readonly node: NodeId };

interface EntryPosition {
  readonly index: number;
  readonly term: number;
}

/** Appended by every new leader so that it can commit something of its own term. */
export interface NoopEntry extends EntryPosition {
  readonly kind: 'noop';
}

export interface CommandEntry extends EntryPosition {
  readonly kind: 'command';
  readonly data: Uint8Array;
}

/**
 * Carries the whole resulting membership, not only the change, so that a node can tell
 * its configuration from the last such entry in its log without replaying history.
 */
export interface ConfigEntry extends EntryPosition {
  readonly kind: 'config';
  readonly change: ConfChange;
  readonly membership: Membership;
}

export type Entry = NoopEntry | CommandEntry | ConfigEntry;

/** What must be durable before any message that depends on it leaves the node. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId | null;
  readonly commit: number;
}

export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly membership: Membership;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

/** What a node recovered from its disk: the input to createNode. */
export interface StorageState {
  readonly hardState: HardState;
  /** Null only for a node that has never been part of a cluster (it waits to be contacted). */
  readonly snapshot: Snapshot | null;
  /** Entries after the snapshot, contiguous. */
  readonly entries: readonly Entry[];
}

// ---------------------------------------------------------------------------------------
// Messages. Every message names its sender and receiver; most carry the sender's term.
// Forwarded proposals and reads carry none: they are requests to whoever leads, and a
// term would only make a follower's request look like a campaign.

interface Addressed {
  readonly from: NodeId;
  readonly to: NodeId;
}

export interface PreVoteRequest extends Addressed {
  readonly type: 'preVote';
  /** The term the sender would campaign in (its term + 1); the sender's term is unchanged. */
  readonly term: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
}

export interface PreVoteResponse extends Addressed {
  readonly type: 'preVoteResp';
  readonly term: number;
  readonly granted: boolean;
}

export interface VoteRequest extends Addressed {
  readonly type: 'vote';
  readonly term: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
  /** Set when the leader asked for this election (TimeoutNow): voters skip the lease check. */
  readonly transfer: boolean;
}

export interface VoteResponse extends Addressed {
  readonly type: 'voteResp';
  readonly term: number;
  readonly granted: boolean;
}

export interface AppendRequest extends Addressed {
  readonly type: 'append';
  readonly term: number;
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

export interface AppendAck extends Addressed {
  readonly type: 'appendAck';
  readonly term: number;
  /** The follower's log matches the leader's up to here. */
  readonly matchIndex: number;
}

/**
 * The follower's log does not contain (rejectedIndex, its term). The hint lets the leader
 * skip a whole conflicting term at once instead of backing off one entry per round trip:
 * hintTerm is the follower's term at rejectedIndex (0 when its log is shorter) and
 * hintIndex the first index the follower holds with that term (or its lastIndex + 1).
 */
export interface AppendReject extends Addressed {
  readonly type: 'appendReject';
  readonly term: number;
  readonly rejectedIndex: number;
  readonly hintIndex: number;
  readonly hintTerm: number;
}

export interface Heartbeat extends Addressed {
  readonly type: 'heartbeat';
  readonly term: number;
  /** Never beyond what this follower is known to hold, so it can commit without checking. */
  readonly commit: number;
  /** The newest ReadIndex round this heartbeat confirms leadership for. */
  readonly readSeq: number;
}

export interface HeartbeatResponse extends Addressed {
  readonly type: 'heartbeatResp';
  readonly term: number;
  readonly readSeq: number;
}

export interface InstallSnapshot extends Addressed {
  readonly type: 'installSnapshot';
  readonly term: number;
  readonly snapshot: Snapshot;
}

export interface TimeoutNow extends Addressed {
  readonly type: 'timeoutNow';
  readonly term: number;
}

export interface ForwardedProposal extends Addressed {
  readonly type: 'propose';
  readonly commands: readonly Uint8Array[];
}

export interface ForwardedRead extends Addressed {
  readonly type: 'readIndex';
  readonly ctx: string;
}

export interface ReadIndexResponse extends Addressed {
  readonly type: 'readIndexResp';
  readonly ctx: string;
  readonly index: number;
}

export type Message =
  | PreVoteRequest
  | PreVoteResponse
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendAck
  | AppendReject
  | Heartbeat
  | HeartbeatResponse
  | InstallSnapshot
  | TimeoutNow
  | ForwardedProposal
  | ForwardedRead
  | ReadIndexResponse;

export type TermMessage = Exclude<Message, ForwardedProposal | ForwardedRead | ReadIndexResponse>;

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** A read that is linearizable once the local state machine has applied `index`. */
export interface ReadState {
  readonly ctx: string;
  readonly index: number;
}

export interface SoftState {
  readonly role: Role;
  readonly leader: NodeId | null;
  readonly term: number;
}

/**
 * One batch of work for the driver, in this order: persist snapshot, entries (replacing
 * any stored entries from entries[0].index on) and hardState, and fsync; then send
 * messages; then restore the snapshot into the state machine and apply committedEntries;
 * then call advance(ready). Sending before the fsync would let a node acknowledge or vote
 * for something it could forget in a crash.
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  readonly snapshot: Snapshot | null;
  readonly entries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
}

export interface RaftConfig {
  readonly id: NodeId;
  /** Followers wait a random number of ticks in [electionTicks, 2*electionTicks) before campaigning. */
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Batching: at most this many entries in one AppendEntries. */
  readonly maxEntriesPerAppend: number;
  /** Pipelining: at most this many unacknowledged AppendEntries per follower. */
  readonly maxInflightAppends: number;
  /** Seeded randomness in [0, 1): the core never consults Math.random, so runs replay exactly. */
  readonly rand: () => number;
}

export type Rejection =
  | 'notLeader'
  | 'noLeader'
  | 'transferring'
  | 'configPending'
  | 'leaderNotReady'
  | 'notCaughtUp'
  | 'invalidChange';

export type ProposeResult = { readonly ok: true; readonly index: number | null } | { readonly ok: false; readonly reason: Rejection };

export interface PeerProgress {
  readonly match: number;
  readonly next: number;
  readonly state: 'probe' | 'replicate' | 'snapshot';
}

export interface Status {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly vote: NodeId | null;
  readonly leader: NodeId | null;
  readonly commit: number;
  readonly applied: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  readonly membership: Membership;
  readonly progress: ReadonlyMap<NodeId, PeerProgress>;
  readonly transferee: NodeId | null;
}
