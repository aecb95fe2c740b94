// The replicated cluster store of swarm mode: import from here.
export { isKind, isTaskState, KINDS, nameOf, TASK_STATES, UNIQUE_NAMES } from './objects.js';
export type * from './objects.js';
export { DEFAULT_LIMITS, StoreState } from './state.js';
export type { Change, Commit, IndexName, Limits, Op, StoreErrorCode, StoreImage, Transaction, TxError, TxOutcome } from './state.js';
export { ClusterStore, encodeInSlices, MAX_TRANSACTION_BYTES, newId, StoreError } from './store.js';
export { formatUnlockKey, loadOrCreateDataKey, LOCKED_MESSAGE, newUnlockKey, parseUnlockKey, SwarmLockedError, writeDataKey } from './keys.js';
export type { StoreOptions, StoreReader, WatchOptions } from './store.js';
