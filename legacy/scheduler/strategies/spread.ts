// spread: the least loaded node that fits first; among equals, the one with
// the fewest containers.

import type { Strategy } from '../types.js';
import { lightestFirst, toOutcome, weighNodes } from './weigh.js';

const HEALTH_FACTOR = -10;

export const spreadStrategy: Strategy = {
  rank(spec, nodes, context) {
    const weighed = weighNodes(spec, nodes, context, HEALTH_FACTOR);
    if (!weighed.ok) return weighed;
    return toOutcome([...weighed.weighted].sort(lightestFirst));
  },
};
