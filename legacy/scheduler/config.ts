// The create-time normalisation classic Swarm applied to every container
// config, and readers for what it stored.
//
// `-e constraint:...`, `-e affinity:...`, `-e whitelist:...` and
// `-e reschedule:...` are scheduling hints, not environment: they are taken
// out of Env, merged with the com.docker.swarm.* labels of the same kind
// (JSON string arrays) and stored back in those labels, so that the engine
// keeps them and a rescheduled or inspected container still carries them.
// Every container also gets a com.docker.swarm.id label.

import type { ContainerSpec, CreateBody, HostConfig } from './types.js';

export const SWARM_LABEL_NAMESPACE = 'com.docker.swarm';
export const SWARM_ID_LABEL = `${SWARM_LABEL_NAMESPACE}.id`;

/** The kinds of hint classic read from Env, and the label each is stored in. */
export const HINT_LABELS = {
  constraint: `${SWARM_LABEL_NAMESPACE}.constraints`,
  affinity: `${SWARM_LABEL_NAMESPACE}.affinities`,
  whitelist: `${SWARM_LABEL_NAMESPACE}.whitelists`,
  reschedule: `${SWARM_LABEL_NAMESPACE}.reschedule-policies`,
} as const;

export type HintKind = keyof typeof HINT_LABELS;

// Order in which merged hints are written back; it only affects key order.
const HINT_KINDS: readonly HintKind[] = ['affinity', 'constraint', 'reschedule', 'whitelist'];

export const RESCHEDULE_POLICIES = ['off', 'on-node-failure'] as const;

/**
 * Move scheduling hints from Env into labels and give the container a Swarm
 * ID (unless it already has one: a rescheduled container keeps its own).
 * The input is not modified; unknown fields pass through.
 */
export function normaliseCreate(spec: ContainerSpec, newId: () => string): ContainerSpec {
  const labels: Record<string, string> = { ...(spec.config.Labels ?? {}) };
  const hints = new Map<HintKind, string[]>(HINT_KINDS.map((kind) => [kind, parseLabelList(labels[HINT_LABELS[kind]])]));
  const keptEnv: string[] = [];
  for (const entry of spec.config.Env ?? []) {
    const hint = splitHint(entry);
    if (hint === undefined) keptEnv.push(entry);
    else hints.get(hint.kind)?.push(hint.value);
  }
  for (const kind of HINT_KINDS) {
    const values = hints.get(kind) ?? [];
    if (values.length > 0) labels[HINT_LABELS[kind]] = JSON.stringify(values);
  }
  if (labels[SWARM_ID_LABEL] === undefined || labels[SWARM_ID_LABEL] === '') labels[SWARM_ID_LABEL] = newId();

  const config: CreateBody = { ...spec.config, Labels: labels };
  if (Array.isArray(spec.config.Env)) config.Env = keptEnv;
  return { ...spec, config };
}

/** Raw constraint expressions, e.g. ["node==node-1", "storage==~ssd"]. */
export function constraintsOf(spec: ContainerSpec): string[] {
  return hintsOf(spec, 'constraint');
}

/** Raw affinity expressions, e.g. ["container==web", "image==redis"]. */
export function affinitiesOf(spec: ContainerSpec): string[] {
  return hintsOf(spec, 'affinity');
}

/** Raw whitelist expressions, e.g. ["node==node-1|node-2"]. */
export function whitelistsOf(spec: ContainerSpec): string[] {
  return hintsOf(spec, 'whitelist');
}

/** The reschedule policies stored on a container, e.g. ["on-node-failure"]. */
export function reschedulePolicies(labels: Record<string, string>): string[] {
  return parseLabelList(labels[HINT_LABELS.reschedule]);
}

/** The container's Swarm ID, or "" when it has none. */
export function swarmIdOf(labels: Record<string, string>): string {
  return labels[SWARM_ID_LABEL] ?? '';
}

/**
 * Whether the spec pins the container to a node with a hard `node==`
 * constraint (classic then did not retry a failed create with image affinity,
 * nor add a soft node constraint for a local network).
 */
export function hasNodeConstraint(spec: ContainerSpec): boolean {
  return constraintsOf(spec).some((c) => c.startsWith('node==') && !c.startsWith('node==~'));
}

/** A copy of the spec with one more expression of the given kind. */
export function withHint(spec: ContainerSpec, kind: HintKind, expression: string): ContainerSpec {
  const labels: Record<string, string> = { ...(spec.config.Labels ?? {}) };
  labels[HINT_LABELS[kind]] = JSON.stringify([...parseLabelList(labels[HINT_LABELS[kind]]), expression]);
  return { ...spec, config: { ...spec.config, Labels: labels } };
}

/**
 * Classic's validation of a normalised create, with its messages: at most one
 * reschedule policy, and it must be "off" or "on-node-failure".
 */
export function validateCreate(spec: ContainerSpec): { ok: true } | { ok: false; message: string } {
  const policies = reschedulePolicies(spec.config.Labels ?? {});
  if (policies.length > 1) return { ok: false, message: 'too many reschedule policies' };
  const [policy] = policies;
  if (policy !== undefined && !(RESCHEDULE_POLICIES as readonly string[]).includes(policy)) {
    return { ok: false, message: `invalid reschedule policy: ${policy}` };
  }
  return { ok: true };
}

/** The resources a container reserves: CPU shares (counted as CPUs) and memory bytes. */
export function requestedResources(config: CreateBody): { cpus: number; memory: number } {
  const host: HostConfig = config.HostConfig ?? {};
  // Pre-1.7 clients put these at the top level; a non-zero top-level value wins.
  const cpus = nonZero(config.CpuShares) ?? host.CpuShares ?? 0;
  const memory = nonZero(config.Memory) ?? host.Memory ?? 0;
  return { cpus, memory };
}

function nonZero(n: number | undefined): number | undefined {
  return typeof n === 'number' && n !== 0 ? n : undefined;
}

// The hints of a spec: its labels, plus any still in Env (so a spec that was
// not normalised schedules the same as one that was).
function hintsOf(spec: ContainerSpec, kind: HintKind): string[] {
  const fromLabels = parseLabelList(spec.config.Labels?.[HINT_LABELS[kind]]);
  const fromEnv = (spec.config.Env ?? []).flatMap((entry) => {
    const hint = splitHint(entry);
    return hint !== undefined && hint.kind === kind ? [hint.value] : [];
  });
  return [...fromLabels, ...fromEnv];
}

function splitHint(entry: string): { kind: HintKind; value: string } | undefined {
  const colon = entry.indexOf(':');
  if (colon < 0) return undefined;
  const prefix = entry.slice(0, colon);
  const kind = HINT_KINDS.find((k) => k === prefix);
  return kind === undefined ? undefined : { kind, value: entry.slice(colon + 1) };
}

// Classic ignored a label that was not a JSON array of strings.
function parseLabelList(text: string | undefined): string[] {
  if (text === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  return parsed.filter((item): item is string => typeof item === 'string');
}
