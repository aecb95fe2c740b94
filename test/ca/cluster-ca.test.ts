// The NodeCA over the replicated store: three managers, each answering from its own
// replica. A node joining through one is recorded for all; a token rotated through one is
// refused by every other; a promotion made through one shows at renewal through another;
// a root rotation run through the store ends with new tokens everywhere.
import { strict as assert } from 'node:assert';
import { createPublicKey } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import {
  addNodeCaService,
  finishRootRotation,
  generateKey,
  issuer,
  issueNodeCertificate,
  JoinError,
  joinTokensOf,
  newClusterCa,
  nodesPending,
  requestJoin,
  requestRenewal,
  rotatedJoinSecrets,
  startRootRotation,
  storeNodeCaBackend,
  type CaState,
} from '../../src/ca/index.js';
import { ClusterStore } from '../../src/store/index.js';
import { MemoryNetwork } from '../raft/memnet.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !check(); ) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('NodeCA on three managers over the replicated store: joins, token rotation, promotion and root rotation seen by all', async () => {
  const root = await mkdtemp(join(tmpdir(), 'cluster-ca-'));
  const net = new MemoryNetwork();
  const ids = ['m1', 'm2', 'm3'];
  const stores: ClusterStore[] = [];
  const servers: grpc.Server[] = [];
  try {
    for (const id of ids) {
      stores.push(await ClusterStore.open({ id, dir: join(root, id), transport: net.transport(id), addresses: new Map(), bootstrap: { kind: 'found', voters: ids }, tuning: { tickMs: 10, electionTicks: 10, heartbeatTicks: 1 } }));
    }
    await until('a leader every member follows', () => stores.every((s) => s.status().leader !== null && s.status().leader === stores[0]?.status().leader));
    const leader = stores.find((s) => s.status().role === 'leader');
    assert.ok(leader);
    const cluster = await leader.create('cluster', { spec: { annotations: { name: 'default' } }, ...newClusterCa(new Date()) });
    const clusterId = cluster.meta.id;
    const at = (version: number): Promise<void> => until(`every replica at version ${version}`, () => stores.every((s) => s.version >= version));
    await at(cluster.meta.version);
    const current = (s: ClusterStore): { ca: CaState; tokens: Record<'worker' | 'manager', string> } => {
      const c = s.get('cluster', clusterId);
      assert.ok(c?.ca && c.joinSecrets);
      return { ca: c.ca, tokens: joinTokensOf(c.ca, c.joinSecrets) };
    };

    const addresses: string[] = [];
    for (const [i, store] of stores.entries()) {
      const key = generateKey();
      const { ca, chainPems } = issuer(current(store).ca);
      const cert = issueNodeCertificate(ca, { nodeId: ids[i] ?? 'm', role: 'manager', clusterId, publicKey: createPublicKey(key.privateKey), now: new Date() }) + chainPems.join('');
      const server = new grpc.Server();
      addNodeCaService(server, storeNodeCaBackend(store));
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(cert), private_key: Buffer.from(key.keyPem) }], false), (err, p) => (err ? reject(err) : resolve(p))),
      );
      servers.push(server);
      addresses.push(`127.0.0.1:${port}`);
    }
    const [a1 = '', a2 = '', a3 = ''] = addresses;
    const [s1, s2, s3] = stores;
    assert.ok(s1 && s2 && s3);

    // Joined through m2: recorded for every manager.
    const worker = await requestJoin(a2, current(s2).tokens.worker, { hostname: 'w-host' });
    await until('the node on every replica', () => stores.every((s) => s.get('node', worker.nodeId)?.description?.hostname === 'w-host'));

    // `docker swarm join-token --rotate worker` through m3: the old token is refused by m1 and m2.
    const oldToken = current(s3).tokens.worker;
    const rotated = await s3.modify('cluster', clusterId, (c) => ({ ...c, joinSecrets: rotatedJoinSecrets(c.joinSecrets ?? { worker: '', manager: '' }, 'worker') }));
    await at(rotated.meta.version);
    for (const address of [a1, a2]) await assert.rejects(requestJoin(address, oldToken), (e: unknown) => e instanceof JoinError && /no longer/.test(e.message));
    assert.equal((await requestJoin(a1, current(s1).tokens.worker)).role, 'worker');

    // `docker node promote` through m1; the renewal through m3 carries it.
    const promoted = await s1.modify('node', worker.nodeId, (n) => ({ ...n, spec: { ...n.spec, role: 'manager' as const } }));
    await at(promoted.meta.version);
    const renewed = await requestRenewal(a3, worker);
    assert.equal(renewed.role, 'manager');

    // `docker swarm ca --rotate` through the store: renew everyone, finish, new tokens everywhere.
    const started = await s2.modify('cluster', clusterId, (c) => ({ ...c, ca: startRootRotation(c.ca ?? current(s2).ca, new Date()) }));
    await at(started.meta.version);
    const moved = await requestRenewal(a1, renewed);
    assert.equal(moved.chainPems.length, 1);
    assert.deepEqual(nodesPending(current(s1).ca, [moved]), []);
    const beforeFinish = current(s1).tokens.worker;
    const finished = await s1.modify('cluster', clusterId, (c) => ({ ...c, ca: finishRootRotation(c.ca ?? current(s1).ca, nodesPending(c.ca ?? current(s1).ca, [moved])) }));
    await at(finished.meta.version);
    const tokens = stores.map((s) => current(s).tokens.worker);
    assert.equal(new Set(tokens).size, 1, 'every manager derives the same token');
    // The same secret under the new root's digest.
    assert.notEqual(tokens[0], beforeFinish);
    assert.equal(tokens[0]?.slice(-25), beforeFinish.slice(-25));
    assert.equal(current(s1).ca.phase, 'steady');
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.tryShutdown(() => r()))));
    for (const s of stores) await s.close();
    await rm(root, { recursive: true, force: true });
  }
});
