// The managers' raft links over node certificates from src/ca: mutual TLS, and a stream
// speaks only for the manager its certificate names. A manager's certificate used to send
// as another member, a worker's certificate, and a manager of another swarm under the same
// CA are all refused with PERMISSION_DENIED; a dialled peer that is not a manager is refused
// by the dialler.
import { strict as assert } from 'node:assert';
import { createPublicKey } from 'node:crypto';
import { test } from 'node:test';
import { createRootCA, generateKey, issueNodeCertificate, raftCredentials, type NodeRole } from '../../src/ca/index.js';
import type { Message } from '../../src/raft/core/index.js';
import { GrpcTransport } from '../../src/raft/transport/index.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('raft over node certificates: members speak only for themselves; workers and other swarms are refused', async () => {
  const now = new Date();
  const ca = createRootCA({ now });
  const creds = (nodeId: string, role: NodeRole = 'manager', clusterId = 'c1') => {
    const key = generateKey();
    const certPem = issueNodeCertificate(ca, { nodeId, role, clusterId, publicKey: createPublicKey(key.privateKey), now });
    return raftCredentials({ trustPems: [ca.certPem], certPem, keyPem: key.keyPem, clusterId: 'c1' });
  };
  const got: Message[] = [];
  const b = new GrpcTransport({ id: 'b', listen: '127.0.0.1:0', credentials: creds('b') });
  await b.start((m) => got.push(m));
  const book = new Map([['b', `127.0.0.1:${b.port()}`]]);
  const errors = new Map<string, string[]>();
  const sender = async (id: string, credentials: ReturnType<typeof creds>): Promise<GrpcTransport> => {
    const t = new GrpcTransport({ id, listen: '127.0.0.1:0', credentials, onPeerError: (_peer, err) => errors.set(id, [...(errors.get(id) ?? []), err.message]) });
    await t.start(() => undefined);
    t.setAddresses(book);
    return t;
  };
  const aCreds = creds('a');
  const a = await sender('a', aCreds);
  const impostor = await sender('c', aCreds); // a's certificate, claiming to be c
  const worker = await sender('w', creds('w', 'worker'));
  const stranger = await sender('z', creds('z', 'manager', 'c2'));
  const workerServer = new GrpcTransport({ id: 'ws', listen: '127.0.0.1:0', credentials: creds('ws', 'worker') });
  await workerServer.start(() => undefined);
  a.setAddresses(new Map([...book, ['ws', `127.0.0.1:${workerServer.port()}`]]));
  const all = [a, impostor, worker, stranger, workerServer];
  try {
    const beat = (from: string, to = 'b'): Message => ({ type: 'heartbeat', from, to, term: 1, commit: 0, readSeq: 0 });
    const refusedAll = (): boolean => ['c', 'w', 'z'].every((id) => (errors.get(id) ?? []).some((e) => /PERMISSION_DENIED|7 /.test(e))) && (errors.get('a') ?? []).length > 0;
    for (let i = 0; i < 150 && !(got.some((m) => m.from === 'a') && refusedAll()); i++) {
      a.send([beat('a'), beat('a', 'ws')]);
      impostor.send([beat('c')]);
      worker.send([beat('w')]);
      stranger.send([beat('z')]);
      await sleep(40);
    }
    assert.ok(got.some((m) => m.from === 'a'), 'the member got nothing through');
    assert.deepEqual([...new Set(got.map((m) => m.from))], ['a']);
    assert.match((errors.get('c') ?? []).join('\n'), /member a sent a message from c/);
    assert.match((errors.get('w') ?? []).join('\n'), /names no member/);
    assert.match((errors.get('z') ?? []).join('\n'), /names no member/);
    assert.match((errors.get('a') ?? []).join('\n'), /not a manager of swarm c1/);
  } finally {
    await Promise.all([b, ...all].map((t) => t.stop()));
  }
});
