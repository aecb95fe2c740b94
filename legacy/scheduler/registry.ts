// Filters and strategies by name, chosen at run time from `--filter` and
// `--strategy`. The built-in ones are registered here, in classic's order:
// a manager started without --filter runs them all in this order, and the
// order decides which conditions a failure message lists.

import { affinityFilter } from './filters/affinity.js';
import { constraintFilter } from './filters/constraint.js';
import { dependencyFilter } from './filters/dependency.js';
import { healthFilter } from './filters/health.js';
import { portFilter } from './filters/port.js';
import { containerSlotsFilter } from './filters/slots.js';
import { whitelistFilter } from './filters/whitelist.js';
import { binpackStrategy } from './strategies/binpack.js';
import { randomStrategy } from './strategies/random.js';
import { spreadStrategy } from './strategies/spread.js';
import type { Filter, Strategy } from './types.js';

const filters = new Map<string, Filter>();
const strategies = new Map<string, Strategy>();

/** Registered filter names, in registration order (kept current by registerFilter). */
export const filterNames: string[] = [];
/** Registered strategy names, in registration order (kept current by registerStrategy). */
export const strategyNames: string[] = [];

export const DEFAULT_STRATEGY = 'spread';

// Classic accepted the old name `binpacking` for `binpack`.
const STRATEGY_ALIASES: Readonly<Record<string, string>> = { binpacking: 'binpack' };

export function registerFilter(name: string, filter: Filter): void {
  if (filters.has(name)) throw new Error(`scheduler filter "${name}" is already registered`);
  filters.set(name, filter);
  filterNames.push(name);
}

export function registerStrategy(name: string, strategy: Strategy): void {
  if (strategies.has(name)) throw new Error(`scheduler strategy "${name}" is already registered`);
  strategies.set(name, strategy);
  strategyNames.push(name);
}

export function lookupFilter(name: string): Filter {
  const filter = filters.get(name);
  if (filter === undefined) {
    throw new Error(`unknown scheduler filter "${name}" (valid filters: ${filterNames.join(', ')})`);
  }
  return filter;
}

/** The strategy and the name it is registered under (aliases resolved). */
export function lookupStrategy(name: string): { name: string; strategy: Strategy } {
  const canonical = STRATEGY_ALIASES[name] ?? name;
  const strategy = strategies.get(canonical);
  if (strategy === undefined) {
    throw new Error(`unknown scheduler strategy "${name}" (valid strategies: ${strategyNames.join(', ')})`);
  }
  return { name: canonical, strategy };
}

registerFilter('health', healthFilter);
registerFilter('port', portFilter);
registerFilter('containerslots', containerSlotsFilter);
registerFilter('dependency', dependencyFilter);
registerFilter('affinity', affinityFilter);
registerFilter('constraint', constraintFilter);
registerFilter('whitelist', whitelistFilter);

registerStrategy('spread', spreadStrategy);
registerStrategy('binpack', binpackStrategy);
registerStrategy('random', randomStrategy);
