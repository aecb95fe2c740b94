// --force-new-cluster: the last surviving manager of a cluster that lost its quorum
// restarts alone from its own log. Pure: storage in, storage out; the driver writes it.

import type { Entry, Membership, NodeId, StorageState } from '../core/index.js';

/**
 * Keeps every entry this node holds, committed or not: an entry past its commit index may
 * have been acknowledged by the dead leader, and dropping it could lose a write a client
 * saw succeed. Then appends, in a new term, one removal per other member, each carrying the
 * membership that results, so the last one leaves this node as the only voter. Its vote in
 * the new term is for itself, and with a quorum of one it wins the first election and
 * commits everything (the removals included) through its own no-op.
 *
 * The new term keeps these entries from colliding with anything the old members wrote:
 * whatever they hold at these indexes has a lower term, so if one of them ever came back
 * with its old data, log matching would still hold.
 */
export function forceNewClusterStorage(id: NodeId, storage: StorageState): StorageState {
  const last = storage.entries[storage.entries.length - 1];
  const lastIndex = last?.index ?? storage.snapshot?.meta.index ?? 0;
  const lastTerm = last?.term ?? storage.snapshot?.meta.term ?? 0;
  const term = Math.max(storage.hardState.term, lastTerm) + 1;
  let membership = currentMembership(storage);
  if (!membership.voters.includes(id) && !membership.learners.includes(id)) {
    throw new Error(`force-new-cluster: ${id} is not a member in its own log; it cannot recover this cluster`);
  }
  const entries: Entry[] = [...storage.entries];
  let index = lastIndex;
  const others = [...membership.voters, ...membership.learners].filter((n) => n !== id).sort();
  for (const node of others) {
    membership = { voters: membership.voters.filter((n) => n !== node), learners: membership.learners.filter((n) => n !== node) };
    entries.push({ kind: 'config', index: ++index, term, change: { type: 'remove', node }, membership });
  }
  if (!membership.voters.includes(id)) {
    // A learner that survived alone: it becomes the voter (promotion carries the last entry).
    membership = { voters: [id], learners: [] };
    entries.push({ kind: 'config', index: index + 1, term, change: { type: 'promote', node: id }, membership });
  }
  return { hardState: { term, vote: id, commit: storage.hardState.commit }, snapshot: storage.snapshot, entries };
}

function currentMembership(storage: StorageState): Membership {
  for (let i = storage.entries.length - 1; i >= 0; i--) {
    const e = storage.entries[i];
    if (e?.kind === 'config') return e.membership;
  }
  return storage.snapshot?.meta.membership ?? { voters: [], learners: [] };
}
