// dependency: `--volumes-from=A`, `--link=B:alias` and `--net=container:C`
// must land on the node that holds A, B and C; all of them on one node.

import type { ContainerSpec, Filter, SchedNode } from '../types.js';
import { findContainer } from '../node.js';

export const dependencyFilter: Filter = {
  filter(spec, nodes) {
    if (nodes.length === 0) return { ok: true, nodes: [] };
    const references = dependenciesOf(spec).map((d) => d.reference);
    const candidates = nodes.filter((node) => references.every((ref) => hasContainer(node, ref)));
    if (candidates.length === 0) {
      return {
        ok: false,
        reason: `Unable to find a node fulfilling all dependencies: ${dependenciesOf(spec)
          .map((d) => d.flag)
          .join(' ')}`,
      };
    }
    return { ok: true, nodes: candidates };
  },
  conditions(spec) {
    return { ok: true, items: dependenciesOf(spec).map((d) => d.flag) };
  },
};

interface Dependency {
  /** As the user wrote it, for messages: "--link=db:alias". */
  flag: string;
  /** The container it names: "db". */
  reference: string;
}

export function dependenciesOf(spec: ContainerSpec): Dependency[] {
  const host = spec.config.HostConfig ?? {};
  const dependencies: Dependency[] = [];
  for (const volume of host.VolumesFrom ?? []) {
    dependencies.push({ flag: `--volumes-from=${volume}`, reference: beforeColon(volume) });
  }
  for (const link of host.Links ?? []) {
    dependencies.push({ flag: `--link=${link}`, reference: beforeColon(link) });
  }
  const mode = host.NetworkMode ?? '';
  if (mode.startsWith('container:')) {
    dependencies.push({ flag: `--net=${mode}`, reference: mode.slice('container:'.length) });
  }
  return dependencies;
}

function beforeColon(text: string): string {
  const colon = text.indexOf(':');
  return colon < 0 ? text : text.slice(0, colon);
}

function hasContainer(node: SchedNode, reference: string): boolean {
  return findContainer(node, reference) !== undefined;
}
