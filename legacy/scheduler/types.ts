// The scheduler's plain-data view of the cluster and of a create request.
// The engine pool builds SchedNode values from its cache; the API router
// passes the body of POST /containers/create as a ContainerSpec. Nothing here
// refers to a socket, a clock or a file.

/** A container already on a node, or one being created there ("pending"). */
export interface SchedContainer {
  id: string;
  /** Names without the leading slash or node prefix, e.g. ["web"]. */
  names: string[];
  /** Image reference as created, e.g. "busybox:latest". */
  image: string;
  imageId?: string;
  labels: Record<string, string>;
  /** "running" | "exited" | "created" | ...; creates in flight use "pending". */
  state: string;
  /** HostConfig.CpuShares; classic counted it as the number of CPUs reserved. */
  cpuShares: number;
  /** HostConfig.Memory in bytes. */
  memory: number;
  /**
   * Host ports this container holds on its node: its port bindings (requested
   * or actual) and, for host-network containers, its exposed ports.
   */
  publishedPorts: PublishedPort[];
  networkMode: string;
}

export type PortProtocol = 'tcp' | 'udp' | 'sctp';

export interface PublishedPort {
  /** "" or "0.0.0.0" / "::" when bound on every interface. */
  hostIp: string;
  hostPort: number;
  protocol: PortProtocol;
}

export interface SchedImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
}

export interface SchedNode {
  /** Engine ID. */
  id: string;
  /** Engine hostname. */
  name: string;
  /** "ip:port" */
  addr: string;
  ip: string;
  healthy: boolean;
  /**
   * Classic's health indicator: 100 for a node with no recent failures,
   * lower after failed refreshes, 0 when unhealthy. Strategies weigh it.
   * When absent it is 100 for a healthy node and 0 otherwise.
   */
  healthIndicator?: number;
  /**
   * Engine labels (dockerd --label) and the node attributes classic exposed
   * to constraints: storagedriver, kernelversion, operatingsystem,
   * executiondriver, ostype (when known).
   */
  labels: Record<string, string>;
  totalCpus: number;
  /** Bytes. */
  totalMemory: number;
  containers: SchedContainer[];
  images: SchedImage[];
}

/** One entry of HostConfig.PortBindings, as the Engine API spells it. */
export interface PortBinding {
  HostIp?: string;
  HostPort?: string;
  [field: string]: unknown;
}

/** The HostConfig fields the scheduler reads; every other field passes through. */
export interface HostConfig {
  PortBindings?: Record<string, PortBinding[] | null> | null;
  NetworkMode?: string;
  VolumesFrom?: string[] | null;
  Links?: string[] | null;
  CpuShares?: number;
  Memory?: number;
  [field: string]: unknown;
}

/**
 * The body of POST /containers/create. Only the fields classic's scheduler
 * read are typed; unknown fields survive normalisation unchanged.
 */
export interface CreateBody {
  Image?: string;
  Env?: string[] | null;
  Labels?: Record<string, string> | null;
  ExposedPorts?: Record<string, unknown> | null;
  HostConfig?: HostConfig | null;
  /** Pre-1.7 API clients sent resources at the top level. */
  CpuShares?: number;
  Memory?: number;
  [field: string]: unknown;
}

/** A create request: the body plus the name from ?name=. */
export interface ContainerSpec {
  name?: string;
  config: CreateBody;
}

/** What one filter did with the candidate nodes. */
export type FilterOutcome =
  | { ok: true; nodes: SchedNode[] }
  | {
      ok: false;
      /** Why, in classic's words (logged; the user sees the condition list). */
      reason: string;
      /**
       * When true the reason is shown to the user as it is, instead of the
       * "Unable to find a node that satisfies the following conditions" list
       * (classic did this for the health filter only).
       */
      standalone?: boolean;
    };

/** The conditions a filter contributes to classic's failure message. */
export type FilterConditions = { ok: true; items: string[] } | { ok: false; error: string };

export interface Filter {
  /**
   * Keep the nodes this filter accepts. `enforceSoft` is true on the first
   * pass; classic retried with soft (`~`) expressions ignored when the first
   * pass found no node.
   */
  filter(spec: ContainerSpec, nodes: readonly SchedNode[], enforceSoft: boolean): FilterOutcome;
  /** The request's conditions as classic listed them, e.g. "port 80 (Bridge mode)". */
  conditions(spec: ContainerSpec): FilterConditions;
}

export interface StrategyContext {
  /** Fraction by which node resources may be overcommitted (swarm.overcommit). */
  overcommit: number;
  /** Uniform in [0, 1). */
  rand: () => number;
}

export type StrategyOutcome = { ok: true; nodes: SchedNode[] } | { ok: false; message: string };

export interface Strategy {
  /** Order the filtered nodes best first, dropping those the container does not fit. */
  rank(spec: ContainerSpec, nodes: readonly SchedNode[], context: StrategyContext): StrategyOutcome;
}
