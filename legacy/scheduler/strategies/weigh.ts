// Resource fit and weight, shared by spread and binpack.
//
// Classic counted HostConfig.CpuShares as CPUs and Memory as bytes, summed
// over every container on the node (stopped and pending ones too), and let a
// node take up to its size plus swarm.overcommit (default 5%, in whole
// percent). A node fits when, for each resource the container asks for,
// used + requested stays within that. The weight is the percentage of CPU
// and of memory the node would then have in use (100 for a resource not
// asked for), plus a health term.

import { requestedResources } from '../config.js';
import { healthIndicatorOf, usedResources } from '../node.js';
import type { ContainerSpec, SchedNode, StrategyContext, StrategyOutcome } from '../types.js';

export const NO_RESOURCES_MESSAGE = 'no resources available to schedule container';

export const DEFAULT_OVERCOMMIT = 0.05;

export interface WeightedNode {
  node: SchedNode;
  weight: number;
}

/** A node's capacity once overcommit is applied, in classic's whole-percent arithmetic. */
export function withOvercommit(total: number, overcommit: number): number {
  const percent = Math.trunc(Math.round(overcommit * 1e6) / 1e4);
  return total + Math.trunc((total * percent) / 100);
}

/**
 * Weigh the nodes the container fits on. `healthFactor` scales the node's
 * 0..100 health indicator into the weight: negative for spread (which takes
 * the lowest weight), positive for binpack (which takes the highest), so a
 * healthy node wins either way.
 */
export function weighNodes(
  spec: ContainerSpec,
  nodes: readonly SchedNode[],
  context: StrategyContext,
  healthFactor: number,
): { ok: true; weighted: WeightedNode[] } | { ok: false; message: string } {
  const requested = requestedResources(spec.config);
  const weighted: WeightedNode[] = [];
  for (const node of nodes) {
    const totalCpus = withOvercommit(node.totalCpus, context.overcommit);
    const totalMemory = withOvercommit(node.totalMemory, context.overcommit);
    if (totalCpus < requested.cpus || totalMemory < requested.memory) continue;
    const used = usedResources(node);
    if (requested.cpus > 0 && used.cpus + requested.cpus > totalCpus) continue;
    if (requested.memory > 0 && used.memory + requested.memory > totalMemory) continue;
    const cpuScore = requested.cpus > 0 ? Math.trunc(((used.cpus + requested.cpus) * 100) / totalCpus) : 100;
    const memoryScore =
      requested.memory > 0 ? Math.trunc(((used.memory + requested.memory) * 100) / totalMemory) : 100;
    weighted.push({ node, weight: cpuScore + memoryScore + healthFactor * healthIndicatorOf(node) });
  }
  if (weighted.length === 0) return { ok: false, message: NO_RESOURCES_MESSAGE };
  return { ok: true, weighted };
}

/** Lightest first; equal weights put the node with fewer containers first. Stable otherwise. */
export function lightestFirst(a: WeightedNode, b: WeightedNode): number {
  return a.weight - b.weight || a.node.containers.length - b.node.containers.length;
}

export function toOutcome(weighted: WeightedNode[]): StrategyOutcome {
  return { ok: true, nodes: weighted.map((w) => w.node) };
}
