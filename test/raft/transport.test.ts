// The gRPC transport on loopback: framing, large messages split across frames, limits,
// reconnecting to a restarted peer, and a raft cluster running over it.

import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { Message } from '../../src/raft/core/index.js';
import { RaftDriver } from '../../src/raft/driver/index.js';
import { FrameReader, GrpcTransport, decodeMessage, encodeMessage, packFrames } from '../../src/raft/transport/index.js';
import { KvMachine, encodePut } from './kvmachine.js';
import { makeTestPki } from './tls.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function snapshotMessage(bytes: number): Message {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (i * 31) & 0xff;
  return { type: 'installSnapshot', from: 'a', to: 'b', term: 3, snapshot: { meta: { index: 9, term: 2, membership: { voters: ['a', 'b'], learners: [] } }, data } };
}

test('codec: messages round trip; several share a frame; a large one is split and reassembled', () => {
  const small: Message = { type: 'heartbeat', from: 'a', to: 'b', term: 1, commit: 4, readSeq: 2 };
  const big = snapshotMessage(100_000);
  const frames = packFrames([encodeMessage(small), encodeMessage(big), encodeMessage(small)], 16_384);
  assert.ok(frames.length > 5);
  assert.ok(frames.every((f) => f.length <= 16_384));
  const reader = new FrameReader(1 << 20);
  const out = frames.flatMap((f) => reader.read(f)).map(decodeMessage);
  assert.deepEqual(out, [small, big, small]);
  // The reassembled limit holds even when every frame is within its own.
  const tight = new FrameReader(50_000);
  assert.throws(() => frames.forEach((f) => tight.read(f)), /exceeds the limit/);
  assert.throws(() => decodeMessage(Buffer.from('{"type":"bogus","from":"a","to":"b"}')), /not a raft message/);
  // Byte fields wherever the types put them.
  const bytes = (text: string): Uint8Array => new Uint8Array(Buffer.from(text));
  const append: Message = {
    type: 'append',
    from: 'a',
    to: 'b',
    term: 2,
    prevIndex: 4,
    prevTerm: 1,
    commit: 4,
    entries: [
      { kind: 'noop', index: 5, term: 2 },
      { kind: 'command', index: 6, term: 2, data: bytes('put x') },
      { kind: 'command', index: 7, term: 2, data: new Uint8Array(0) },
    ],
  };
  const propose: Message = { type: 'propose', from: 'b', to: 'a', commands: [bytes('one'), bytes('two')] };
  assert.deepEqual(decodeMessage(encodeMessage(append)), append);
  assert.deepEqual(decodeMessage(encodeMessage(propose)), propose);
  assert.throws(() => decodeMessage(Buffer.from('{"type":"append","from":"a","to":"b","entries":[{"kind":"command","data":7}]}')), /malformed bytes field/);
});

