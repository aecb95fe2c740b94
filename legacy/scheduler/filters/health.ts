// health: only nodes the pool currently considers healthy.

import type { Filter } from '../types.js';

export const healthFilter: Filter = {
  filter(_spec, nodes) {
    const healthy = nodes.filter((n) => n.healthy);
    // Classic showed this message alone, not in the list of conditions.
    if (healthy.length === 0) return { ok: false, reason: 'No healthy node available in the cluster', standalone: true };
    return { ok: true, nodes: healthy };
  },
  conditions() {
    return { ok: true, items: [] };
  },
};
