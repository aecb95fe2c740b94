// Builders for scheduler test data: plain nodes, containers and create specs.

import type { ContainerSpec, CreateBody, SchedContainer, SchedImage, SchedNode } from '../../../legacy/scheduler/index.js';

export const GiB = 1024 * 1024 * 1024;

export function node(name: string, fields: Partial<SchedNode> = {}): SchedNode {
  return {
    id: `${name}-id`,
    name,
    addr: '10.0.0.1:2375',
    ip: '10.0.0.1',
    healthy: true,
    labels: {},
    totalCpus: 2,
    totalMemory: 2 * GiB,
    containers: [],
    images: [],
    ...fields,
  };
}

export function container(name: string, fields: Partial<SchedContainer> = {}): SchedContainer {
  return {
    id: `${name}-0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab`.slice(0, 64),
    names: [name],
    image: 'busybox:latest',
    labels: {},
    state: 'running',
    cpuShares: 0,
    memory: 0,
    publishedPorts: [],
    networkMode: 'default',
    ...fields,
  };
}

export function image(id: string, repoTags: string[]): SchedImage {
  return { id, repoTags, repoDigests: [] };
}

export function spec(config: CreateBody = {}, name?: string): ContainerSpec {
  return name === undefined ? { config: { Image: 'busybox', ...config } } : { name, config: { Image: 'busybox', ...config } };
}

/** A spec carrying scheduling hints in Env, the way `docker run -e` sends them. */
export function withEnv(...env: string[]): ContainerSpec {
  return spec({ Env: env });
}

export function names(nodes: readonly SchedNode[]): string[] {
  return nodes.map((n) => n.name);
}

/** A deterministic stand-in for Math.random. */
export function sequence(...values: number[]): () => number {
  let i = 0;
  return () => {
    const v = values[i % values.length] ?? 0;
    i++;
    return v;
  };
}
