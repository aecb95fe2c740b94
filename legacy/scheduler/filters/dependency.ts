// dependency: `--volumes-from=A`, `--link=B:alias` and `--net=container:C`
// must land on the node that holds A, B and C; all of them on one node.

import { findContainer } from '../node.js';
import type { ContainerSpec, Filter } from '../types.js';

export const dependencyFilter: Filter = {
  filter(spec, nodes) {
    if (nodes.length === 0) return { ok: true, nodes: [] };
    const dependencies = dependenciesOf(spec);
    const candidates = nodes.filter((node) => dependencies.every((d) => findContainer(node, d.reference) !== undefined));
    if (candidates.length === 0) {
      const flags = dependencies.map((d) => d.flag).join(' ');
      return { ok: false, reason: `Unable to find a node fulfilling all dependencies: ${flags}` };
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

