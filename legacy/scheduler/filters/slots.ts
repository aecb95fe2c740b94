// containerslots: a node labelled containerslots=N holds at most N containers.
// Like classic, every container on the node counts (exited and pending too),
// and a label that is not an integer means no limit.

import type { Filter, SchedNode } from '../types.js';

export const SLOTS_LABEL = 'containerslots';

export const containerSlotsFilter: Filter = {
  filter(_spec, nodes) {
    const open = nodes.filter(hasOpenSlot);
    if (open.length === 0) return { ok: false, reason: 'No node with enough open slots available in the cluster' };
    return { ok: true, nodes: open };
  },
  conditions() {
    // Classic always listed this line, whether or not any node had the label.
    return { ok: true, items: ['available container slots'] };
  },
};

function hasOpenSlot(node: SchedNode): boolean {
  const label = node.labels[SLOTS_LABEL];
  if (label === undefined || !/^[+-]?\d+$/.test(label)) return true;
  return node.containers.length < Number.parseInt(label, 10);
}
