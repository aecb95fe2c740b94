// binpack: the most loaded node that still fits first; among equals, the
// one with the most containers.

import type { Strategy } from '../types.js';
import { lightestFirst, toOutcome, weighNodes } from './weigh.js';

const HEALTH_FACTOR = 10;

export const binpackStrategy: Strategy = {
  rank(spec, nodes, context) {
    const weighed = weighNodes(spec, nodes, context, HEALTH_FACTOR);
    if (!weighed.ok) return weighed;
    return toOutcome([...weighed.weighted].sort((a, b) => lightestFirst(b, a)));
  },
};
