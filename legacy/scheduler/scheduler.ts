// The scheduler's one decision: given a create request and the pool's view
// of the nodes, which nodes may take it, best first — or classic's error.

import { lookupFilter, lookupStrategy } from './registry.js';
import { DEFAULT_OVERCOMMIT } from './strategies/weigh.js';
import type { ContainerSpec, Filter, SchedNode, Strategy } from './types.js';

export interface SchedulerOptions {
  /** Filter names, applied in this order (`--filter`). */
  filters: string[];
  /** Strategy name (`--strategy`). */
  strategy: string;
  /** swarm.overcommit; default 0.05. */
  overcommit?: number;
}

export type ScheduleResult =
  | { ok: true; nodes: SchedNode[] }
  | {
      ok: false;
      /** Classic's error text, for the API response. */
      message: string;
      /** The specific reason, e.g. which constraint failed (classic only logged it). */
      detail: string;
    };

export interface Scheduler {
  /** Canonical strategy name, as `docker info` shows it. */
  readonly strategy: string;
  /** Filter names in the order they run, as `docker info` shows them. */
  readonly filters: readonly string[];
  select(spec: ContainerSpec, nodes: SchedNode[], rand?: () => number): ScheduleResult;
}

export const NO_NODES_MESSAGE = 'No nodes available in the cluster';
const UNSATISFIED_PREFIX = 'Unable to find a node that satisfies the following conditions ';

interface NamedFilter {
  name: string;
  filter: Filter;
}

/** Throws an Error naming the valid choices for an unknown filter or strategy. */
export function createScheduler(opts: SchedulerOptions): Scheduler {
  const filters: NamedFilter[] = opts.filters.map((name) => ({ name, filter: lookupFilter(name) }));
  const { name: strategyName, strategy } = lookupStrategy(opts.strategy);
  const overcommit = opts.overcommit ?? DEFAULT_OVERCOMMIT;
  if (!Number.isFinite(overcommit)) throw new Error(`invalid overcommit ratio: ${String(overcommit)}`);
  return {
    strategy: strategyName,
    filters: filters.map((f) => f.name),
    select(spec, nodes, rand = Math.random) {
      // Classic first honoured soft (`~`) rules; if that placed the container
      // nowhere, it tried again without them and reported that attempt.
      const withSoft = attempt(filters, strategy, spec, nodes, { overcommit, rand }, true);
      if (withSoft.ok) return withSoft;
      return attempt(filters, strategy, spec, nodes, { overcommit, rand }, false);
    },
  };
}

function attempt(
  filters: readonly NamedFilter[],
  strategy: Strategy,
  spec: ContainerSpec,
  nodes: readonly SchedNode[],
  context: { overcommit: number; rand: () => number },
  enforceSoft: boolean,
): ScheduleResult {
  let candidates: readonly SchedNode[] = nodes;
  for (const { name, filter } of filters) {
    const outcome = filter.filter(spec, candidates, enforceSoft);
    if (!outcome.ok) {
      if (outcome.standalone === true) return { ok: false, message: outcome.reason, detail: outcome.reason };
      return { ok: false, message: unsatisfiedMessage(filters, spec, name), detail: outcome.reason };
    }
    candidates = outcome.nodes;
  }
  if (candidates.length === 0) return { ok: false, message: NO_NODES_MESSAGE, detail: NO_NODES_MESSAGE };
  const ranked = strategy.rank(spec, candidates, context);
  if (!ranked.ok) return { ok: false, message: ranked.message, detail: ranked.message };
  return ranked;
}

// Classic's list: one line per filter up to the one that failed, each the
// filter's conditions in brackets, space-separated; filters with none are
// skipped, and a filter whose expressions do not parse ends the list.
function unsatisfiedMessage(filters: readonly NamedFilter[], spec: ContainerSpec, failed: string): string {
  let lines = '';
  for (const { name, filter } of filters) {
    const conditions = filter.conditions(spec);
    if (!conditions.ok) return `${UNSATISFIED_PREFIX}${lines}\nerror from ${name} filter: ${conditions.error}`;
    if (conditions.items.length > 0) lines += `\n[${conditions.items.join(' ')}]`;
    if (name === failed) break;
  }
  return `${UNSATISFIED_PREFIX}${lines}`;
}
