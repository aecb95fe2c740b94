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
  finishRootRotation,
  issuer,
  nodesPending,
  startRootRotation,
  tokenRoot,
  formatJoinToken,
  generateKey,
  issueNodeCertificate,
  JoinError,
  requestJoin,
  requestRenewal,
  TokenError,
  trustedRoots,
  verifyNodeCertificate,
  type CaState,
  type NodeCaBackend,
  type NodeRole,
} from '../../src/ca/index.js';
import { ClusterStore } from '../../src/store/index.js';
import { openOneManager } from '../store/one-manager.js';

interface Swarm {
  clusterId: string;
  state: CaState;
  /** The secrets; the tokens carry the digest of the root they name. */
  secrets: Record<NodeRole, Buffer>;
}

function newSwarm(clusterId: string): Swarm {
  return { clusterId, state: { phase: 'steady', root: createRootCA({ now: new Date() }) }, secrets: { worker: randomBytes(16), manager: randomBytes(16) } };
}

const tokenOf = (swarm: Swarm, role: NodeRole): string => formatJoinToken(tokenRoot(swarm.state).digest, swarm.secrets[role]);

async function startCa(swarm: Swarm, store: ClusterStore, serverRole: NodeRole = 'manager'): Promise<{ address: string; stop: () => Promise<void> }> {
  const key = generateKey();
  const { ca, chainPems } = issuer(swarm.state);
  const cert = issueNodeCertificate(ca, { nodeId: 'm1', role: serverRole, clusterId: swarm.clusterId, publicKey: createPublicKey(key.privateKey), now: new Date() }) + chainPems.join('');
  const backend: NodeCaBackend = {
    authority: () => ({ clusterId: swarm.clusterId, ca: swarm.state, joinSecrets: { worker: tokenOf(swarm, 'worker').slice(-25), manager: tokenOf(swarm, 'manager').slice(-25) } }),
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

async function oneManagerStore(): Promise<{ store: ClusterStore; close: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'node-ca-'));
  const store = await openOneManager(dir);
  return {
    store,
    close: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

test('NodeCA: join with tokens, refusals, renewal across promote/demote, a removed node refused', async () => {
  const { store, close } = await oneManagerStore();
  const swarm = newSwarm('c1');
  const ca = await startCa(swarm, store);
  const other = newSwarm('c2');
  const otherCa = await startCa(other, store);
  const impostor = await startCa(swarm, store, 'worker');
  try {
    const worker = await requestJoin(ca.address, tokenOf(swarm, 'worker'), { hostname: 'host-a' });
    assert.equal(worker.role, 'worker');
    assert.match(worker.nodeId, /^[0-9a-z]{25}$/);
    assert.deepEqual(worker.trustPems, [tokenRoot(swarm.state).certPem]);
    assert.deepEqual(worker.chainPems, []);
    const recorded = store.get('node', worker.nodeId);
    assert.equal(recorded?.spec.role, 'worker');
    assert.equal(recorded?.description?.hostname, 'host-a');

    const manager = await requestJoin(ca.address, `${tokenOf(swarm, 'manager')}\n`);
    assert.equal(manager.role, 'manager');
    assert.notEqual(manager.nodeId, worker.nodeId);

    // A token whose secret is wrong, one rotated away, one of another swarm, one malformed.
    const wrong = formatJoinToken(tokenRoot(swarm.state).digest, randomBytes(16));
    await assert.rejects(requestJoin(ca.address, wrong), refusedWith(/invalid join token: it is not \(or no longer\) a token of this swarm.*docker swarm join-token/));
    const before = tokenOf(swarm, 'worker');
    swarm.secrets.worker = randomBytes(16);
    await assert.rejects(requestJoin(ca.address, before), refusedWith(/no longer/));
    assert.equal((await requestJoin(ca.address, tokenOf(swarm, 'worker'))).role, 'worker');
    await assert.rejects(requestJoin(ca.address, tokenOf(other, 'worker')), refusedWith(/presents a CA other than the one the join token names/));
    await assert.rejects(requestJoin(otherCa.address, tokenOf(swarm, 'worker')), refusedWith(/presents a CA other than/));
    await assert.rejects(requestJoin(ca.address, 'SWMTKN-1-nonsense'), TokenError);
    // Right CA, but the certificate server is a worker: nothing is asked of it.
    await assert.rejects(requestJoin(impostor.address, tokenOf(swarm, 'worker')), refusedWith(/not a manager of this swarm/));
    await assert.rejects(requestJoin('127.0.0.1:1', tokenOf(swarm, 'worker'), { deadlineMs: 2000 }), refusedWith(/cannot reach the manager at 127\.0\.0\.1:1/));

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
    const stranger = await requestJoin(otherCa.address, tokenOf(other, 'worker'));
    await assert.rejects(requestRenewal(ca.address, { ...stranger, trustPems: [tokenRoot(swarm.state).certPem] }), refusedWith(/not signed by this swarm's CA/));
    await store.delete('node', worker.nodeId);
    await assert.rejects(requestRenewal(ca.address, promoted), refusedWith(/was removed from the swarm: it must join again/));
  } finally {
    await Promise.all([ca.stop(), otherCa.stop(), impostor.stop()]);
    await close();
  }
});

test('NodeCA through a root rotation: nodes move to the new root, old-root nodes still verify them, then the old root goes', async () => {
  const { store, close } = await oneManagerStore();
  const swarm = newSwarm('c1');
  const before = await startCa(swarm, store);
  let after: Awaited<ReturnType<typeof startCa>> | undefined;
  try {
    const a = await requestJoin(before.address, tokenOf(swarm, 'worker'));
    const oldToken = tokenOf(swarm, 'worker');
    swarm.state = startRootRotation(swarm.state, new Date());
    assert.equal(tokenOf(swarm, 'worker'), oldToken, 'tokens keep naming the old root during the rotation');

    // A node joining now gets a certificate of the new root, served with the cross-signed
    // root, and learns to trust both; a node that trusts only the old root verifies it.
    const b = await requestJoin(before.address, oldToken);
    assert.equal(b.chainPems.length, 1);
    assert.deepEqual(b.trustPems, trustedRoots(swarm.state));
    assert.equal(verifyNodeCertificate(b.certPem, a.trustPems, new Date(), b.chainPems).nodeId, b.nodeId);

    const held = new Map([
      [a.nodeId, a],
      [b.nodeId, b],
    ]);
    assert.deepEqual(nodesPending(swarm.state, held.values()), [a.nodeId]);
    assert.throws(() => finishRootRotation(swarm.state, nodesPending(swarm.state, held.values())), /cannot finish/);
    const a2 = await requestRenewal(before.address, a);
    assert.deepEqual(a2.trustPems, trustedRoots(swarm.state), 'the renewing node learns the new root through the cross-signature');
    held.set(a.nodeId, a2);
    swarm.state = finishRootRotation(swarm.state, nodesPending(swarm.state, held.values()));

    // Done: tokens name the new root, the old token is refused, and the old root is dropped.
    assert.notEqual(tokenOf(swarm, 'worker'), oldToken);
    after = await startCa(swarm, store);
    await assert.rejects(requestJoin(after.address, oldToken), refusedWith(/presents a CA other than/));
    const c = await requestJoin(after.address, tokenOf(swarm, 'worker'));
    assert.deepEqual(c.trustPems, trustedRoots(swarm.state));
    const a3 = await requestRenewal(after.address, a2);
    assert.deepEqual(a3.trustPems, trustedRoots(swarm.state));
    assert.equal(a3.trustPems.length, 1);
  } finally {
    await Promise.all([before.stop(), after?.stop()]);
    await close();
  }
});
