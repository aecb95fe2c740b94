// random: a uniformly shuffled order. Like classic it does not look at CPU or
// memory at all ("chooses nodes at random regardless of their available CPU
// or RAM"); it is meant for debugging.

import type { Strategy } from '../types.js';

export const randomStrategy: Strategy = {
  rank(_spec, nodes, context) {
    const order = [...nodes];
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.min(i, Math.floor(context.rand() * (i + 1)));
      const picked = order[j];
      const last = order[i];
      if (picked === undefined || last === undefined) continue;
      order[i] = picked;
      order[j] = last;
    }
    return { ok: true, nodes: order };
  },
};
