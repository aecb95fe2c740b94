// `npm run bench -- raft`: the Raft-replicated KV (3 raftkv processes, gRPC between them,
// fsync on) against a 3-member etcd 3.4 cluster (Debian's /usr/bin/etcd) on the same
// machine, in the same run, with the same workload: PUTs of a 16-byte key and a 100-byte
// value from 1, 16 and 256 concurrent clients, each client sending its next PUT when the
// previous one is acknowledged, straight to the leader. Both clusters run side by side
// during the throughput phase and are measured in alternating rounds (raft, etcd, raft,
// etcd, ...), so that load from elsewhere on this shared machine, which drifts over a run,
// falls on both alike; each figure pools its rounds. Then, raft only: failover after
// kill -9 of the leader (from the kill until a write commits again, 10+ kills), catch-up of
// a follower 100,000 entries behind (it gets a snapshot), and leader changes in an idle run.
//
// Environment (for tuning runs; the defaults are what `npm run bench -- raft` reports):
//   RAFT_BENCH_PARTS   comma list of throughput,failover,catchup,idle,etcd (default: all)
//   RAFT_BENCH_ROUNDS  alternating rounds per concurrency (default 3)
//   RAFT_BENCH_ARGS    extra raftkv flags, e.g. "--tick-ms 100 --election-ticks 10"
//   RAFT_BENCH_IDLE_S  length of the idle run (default 60)
//   RAFT_BENCH_KILLS   number of kill -9 rounds (default 12)
//   RAFT_BENCH_NET     third octet of the raft members' loopback addresses (default 80), so
//                      that two runs (e.g. a long idle run beside a tuning run) do not collide

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { ProcCluster } from '../raft/proc/cluster.js';
import { metric, percentile, progress } from './stats.js';

const VALUE = 'x'.repeat(100);
const WARMUP_MS = 500;
const MEASURE_MS = 2500;
const ROUNDS = Number(process.env.RAFT_BENCH_ROUNDS ?? 3);
const CONCURRENCY = [1, 16, 256];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const parts = new Set((process.env.RAFT_BENCH_PARTS ?? 'throughput,failover,catchup,idle,etcd').split(','));
const extraArgs = (process.env.RAFT_BENCH_ARGS ?? '').split(' ').filter((a) => a !== '');

interface LoadResult {
  readonly perSecond: number;
  readonly p50: number;
  readonly p99: number;
}

/** Latencies of the measured window of one or more rounds. */
interface Samples {
  readonly latencies: number[];
  measuredMs: number;
}

function summarise(s: Samples): LoadResult {
  s.latencies.sort((a, b) => a - b);
  return { perSecond: s.latencies.length / (s.measuredMs / 1000), p50: percentile(s.latencies, 50), p99: percentile(s.latencies, 99) };
}

/** `clients` closed loops of put(key) for WARMUP_MS + MEASURE_MS; only the second window counts. */
async function closedLoop(clients: number, put: (key: string) => Promise<void>, into: Samples): Promise<void> {
  const start = performance.now();
  const measureFrom = start + WARMUP_MS;
  const end = measureFrom + MEASURE_MS;
  const latencies: number[] = [];
  let errors = 0;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let i = 0; performance.now() < end; i++) {
        // 16 bytes, cycling over 1000 keys per client.
        const key = `k${String(c).padStart(4, '0')}-${String(i % 1000).padStart(9, '0')}`;
        const t = performance.now();
        try {
          await put(key);
        } catch {
          errors++;
          continue;
        }
        const done = performance.now();
        if (t >= measureFrom && done <= end) latencies.push(done - t);
      }
    }),
  );
  if (errors > 0) progress(`${errors} failed writes at c=${clients}`);
  into.latencies.push(...latencies);
  into.measuredMs += MEASURE_MS;
}

async function raftPut(c: ProcCluster, leader: string, key: string, value: string): Promise<void> {
  const r = await c.call(leader, 'PUT', `/kv/${key}`, value);
  if (r.status !== 200) throw new Error(`PUT ${key}: ${r.status} ${JSON.stringify(r.body)}`);
}

async function applied(c: ProcCluster, id: string): Promise<number> {
  return (await c.status(id))?.appliedLocally ?? -1;
}

async function waitCaughtUp(c: ProcCluster, id: string, index: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await applied(c, id)) < index) {
    if (Date.now() > deadline) throw new Error(`${id} did not reach index ${index} within ${timeoutMs} ms`);
    await sleep(20);
  }
}

interface Contender {
  readonly name: 'raft' | 'etcd';
  readonly put: (key: string) => Promise<void>;
  readonly results: Map<number, LoadResult>;
}

