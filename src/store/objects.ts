// The typed objects of swarm mode, as the managers' replicated store holds them.
//
// Field names are ours (camelCase); the Docker-compatible API maps them to Docker's
// shapes. Every object carries `meta`: its id, its version (the raft index of the write
// that produced it) and its creation/update times (from the proposer's clock, carried in
// the log entry so that every replica stores the same value).

export const KINDS = ['cluster', 'node', 'service', 'task', 'network', 'secret', 'config'] as const;
export type Kind = (typeof KINDS)[number];

export function isKind(value: unknown): value is Kind {
  return typeof value === 'string' && (KINDS as readonly string[]).includes(value);
}

export interface Meta {
  readonly id: string;
  /** Raft index of the transaction that last wrote the object; the optimistic-concurrency token. */
  readonly version: number;
  /** Raft index of the transaction that created it (a watch resumed from an older version sees a create). */
  readonly createdVersion: number;
  /** RFC 3339 times, from the proposer's clock. */
  readonly createdAt: string;
  readonly updatedAt: string;
}

export type Labels = Readonly<Record<string, string>>;

export interface Annotations {
  readonly name: string;
  readonly labels?: Labels;
}

// ------------------------------------------------------------------ cluster

export interface ClusterSpec {
  readonly annotations: Annotations;
  readonly orchestration?: { readonly taskHistoryRetentionLimit?: number };
  readonly raft?: { readonly snapshotInterval?: number; readonly keepOldSnapshots?: number; readonly electionTick?: number; readonly heartbeatTick?: number };
  readonly dispatcher?: { readonly heartbeatPeriodMs?: number };
  readonly caConfig?: { readonly nodeCertExpiryMs?: number };
  readonly encryptionConfig?: { readonly autoLockManagers?: boolean };
}

/** A root CA with its key: the store is sealed at rest, as swarm mode keeps its CA key in raft. */
export interface StoredRoot {
  readonly certPem: string;
  readonly keyPem: string;
  /** SHA-256 of the certificate, hex: what join tokens carry. */
  readonly digest: string;
}

/** The swarm's CA: one root, or two while a root rotation is under way (src/ca/rotation.ts). */
export type ClusterCa =
  | { readonly phase: 'steady'; readonly root: StoredRoot }
  | { readonly phase: 'rotating'; readonly old: StoredRoot; readonly next: StoredRoot; readonly crossSignedPem: string };

export interface ClusterFields {
  readonly spec: ClusterSpec;
  readonly ca?: ClusterCa;
  /**
   * The secret half of each join token (25 base-36 characters). The tokens themselves
   * are derived: SWMTKN-1-<digest of the root tokens name>-<secret>, so they change when
   * a root rotation ends, as Docker's do.
   */
  readonly joinSecrets?: { readonly worker: string; readonly manager: string };
}

// ------------------------------------------------------------------ node

export type NodeRole = 'manager' | 'worker';
export type NodeAvailability = 'active' | 'pause' | 'drain';
export type NodeState = 'unknown' | 'down' | 'ready' | 'disconnected';

export interface NodeSpec {
  readonly annotations: Annotations;
  readonly role: NodeRole;
  readonly availability: NodeAvailability;
}

export interface NodeDescription {
  readonly hostname: string;
  readonly platform?: { readonly architecture: string; readonly os: string };
  readonly resources?: { readonly nanoCpus: number; readonly memoryBytes: number };
  readonly engine?: { readonly engineVersion: string; readonly labels?: Labels };
}

export interface NodeFields {
  readonly spec: NodeSpec;
  /** The role the node actually holds (the spec's is the desired one). */
  readonly role: NodeRole;
  readonly description?: NodeDescription;
  readonly status: { readonly state: NodeState; readonly message?: string; readonly addr?: string };
  readonly managerStatus?: { readonly raftId: string; readonly addr: string; readonly leader?: boolean; readonly reachability: 'unknown' | 'unreachable' | 'reachable' };
}

// ------------------------------------------------------------------ service and task

export interface Mount {
  readonly type: 'bind' | 'volume' | 'tmpfs';
  readonly source?: string;
  readonly target: string;
  readonly readOnly?: boolean;
}

export interface ContainerSpec {
  readonly image: string;
  readonly command?: readonly string[];
  readonly args?: readonly string[];
  readonly env?: readonly string[];
  readonly dir?: string;
  readonly user?: string;
  readonly hostname?: string;
  readonly labels?: Labels;
  readonly mounts?: readonly Mount[];
  readonly stopGracePeriodMs?: number;
  readonly secrets?: readonly { readonly secretId: string; readonly secretName: string; readonly target: string }[];
  readonly configs?: readonly { readonly configId: string; readonly configName: string; readonly target: string }[];
}

export interface Resources {
  readonly nanoCpus?: number;
  readonly memoryBytes?: number;
}

export interface RestartPolicy {
  readonly condition: 'none' | 'on-failure' | 'any';
  readonly delayMs?: number;
  readonly maxAttempts?: number;
  readonly windowMs?: number;
}

