// The NodeCA over real gRPC and TLS on loopback, with nodes recorded in a real ClusterStore
// (one manager, a sealed WAL): joining with each token, refusals (a wrong, rotated or
// malformed token, a CA other than the token's, a worker posing as a manager, no manager
// there), renewal that keeps the ID and follows promote/demote, and a removed node refused.
import { strict as assert } from 'node:assert';
import { createPublicKey, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import {
  addNodeCaService,
  createRootCA,
  formatJoinToken,
  generateKey,
  issueNodeCertificate,
  JoinError,
  requestJoin,
  requestRenewal,
  TokenError,
  type NodeCaBackend,
  type NodeRole,
  type RootCA,
} from '../../src/ca/index.js';
import { ClusterStore } from '../../src/store/index.js';
import { MemoryNetwork } from '../raft/memnet.js';

interface Swarm {
  clusterId: string;
  ca: RootCA;
  tokens: Record<NodeRole, string>;
}

function newSwarm(clusterId: string): Swarm {
  const ca = createRootCA({ now: new Date() });
  return { clusterId, ca, tokens: { worker: formatJoinToken(ca.digest, randomBytes(16)), manager: formatJoinToken(ca.digest, randomBytes(16)) } };
}

async function startCa(swarm: Swarm, store: ClusterStore, serverRole: NodeRole = 'manager'): Promise<{ address: string; stop: () => Promise<void> }> {
  const key = generateKey();
  const cert = issueNodeCertificate(swarm.ca, { nodeId: 'm1', role: serverRole, clusterId: swarm.clusterId, publicKey: createPublicKey(key.privateKey), now: new Date() });
  const backend: NodeCaBackend = {
    authority: () => ({ clusterId: swarm.clusterId, rootCa: swarm.ca, joinSecrets: { worker: swarm.tokens.worker.slice(-25), manager: swarm.tokens.manager.slice(-25) } }),
    roleOf: (id) => store.get('node', id)?.spec.role,
    admit: async (role, hostname) =>
      (await store.create('node', { spec: { annotations: { name: '' }, role, availability: 'active' }, role, description: { hostname: hostname ?? '' }, status: { state: 'unknown' } })).meta.id,
    now: () => new Date(),
  };
  const server = new grpc.Server();
  addNodeCaService(server, backend);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(cert), private_key: Buffer.from(key.keyPem) }], false), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { address: `127.0.0.1:${port}`, stop: () => new Promise((r) => server.tryShutdown(() => r())) };
}

const refusedWith = (pattern: RegExp) => (err: unknown): boolean => err instanceof JoinError && pattern.test(err.message);

test('NodeCA: join with tokens, refusals, renewal across promote/demote, a removed node refused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'node-ca-'));
  const net = new MemoryNetwork();
  const store = await ClusterStore.open({ id: 'm1', dir, transport: net.transport('m1'), addresses: new Map(), bootstrap: { kind: 'found', voters: ['m1'] }, tuning: { tickMs: 10, electionTicks: 10, heartbeatTicks: 1 } });
  const swarm = newSwarm('c1');
  const ca = await startCa(swarm, store);
  const other = newSwarm('c2');
  const otherCa = await startCa(other, store);
  const impostor = await startCa(swarm, store, 'worker');
  try {
    for (let i = 0; i < 200 && !store.status().leader; i++) await new Promise((r) => setTimeout(r, 20));

    const worker = await requestJoin(ca.address, swarm.tokens.worker, { hostname: 'host-a' });
    assert.equal(worker.role, 'worker');
    assert.match(worker.nodeId, /^[0-9a-z]{25}$/);
    assert.equal(worker.caPem, swarm.ca.certPem);
    const recorded = store.get('node', worker.nodeId);
    assert.equal(recorded?.spec.role, 'worker');
    assert.equal(recorded?.description?.hostname, 'host-a');

    const manager = await requestJoin(ca.address, `${swarm.tokens.manager}\n`);
    assert.equal(manager.role, 'manager');
    assert.notEqual(manager.nodeId, worker.nodeId);

    // A token whose secret is wrong, one rotated away, one of another swarm, one malformed.
    const wrong = formatJoinToken(swarm.ca.digest, randomBytes(16));
    await assert.rejects(requestJoin(ca.address, wrong), refusedWith(/invalid join token: it is not \(or no longer\) a token of this swarm.*docker swarm join-token/));
    const before = swarm.tokens.worker;
    swarm.tokens.worker = formatJoinToken(swarm.ca.digest, randomBytes(16));
    await assert.rejects(requestJoin(ca.address, before), refusedWith(/no longer/));
    assert.equal((await requestJoin(ca.address, swarm.tokens.worker)).role, 'worker');
    await assert.rejects(requestJoin(ca.address, other.tokens.worker), refusedWith(/presents a CA other than the one the join token names/));
    await assert.rejects(requestJoin(otherCa.address, swarm.tokens.worker), refusedWith(/presents a CA other than/));
    await assert.rejects(requestJoin(ca.address, 'SWMTKN-1-nonsense'), TokenError);
    // Right CA, but the certificate server is a worker: nothing is asked of it.
    await assert.rejects(requestJoin(impostor.address, swarm.tokens.worker), refusedWith(/not a manager of this swarm/));
    await assert.rejects(requestJoin('127.0.0.1:1', swarm.tokens.worker, { deadlineMs: 2000 }), refusedWith(/cannot reach the manager at 127\.0\.0\.1:1/));

    // Renewal keeps the ID and takes the role the swarm now wants.
    const renewed = await requestRenewal(ca.address, worker);
    assert.equal(renewed.nodeId, worker.nodeId);
    assert.equal(renewed.role, 'worker');
    assert.notEqual(renewed.keyPem, worker.keyPem);
    await store.modify('node', worker.nodeId, (n) => ({ ...n, spec: { ...n.spec, role: 'manager' as const } }));
    const promoted = await requestRenewal(ca.address, renewed);
    assert.equal(promoted.role, 'manager');
    assert.equal(promoted.nodeId, worker.nodeId);
    // Another swarm's certificate cannot renew here; a removed node cannot renew.
    const stranger = await requestJoin(otherCa.address, other.tokens.worker);
    await assert.rejects(requestRenewal(ca.address, { ...stranger, caPem: swarm.ca.certPem }), refusedWith(/not signed by this swarm's CA/));
    await store.delete('node', worker.nodeId);
    await assert.rejects(requestRenewal(ca.address, promoted), refusedWith(/was removed from the swarm: it must join again/));
  } finally {
    await Promise.all([ca.stop(), otherCa.stop(), impostor.stop()]);
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
