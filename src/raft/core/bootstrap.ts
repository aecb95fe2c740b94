// The storage a brand-new cluster member starts from. Not I/O: the driver writes it out.

import type { Membership, NodeId, StorageState } from './types.js';

/**
 * Every founding member starts from the same empty snapshot at index 0 naming the initial
 * voters, so they agree on the configuration without a log entry for it. A node that joins
 * later starts with no snapshot at all and learns the membership from the leader.
 */
export function foundingStorage(voters: readonly NodeId[]): StorageState {
  const membership: Membership = { voters: [...voters].sort(), learners: [] };
  return {
    hardState: { term: 0, vote: null, commit: 0 },
    snapshot: { meta: { index: 0, term: 0, membership }, data: new Uint8Array(0) },
    entries: [],
  };
}

export const JOINING_STORAGE: StorageState = { hardState: { term: 0, vote: null, commit: 0 }, snapshot: null, entries: [] };