export interface TaskSpec {
  readonly containerSpec: ContainerSpec;
  readonly resources?: { readonly limits?: Resources; readonly reservations?: Resources };
  readonly restartPolicy?: RestartPolicy;
  readonly placement?: { readonly constraints?: readonly string[]; readonly maxReplicas?: number };
  readonly networks?: readonly { readonly target: string; readonly aliases?: readonly string[] }[];
  /** Bumped to force a redeploy without another change (`docker service update --force`). */
  readonly forceUpdate?: number;
}

export interface UpdateConfig {
  readonly parallelism: number;
  readonly delayMs?: number;
  readonly failureAction?: 'pause' | 'continue' | 'rollback';
  readonly monitorMs?: number;
  readonly maxFailureRatio?: number;
  readonly order?: 'stop-first' | 'start-first';
}

export interface PortConfig {
  readonly name?: string;
  readonly protocol: 'tcp' | 'udp' | 'sctp';
  readonly targetPort: number;
  readonly publishedPort?: number;
  readonly publishMode?: 'ingress' | 'host';
}

export interface ServiceSpec {
  readonly annotations: Annotations;
  readonly taskTemplate: TaskSpec;
  readonly mode: { readonly replicated: { readonly replicas: number } } | { readonly global: Record<string, never> };
  readonly updateConfig?: UpdateConfig;
  readonly rollbackConfig?: UpdateConfig;
  readonly endpointSpec?: { readonly mode?: 'vip' | 'dnsrr'; readonly ports?: readonly PortConfig[] };
}

export type UpdateState = 'updating' | 'paused' | 'completed' | 'rollback_started' | 'rollback_paused' | 'rollback_completed';

export interface ServiceFields {
  readonly spec: ServiceSpec;
  readonly previousSpec?: ServiceSpec;
  readonly endpoint?: { readonly ports?: readonly PortConfig[]; readonly virtualIps?: readonly { readonly networkId: string; readonly addr: string }[] };
  readonly updateStatus?: { readonly state: UpdateState; readonly startedAt?: string; readonly completedAt?: string; readonly message?: string };
}

/** Task states in lifecycle order: a task only moves forward through them. */
export const TASK_STATES = [
  'new',
  'pending',
  'assigned',
  'accepted',
  'preparing',
  'ready',
  'starting',
  'running',
  'complete',
  'shutdown',
  'failed',
  'rejected',
  'remove',
  'orphaned',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

export function isTaskState(value: unknown): value is TaskState {
  return typeof value === 'string' && (TASK_STATES as readonly string[]).includes(value);
}

export interface TaskFields {
  readonly serviceId: string;
  /** Replicated services: the replica's slot (1..n). Global services: absent (one per node). */
  readonly slot?: number;
  readonly nodeId?: string;
  readonly spec: TaskSpec;
  readonly serviceVersion?: number;
  readonly desiredState: TaskState;
  readonly status: {
    readonly state: TaskState;
    readonly timestamp: string;
    readonly message?: string;
    readonly err?: string;
    readonly containerId?: string;
    readonly exitCode?: number;
  };
  readonly annotations?: Annotations;
}

// ------------------------------------------------------------------ network, secret, config

export interface NetworkSpec {
  readonly annotations: Annotations;
  readonly driver?: string;
  readonly ipam?: { readonly configs?: readonly { readonly subnet?: string; readonly gateway?: string }[] };
  readonly attachable?: boolean;
  readonly ingress?: boolean;
  readonly internal?: boolean;
}

export interface NetworkFields {
  readonly spec: NetworkSpec;
  readonly vxlanId?: number;
}

export interface SecretFields {
  /** `data` is base64; secrets are never returned over the API with it. */
  readonly spec: { readonly annotations: Annotations; readonly data: string };
}

export interface ConfigFields {
  readonly spec: { readonly annotations: Annotations; readonly data: string };
}

// ------------------------------------------------------------------ by kind

export interface FieldsOf {
  cluster: ClusterFields;
  node: NodeFields;
  service: ServiceFields;
  task: TaskFields;
  network: NetworkFields;
  secret: SecretFields;
  config: ConfigFields;
}

/** A stored object: its fields plus `meta`. Stored objects are frozen; copy before changing. */
export type StoreObject<K extends Kind = Kind> = FieldsOf[K] & { readonly meta: Meta };

/** Kinds whose `spec.annotations.name` is unique among objects of that kind. */
export const UNIQUE_NAMES: ReadonlySet<Kind> = new Set<Kind>(['cluster', 'service', 'network', 'secret', 'config']);

/** The name an object is indexed by (nodes: hostname unless the spec names it). */
export function nameOf(kind: Kind, fields: FieldsOf[Kind]): string | null {
  if (kind === 'task') return (fields as TaskFields).annotations?.name ?? null;
  const spec = (fields as { spec?: { annotations?: Annotations } }).spec;
  const name = spec?.annotations?.name;
  if (name !== undefined && name !== '') return name;
  if (kind === 'node') return (fields as NodeFields).description?.hostname ?? null;
  return null;
}
