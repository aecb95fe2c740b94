// Questions asked of one node's cached state.

import { swarmIdOf } from './config.js';
import type { SchedContainer, SchedNode } from './types.js';

const SHORT_ID_LENGTH = 12;

/**
 * Find a container on the node the way classic resolved `--volumes-from`,
 * `--link` and `--net=container:` references: full or short ID, full or short
 * Swarm ID, name (with or without the leading slash or a `node/` prefix),
 * then a unique ID or Swarm ID prefix.
 */
export function findContainer(node: SchedNode, reference: string): SchedContainer | undefined {
  if (reference === '') return undefined;
  const { containers } = node;
  const byId = containers.find((c) => c.id === reference || shortId(c.id) === reference);
  if (byId !== undefined) return byId;
  const bySwarmId = containers.find((c) => {
    const swarmId = swarmIdOf(c.labels);
    return swarmId !== '' && (swarmId === reference || shortId(swarmId) === reference);
  });
  if (bySwarmId !== undefined) return bySwarmId;

  const name = withoutNodePrefix(node, reference.replace(/^\//, ''));
  const byName = containers.filter((c) => c.names.includes(name));
  if (byName.length === 1) return byName[0];
  if (byName.length > 1) return undefined;

  const byPrefix = containers.filter(
    (c) => c.id.startsWith(reference) || swarmIdOf(c.labels).startsWith(reference),
  );
  return byPrefix.length === 1 ? byPrefix[0] : undefined;
}

/** CPUs and memory reserved on the node by every container it holds, pending ones included. */
export function usedResources(node: SchedNode): { cpus: number; memory: number } {
  let cpus = 0;
  let memory = 0;
  for (const c of node.containers) {
    cpus += c.cpuShares;
    memory += c.memory;
  }
  return { cpus, memory };
}

/** Classic's 0..100 health indicator for a node. */
export function healthIndicatorOf(node: SchedNode): number {
  if (!node.healthy) return 0;
  return node.healthIndicator ?? 100;
}

export function shortId(id: string): string {
  const hex = id.startsWith('sha256:') ? id.slice('sha256:'.length) : id;
  return hex.slice(0, SHORT_ID_LENGTH);
}

function withoutNodePrefix(node: SchedNode, name: string): string {
  for (const prefix of [`${node.name}/`, `${node.id}/`]) {
    if (name.startsWith(prefix)) return name.slice(prefix.length);
  }
  return name;
}
