// raftkv: one raft member per process, for the real-process tests and the benchmark.
// A KV state machine behind a tiny HTTP API, raft over gRPC, both on a loopback address
// of its own (Linux routes all of 127/8 to lo, so 127.0.77.1, .2, ... are distinct hosts).
//
//   node dist/test/raft/proc/raftkv.js --id n1 --ip 127.0.77.1 --dir /tmp/n1 \
//     --peers n1=127.0.77.1:17000,n2=127.0.77.2:17000,n3=127.0.77.3:17000 [--join] [--force-new-cluster]
//
// The WAL is sealed with a data key, as the store's is (made on first start in
// DIR.dek.json), so kill -9 recovery and the benchmark include the encryption at rest.
//
// HTTP (port --http-port, default 18000):
//   PUT /kv/KEY (body = value)     200 {"index"} once applied here; 503 {"message","code","leader"}
//   GET /kv/KEY                    linearizable (ReadIndex): 200 {"value": string|null, "index"}
//   GET /dump                      linearizable: every key, to compare replicas
//   GET /status                    role, term, leader, commit, applied, membership
//   POST /members {"id","address","role":"learner"|"voter"}; POST /members/ID/promote; DELETE /members/ID
//   POST /partition {"block":[ids]}  drop raft traffic to and from these peers (test hook)
// Prints one line "ready <id>" on stdout once both servers listen.

import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { RaftDriver, RaftError, WalCipher } from '../../../src/raft/driver/index.js';
import { loadOrCreateDataKey } from '../../../src/store/index.js';
import type { Tuning } from '../../../src/raft/driver/index.js';
import { GrpcTransport } from '../../../src/raft/transport/index.js';
import { KvMachine, encodePut } from '../kvmachine.js';

const { values } = parseArgs({
  options: {
    id: { type: 'string' },
    ip: { type: 'string' },
    dir: { type: 'string' },
    peers: { type: 'string', default: '' },
    'raft-port': { type: 'string', default: '17000' },
    'http-port': { type: 'string', default: '18000' },
    join: { type: 'boolean', default: false },
    'force-new-cluster': { type: 'boolean', default: false },
    'tick-ms': { type: 'string' },
    'election-ticks': { type: 'string' },
    'heartbeat-ticks': { type: 'string' },
    'snapshot-interval': { type: 'string' },
    'keep-entries': { type: 'string' },
    plain: { type: 'boolean', default: false },
  },
});

function required(name: string, v: string | undefined): string {
  if (v === undefined || v === '') {
    process.stderr.write(`raftkv: --${name} is required\n`);
    process.exit(2);
  }
  return v;
}

const id = required('id', values.id);
const ip = required('ip', values.ip);
const dir = required('dir', values.dir);
const raftAddress = `${ip}:${values['raft-port']}`;
const peers = new Map<string, string>([[id, raftAddress]]);
for (const pair of values.peers.split(',').filter((p) => p !== '')) {
  const [peer, address] = pair.split('=');
  if (peer === undefined || address === undefined) {
    process.stderr.write(`raftkv: --peers takes id=host:port,...; got "${pair}"\n`);
    process.exit(2);
  }
  peers.set(peer, address);
}

const tuning: Partial<Record<keyof Tuning, number>> = {};
const numeric: [keyof Tuning, string | undefined][] = [
  ['tickMs', values['tick-ms']],
  ['electionTicks', values['election-ticks']],
  ['heartbeatTicks', values['heartbeat-ticks']],
  ['snapshotInterval', values['snapshot-interval']],
  ['keepEntries', values['keep-entries']],
];
for (const [key, v] of numeric) if (v !== undefined) tuning[key] = Number(v);

const kv = new KvMachine();
const transport = new GrpcTransport({ id, listen: raftAddress });
const driver = await RaftDriver.start({
  id,
  dir,
  stateMachine: kv,
  transport,
  addresses: peers,
  bootstrap: values.join ? { kind: 'join' } : { kind: 'found', voters: [...peers.keys()] },
  forceNewCluster: values['force-new-cluster'],
  // --plain: no sealing, to measure what the encryption costs.
  cipher: values.plain ? null : new WalCipher(await loadOrCreateDataKey(`${dir}.dek.json`)),
  tuning,
  onFatal: (err) => {
    process.stderr.write(`raftkv ${id}: fatal: ${err.message}\n`);
    process.exit(1);
  },
});

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function fail(res: ServerResponse, err: unknown): void {
  if (err instanceof RaftError) {
    const status = err.code === 'invalidChange' ? 400 : 503;
    reply(res, status, { message: err.message, code: err.code, leader: err.leader });
    return;
  }
  reply(res, 500, { message: err instanceof Error ? err.message : String(err) });
}

// Events, not `for await`: the async iterator costs a promise per chunk on every write's path.
function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}

// The longest stall of this process's event loop: ticks and heartbeats wait behind it, so
// the election timeout has to be comfortably longer (src/raft/README.md, "Tunables").
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

function statusJson(): unknown {
  const st = driver.status();
  return { ...st, progress: Object.fromEntries(st.progress), eventLoopMaxStallMs: loopDelay.max / 1e6 };
}

async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://raftkv');
  const parts = url.pathname.split('/').filter((p) => p !== '').map(decodeURIComponent);
  const method = req.method ?? 'GET';
  if (parts[0] === 'kv' && parts[1] !== undefined) {
    const key = parts[1];
    if (method === 'PUT') {
      const applied = await driver.propose(encodePut({ key, value: await body(req) }));
      reply(res, 200, { index: applied.index });
      return;
    }
    if (method === 'GET') {
      const index = await driver.readBarrier();
      reply(res, 200, { value: kv.data.get(key) ?? null, index });
      return;
    }
  }
  if (parts[0] === 'dump' && method === 'GET') {
    const index = await driver.readBarrier();
    reply(res, 200, { index, data: Object.fromEntries(kv.data) });
    return;
  }
  if (parts[0] === 'status' && method === 'GET') {
    reply(res, 200, statusJson());
    return;
  }
  if (parts[0] === 'members') {
    const member = parts[1];
    if (method === 'POST' && member === undefined) {
      const req2 = JSON.parse(await body(req)) as { id: string; address: string; role: 'learner' | 'voter' };
      reply(res, 200, { index: await driver.addMember(req2.id, req2.address, req2.role) });
      return;
    }
    if (method === 'POST' && member !== undefined && parts[2] === 'promote') {
      reply(res, 200, { index: await driver.promote(member) });
      return;
    }
    if (method === 'DELETE' && member !== undefined) {
      reply(res, 200, { index: await driver.removeMember(member) });
      return;
    }
  }
  if (parts[0] === 'partition' && method === 'POST') {
    const { block } = JSON.parse(await body(req)) as { block: string[] };
    transport.blocked.clear();
    for (const p of block) transport.blocked.add(p);
    reply(res, 200, { blocked: block });
    return;
  }
  reply(res, 404, { message: `no route ${method} ${url.pathname}` });
}

const http = createServer((req, res) => {
  route(req, res).catch((err: unknown) => fail(res, err));
});
http.keepAliveTimeout = 60_000;
await new Promise<void>((resolve, reject) => {
  http.once('error', reject);
  http.listen(Number(values['http-port']), ip, () => resolve());
});

const shutdown = (): void => {
  http.close();
  driver.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.stdout.write(`ready ${id}\n`);