/** Every concurrency level, ROUNDS alternating rounds of each contender, pooled per contender. */
async function throughput(contenders: readonly Contender[]): Promise<void> {
  for (const clients of CONCURRENCY) {
    const samples = contenders.map((): Samples => ({ latencies: [], measuredMs: 0 }));
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, who] of contenders.entries()) await closedLoop(clients, who.put, samples[i] as Samples);
    }
    for (const [i, who] of contenders.entries()) {
      const r = summarise(samples[i] as Samples);
      progress(`${who.name} c=${clients}: ${r.perSecond.toFixed(0)} writes/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms (${ROUNDS} rounds)`);
      who.results.set(clients, r);
    }
  }
}

/** Kill -9 the leader; time until a PUT sent to any survivor is acknowledged. */
async function raftFailover(c: ProcCluster, kills: number): Promise<number[]> {
  const times: number[] = [];
  for (let k = 0; k < kills; k++) {
    const leader = await c.leader();
    const survivors = c.running().filter((id) => id !== leader);
    // Some load before the kill, as a real cluster would have.
    for (let i = 0; i < 20; i++) await raftPut(c, leader, `pre-${k}-${i}`, VALUE);
    const killedAt = performance.now();
    await c.kill(leader);
    let committedAt = 0;
    let n = 0;
    // New attempts every 10 ms at every survivor without waiting for the earlier ones: a
    // follower forwards to the leader it knows, and a write forwarded to the dead one only
    // ends with a timeout.
    while (committedAt === 0 && performance.now() - killedAt < 30_000) {
      for (const s of survivors) {
        const key = `fo-${k}-${n++}`;
        raftPut(c, s, key, VALUE).then(
          () => {
            if (committedAt === 0) committedAt = performance.now();
          },
          () => undefined,
        );
      }
      await sleep(10);
    }
    if (committedAt === 0) throw new Error(`no write committed within 30 s of killing ${leader}`);
    const t = (committedAt - killedAt) / 1000;
    times.push(t);
    progress(`failover ${k + 1}/${kills}: killed ${leader}, a write committed ${t.toFixed(3)} s later`);
    await c.start(leader);
    const newLeader = await c.leader();
    await raftPut(c, newLeader, `post-${k}`, VALUE);
    const st = await c.status(newLeader);
    await waitCaughtUp(c, leader, st?.commit ?? 0, 30_000);
    // Let abandoned attempts time out before the next round.
    await sleep(1000);
  }
  return times;
}

/** A follower misses 100,000 entries, then restarts: time from its start until it has applied them. */
async function raftCatchUp(c: ProcCluster, behind: number): Promise<number> {
  const leader = await c.leader();
  const follower = c.running().find((id) => id !== leader);
  if (follower === undefined) throw new Error('no follower');
  await c.stop(follower);
  let next = 0;
  await Promise.all(
    Array.from({ length: 128 }, async () => {
      while (next < behind) {
        const i = next++;
        await raftPut(c, leader, `bulk-${String(i).padStart(11, '0')}`, VALUE);
      }
    }),
  );
  const target = (await c.status(leader))?.commit ?? 0;
  progress(`catch-up: ${follower} is ${behind} writes behind (leader commit ${target}); restarting it`);
  await c.start(follower);
  const t = performance.now();
  await waitCaughtUp(c, follower, target, 120_000);
  const took = (performance.now() - t) / 1000;
  const st = await c.status(follower);
  progress(`catch-up: ${follower} applied ${target} after ${took.toFixed(3)} s; its snapshot is at ${String(st?.snapshotIndex)}`);
  return took;
}

async function maxTerm(c: ProcCluster): Promise<number> {
  const all = await Promise.all(c.running().map((id) => c.status(id)));
  return Math.max(...all.map((s) => s?.term ?? 0));
}

async function raftIdle(c: ProcCluster, seconds: number): Promise<number> {
  const before = await Promise.all(c.running().map((id) => c.status(id)));
  const termBefore = Math.max(...before.map((s) => s?.term ?? 0));
  await sleep(seconds * 1000);
  const after = await Promise.all(c.running().map((id) => c.status(id)));
  const termAfter = Math.max(...after.map((s) => s?.term ?? 0));
  return termAfter - termBefore;
}

// ---------------------------------------------------------------------------- etcd

interface EtcdCluster {
  readonly procs: ChildProcess[];
  readonly endpoints: string[];
}

async function startEtcd(root: string): Promise<EtcdCluster> {
  const names = ['e1', 'e2', 'e3'];
  const ip = (i: number): string => `127.0.81.${i + 1}`;
  const initial = names.map((n, i) => `${n}=http://${ip(i)}:2380`).join(',');
  const procs = names.map((name, i) =>
    spawn(
      '/usr/bin/etcd',
      [
        '--name', name,
        '--data-dir', join(root, name),
        '--listen-client-urls', `http://${ip(i)}:2379`,
        '--advertise-client-urls', `http://${ip(i)}:2379`,
        '--listen-peer-urls', `http://${ip(i)}:2380`,
        '--initial-advertise-peer-urls', `http://${ip(i)}:2380`,
        '--initial-cluster', initial,
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', 'swarmshift-bench',
        '--log-level', 'error',
      ],
      { stdio: 'ignore' },
    ),
  );
  return { procs, endpoints: names.map((_, i) => `http://${ip(i)}:2379`) };
}

