// affinity: place a container relative to what a node already holds.
// - container==X   a container on the node whose first name, ID or short ID matches
// - image==X       an image on the node: ID, short ID, repo:tag or repo
// - <label>==X     a container on the node whose label matches
// Stopped containers count: affinity looks at every container on the node.
// `!=` holds on nodes where nothing matches.

import { affinitiesOf } from '../config.js';
import { expressionFilter } from './expressions.js';
import { shortId } from '../node.js';
import type { Filter, SchedNode } from '../types.js';

export const affinityFilter: Filter = expressionFilter({ kind: 'affinity', read: affinitiesOf, subjectsOf, showSoft: true });

function subjectsOf(node: SchedNode, key: string): string[] {
  switch (key) {
    case 'container':
      // The short ID is what `docker ps` shows, and what the classic docs
      // use in their `affinity:container==<id>` example.
      return node.containers.flatMap((c) => {
        const [name] = c.names;
        return name === undefined ? [] : [c.id, shortId(c.id), name];
      });
    case 'image':
      return node.images.flatMap((image) => [
        image.id,
        shortId(image.id),
        ...image.repoTags,
        ...image.repoTags.map(repositoryOf),
      ]);
    default:
      return node.containers.map((c) => c.labels[key] ?? '');
  }
}

/** "redis:3" -> "redis", "localhost:5000/x:1" -> "localhost:5000/x", "x@sha256:.." -> "x". */
export function repositoryOf(reference: string): string {
  const at = reference.indexOf('@');
  if (at >= 0) return reference.slice(0, at);
  const colon = reference.lastIndexOf(':');
  if (colon < 0 || reference.slice(colon + 1).includes('/')) return reference;
  return reference.slice(0, colon);
}
