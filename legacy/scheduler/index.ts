// Classic Swarm's scheduler: filters, strategies and create-time
// normalisation, as pure functions over plain data.

export type {
  ContainerSpec,
  CreateBody,
  Filter,
  FilterConditions,
  FilterOutcome,
  HostConfig,
  PortBinding,
  PortProtocol,
  PublishedPort,
  SchedContainer,
  SchedImage,
  SchedNode,
  Strategy,
  StrategyContext,
  StrategyOutcome,
} from './types.js';
export { createScheduler, NO_NODES_MESSAGE } from './scheduler.js';
export type { ScheduleResult, Scheduler, SchedulerOptions } from './scheduler.js';
export {
  DEFAULT_STRATEGY,
  filterNames,
  registerFilter,
  registerStrategy,
  strategyNames,
} from './registry.js';
export {
  affinitiesOf,
  constraintsOf,
  HINT_LABELS,
  hasNodeConstraint,
  normaliseCreate,
  requestedResources,
  reschedulePolicies,
  RESCHEDULE_POLICIES,
  SWARM_ID_LABEL,
  swarmIdOf,
  validateCreate,
  whitelistsOf,
  withHint,
} from './config.js';
export type { HintKind } from './config.js';
export { parseExpression, parseExpressions } from './expression.js';
export type { Expression, Operator } from './expression.js';
export { findContainer } from './node.js';
export { DEFAULT_OVERCOMMIT, NO_RESOURCES_MESSAGE, withOvercommit } from './strategies/weigh.js';
