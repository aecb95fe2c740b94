// The pure raft core: import from here, not from the files behind it.
export { createNode } from './node.js';
export type { RaftNode } from './node.js';
export { EMPTY_MEMBERSHIP } from './log.js';
export type * from './types.js';
export { foundingStorage, JOINING_STORAGE } from './bootstrap.js';
