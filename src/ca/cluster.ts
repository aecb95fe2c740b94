// The swarm's CA as the replicated store holds it (the cluster object), and the NodeCA
// backend over that store: every manager answers from its own replica, and writes (a new
// node) go through raft, so a token rotated through one manager is refused by all.
import { randomBytes } from 'node:crypto';
import type { ClusterStore, StoreObject } from '../store/index.js';
import { createRootCA, type NodeRole } from './pki.js';
import { tokenRoot, type CaState } from './rotation.js';
import type { NodeCaBackend } from './service.js';
import { formatJoinToken, joinSecret } from './token.js';

/** What `docker swarm init` puts in the cluster object: a new root and a secret per role. */
export function newClusterCa(now: Date): { ca: CaState; joinSecrets: Record<NodeRole, string> } {
  return { ca: { phase: 'steady', root: createRootCA({ now }) }, joinSecrets: { worker: joinSecret(randomBytes(16)), manager: joinSecret(randomBytes(16)) } };
}

/** `docker swarm join-token --rotate ROLE`: a new secret; the old token stops working at once. */
export function rotatedJoinSecrets(current: Readonly<Record<NodeRole, string>>, role: NodeRole): Record<NodeRole, string> {
  return { ...current, [role]: joinSecret(randomBytes(16)) };
}

/** The join tokens in force (`docker swarm join-token`): they name the root tokens carry now. */
export function joinTokensOf(ca: CaState, secrets: Readonly<Record<NodeRole, string>>): Record<NodeRole, string> {
  const digest = tokenRoot(ca).digest;
  return { worker: formatJoinToken(digest, secrets.worker), manager: formatJoinToken(digest, secrets.manager) };
}

function theCluster(store: ClusterStore): StoreObject<'cluster'> & { ca: CaState; joinSecrets: Record<NodeRole, string> } {
  const cluster = store.list('cluster')[0];
  if (cluster?.ca === undefined || cluster.joinSecrets === undefined) throw new Error('this manager has no swarm CA yet: the swarm is not initialised (docker swarm init), or this replica has not caught up');
  return { ...cluster, ca: cluster.ca, joinSecrets: cluster.joinSecrets };
}

/** The NodeCA over the replicated store: this replica's cluster object and node records. */
export function storeNodeCaBackend(store: ClusterStore, now: () => Date = () => new Date()): NodeCaBackend {
  return {
    authority: () => {
      const cluster = theCluster(store);
      const expiry = cluster.spec.caConfig?.nodeCertExpiryMs;
      return { clusterId: cluster.meta.id, ca: cluster.ca, joinSecrets: cluster.joinSecrets, ...(expiry === undefined ? {} : { nodeCertExpiryMs: expiry }) };
    },
    roleOf: (nodeId) => store.get('node', nodeId)?.spec.role,
    admit: async (role, hostname) => {
      const node = await store.create('node', {
        spec: { annotations: { name: '' }, role, availability: 'active' },
        role,
        ...(hostname === undefined ? {} : { description: { hostname } }),
        status: { state: 'unknown' },
      });
      return node.meta.id;
    },
    now,
  };
}
