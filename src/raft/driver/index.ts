// The raft node host: import from here.
export { DEFAULT_TUNING, RaftDriver } from './driver.js';
export type { Applied, Bootstrap, DriverOptions, DriverStatus, StateMachine, Transport, Tuning } from './driver.js';
export type { AddressBook } from './envelope.js';
export { RaftError } from './errors.js';
export type { LeaderHint, RaftErrorCode } from './errors.js';
export { forceNewClusterStorage } from './force.js';
export { jsonArrayInSlices } from './slices.js';
export { newDataKey, WalCipher, WalKeyError } from '../wal/cipher.js';
export type { DataKey } from '../wal/cipher.js';