test('grpc transport: batches, a 10 MB snapshot across 1 MB frames, and reconnecting to a restarted peer', async () => {
  const got: Message[] = [];
  const a = new GrpcTransport({ id: 'a', listen: '127.0.0.1:0', maxFrameBytes: 1 << 20 });
  await a.start(() => undefined);
  let b = new GrpcTransport({ id: 'b', listen: '127.0.0.1:0' });
  await b.start((m) => got.push(m));
  const port = b.port();
  a.setAddresses(new Map([['b', `127.0.0.1:${port}`]]));
  try {
    const beats: Message[] = Array.from({ length: 100 }, (_, i) => ({ type: 'heartbeat', from: 'a', to: 'b', term: 1, commit: i, readSeq: 0 }));
    a.send(beats);
    const snap = snapshotMessage(10 << 20);
    a.send([snap]);
    for (let i = 0; i < 300 && got.length < 101; i++) await sleep(20);
    assert.equal(got.length, 101);
    assert.deepEqual(got.slice(0, 100), beats);
    assert.deepEqual(got[100], snap);
    // The peer restarts on the same port: messages sent meanwhile are dropped, later ones arrive.
    await b.stop();
    a.send(beats.slice(0, 1));
    await sleep(100);
    got.length = 0;
    b = new GrpcTransport({ id: 'b', listen: `127.0.0.1:${port}` });
    await b.start((m) => got.push(m));
    for (let i = 0; i < 200 && got.length === 0; i++) {
      a.send(beats.slice(1, 2));
      await sleep(25);
    }
    assert.ok(got.length > 0, 'nothing arrived after the peer restarted');
    assert.deepEqual(got[0], beats[1]);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('grpc transport: a three-node raft cluster replicates over it', async () => {
  const root = await mkdtemp(join(tmpdir(), 'raft-grpc-'));
  const ids = ['a', 'b', 'c'];
  const transports = ids.map((id) => new GrpcTransport({ id, listen: '127.0.0.1:0' }));
  const drivers: RaftDriver<null>[] = [];
  try {
    // Bind first so that every address is known before the drivers start.
    const probes = transports.map((t) => t.start(() => undefined));
    await Promise.all(probes);
    const ports = transports.map((t) => t.port());
    await Promise.all(transports.map((t) => t.stop()));
    const book = new Map(ids.map((id, i) => [id, `127.0.0.1:${ports[i] ?? 0}`]));
    const kvs = ids.map(() => new KvMachine());
    for (const [i, id] of ids.entries()) {
      const kv = kvs[i] ?? new KvMachine();
      drivers.push(
        await RaftDriver.start({
          id,
          dir: join(root, id),
          stateMachine: kv,
          transport: new GrpcTransport({ id, listen: book.get(id) ?? '' }),
          addresses: book,
          bootstrap: { kind: 'found', voters: ids },
          tuning: { tickMs: 20 },
        }),
      );
    }
    let leader: RaftDriver<null> | undefined;
    for (let i = 0; i < 200 && leader === undefined; i++) {
      leader = drivers.find((d) => d.status().role === 'leader');
      await sleep(20);
    }
    assert.ok(leader !== undefined, 'no leader over grpc');
    await Promise.all(Array.from({ length: 100 }, (_, i) => (drivers[i % 3] ?? leader).propose(encodePut({ key: `k${i}`, value: `v${i}` }))));
    for (const d of drivers) await d.readBarrier();
    for (const kv of kvs) assert.equal(kv.data.size, 100);
  } finally {
    for (const d of drivers) await d.stop();
    await rm(root, { recursive: true, force: true });
  }
});

test('grpc transport: mutual TLS through the credentials hook; a peer without a certificate gets nothing through', async () => {
  const pki = makeTestPki();
  const ca = Buffer.from(pki.caPem);
  const key = Buffer.from(pki.keyPem);
  const cert = Buffer.from(pki.certPem);
  const credentials = {
    server: grpc.ServerCredentials.createSsl(ca, [{ private_key: key, cert_chain: cert }], true),
    channel: grpc.credentials.createSsl(ca, key, cert),
  };
  const got: Message[] = [];
  const b = new GrpcTransport({ id: 'b', listen: '127.0.0.1:0', credentials });
  await b.start((m) => got.push(m));
  const address = new Map([['b', `127.0.0.1:${b.port()}`]]);
  const a = new GrpcTransport({ id: 'a', listen: '127.0.0.1:0', credentials });
  await a.start(() => undefined);
  a.setAddresses(address);
  const plain = new GrpcTransport({ id: 'x', listen: '127.0.0.1:0' });
  await plain.start(() => undefined);
  plain.setAddresses(address);
  try {
    const beat = (from: string): Message => ({ type: 'heartbeat', from, to: 'b', term: 1, commit: 0, readSeq: 0 });
    for (let i = 0; i < 100 && !got.some((m) => m.from === 'a'); i++) {
      a.send([beat('a')]);
      plain.send([beat('x')]);
      await sleep(30);
    }
    assert.ok(got.some((m) => m.from === 'a'), 'nothing arrived over TLS');
    assert.ok(!got.some((m) => m.from === 'x'), 'a plaintext peer got through');
  } finally {
    await a.stop();
    await b.stop();
    await plain.stop();
  }
});