async function etcdLeader(endpoints: string[]): Promise<string> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    for (const ep of endpoints) {
      const client = new Etcd3({ hosts: ep, dialTimeout: 1000 });
      try {
        const st = await client.maintenance.status();
        if (st.leader !== '0' && st.leader === st.header.member_id) return ep;
      } catch {
        // not up yet
      } finally {
        client.close();
      }
    }
    await sleep(200);
  }
  throw new Error('etcd elected no leader within 30 s');
}

async function stopEtcd(cluster: EtcdCluster): Promise<void> {
  await Promise.all(
    cluster.procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.pid === undefined || p.exitCode !== null) return resolve();
          p.once('exit', () => resolve());
          process.kill(p.pid, 'SIGTERM');
        }),
    ),
  );
}

/** A running etcd cluster and a client to its leader, as a contender. */
async function etcdContender(root: string): Promise<{ contender: Contender; close: () => Promise<void> }> {
  const cluster = await startEtcd(root);
  try {
    const leader = await etcdLeader(cluster.endpoints);
    const client = new Etcd3({ hosts: leader });
    const contender: Contender = {
      name: 'etcd',
      put: async (key) => {
        await client.put(key).value(VALUE);
      },
      results: new Map(),
    };
    return {
      contender,
      close: async () => {
        client.close();
        await stopEtcd(cluster);
      },
    };
  } catch (err) {
    await stopEtcd(cluster);
    throw err;
  }
}

// ---------------------------------------------------------------------------- main

function report(who: Contender): void {
  for (const [n, r] of who.results) {
    metric(`${who.name}_writes_per_s_c${n}`, r.perSecond, 'writes/s');
    metric(`${who.name}_commit_p50_ms_c${n}`, r.p50, 'ms');
    metric(`${who.name}_commit_p99_ms_c${n}`, r.p99, 'ms');
  }
}

export async function benchRaft(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'bench-raft-'));
  const c = new ProcCluster({ root, net: Number(process.env.RAFT_BENCH_NET ?? 80), args: extraArgs });
  try {
    for (const id of ['n1', 'n2', 'n3']) c.define(id);
    await Promise.all(['n1', 'n2', 'n3'].map((id) => c.start(id)));
    await c.leader();
    if (parts.has('idle')) {
      const seconds = Number(process.env.RAFT_BENCH_IDLE_S ?? 60);
      progress(`idle run: ${seconds} s with no load`);
      metric('raft_idle_elections', await raftIdle(c, seconds), `per_${seconds}s`);
    }
    const termBefore = await maxTerm(c);
    if (parts.has('throughput') || parts.has('etcd')) {
      const contenders: Contender[] = [];
      let raft: Contender | null = null;
      if (parts.has('throughput')) {
        const leader = await c.leader();
        raft = { name: 'raft', put: (key) => raftPut(c, leader, key, VALUE), results: new Map() };
        contenders.push(raft);
      }
      const etcd = parts.has('etcd') ? await etcdContender(join(root, 'etcd')) : null;
      try {
        if (etcd !== null) contenders.push(etcd.contender);
        await throughput(contenders);
      } finally {
        await etcd?.close();
      }
      for (const who of contenders) report(who);
      if (raft !== null && etcd !== null) {
        for (const n of CONCURRENCY) {
          const a = raft.results.get(n);
          const b = etcd.contender.results.get(n);
          if (a === undefined || b === undefined) continue;
          metric(`raft_throughput_c${n}_ratio_vs_etcd`, a.perSecond / b.perSecond, 'x');
          // Above 1 means raft is faster (lower p99) than etcd.
          metric(`raft_commit_p99_c${n}_ratio_vs_etcd`, b.p99 / a.p99, 'x');
        }
      }
    }
    if (parts.has('failover')) {
      const times = (await raftFailover(c, Number(process.env.RAFT_BENCH_KILLS ?? 12))).sort((a, b) => a - b);
      metric('raft_failover_median_s', percentile(times, 50), 's');
      metric('raft_failover_max_s', times[times.length - 1] ?? NaN, 's');
      metric('raft_failover_kills', times.length, 'kills');
    }
    if (parts.has('catchup')) metric('raft_catchup_100k_s', await raftCatchUp(c, 100_000), 's');
    // Failover rounds elect on purpose; the other phases should elect no one.
    if (!parts.has('failover')) metric('raft_elections_under_load', (await maxTerm(c)) - termBefore, 'elections');
    const stalls = await Promise.all(c.running().map((id) => c.status(id)));
    metric('raft_event_loop_max_stall_ms', Math.max(...stalls.map((s) => s?.eventLoopMaxStallMs ?? 0)), 'ms');
  } finally {
    await c.stopAll();
    await rm(root, { recursive: true, force: true });
  }
}
