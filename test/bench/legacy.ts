// `npm run bench -- legacy`: the classic manager against the engines it fronts, from one
// run over the same engines. Per-call latency of the calls scripts make most, direct to
// one engine and through `swarm manage`; `docker run -d` throughput (create + start, the
// two calls the CLI makes) with 1 and 8 concurrent clients, direct and through the manager
// interleaved so that the machine's load drift does not pick a winner.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestbed } from '../testbed/index.js';
import { startManager } from '../support/manager.js';
import { waitFor, docker } from '../support/docker-cli.js';
import { metric, percentile, progress } from './stats.js';

const api = '/v1.41';

function call(agent: http.Agent, base: URL, method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ host: base.hostname, port: base.port, method, path, agent, headers: data ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {} }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function latency(base: URL, path: string, n: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < 50; i++) await call(agent, base, 'GET', path);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    const r = await call(agent, base, 'GET', path);
    out.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (r.status !== 200) throw new Error(`GET ${path} answered ${r.status}: ${r.text}`);
  }
  agent.destroy();
  return out.sort((a, b) => a - b);
}

/** One `docker run -d` as the CLI makes it: create, then start; the milliseconds of each. */
async function runOne(agent: http.Agent, base: URL): Promise<{ create: number; start: number }> {
  const t0 = process.hrtime.bigint();
  const created = await call(agent, base, 'POST', `${api}/containers/create`, { Image: 'busybox', Cmd: ['sleep', '600'], HostConfig: {} });
  if (created.status !== 201) throw new Error(`create answered ${created.status}: ${created.text}`);
  const t1 = process.hrtime.bigint();
  const id = (JSON.parse(created.text) as { Id: string }).Id;
  const started = await call(agent, base, 'POST', `${api}/containers/${id}/start`);
  if (started.status !== 204) throw new Error(`start answered ${started.status}: ${started.text}`);
  const t2 = process.hrtime.bigint();
  return { create: Number(t1 - t0) / 1e6, start: Number(t2 - t1) / 1e6 };
}

interface Sequential {
  create: number[];
  start: number[];
  /** Containers per second of create + start time. */
  perSecond: number;
}

/**
 * One client, one container at a time, `n` each way. Direct and through the manager
 * alternate container by container (the order flipped every pair), and the direct ones go
 * to the engines in turn, as the manager spreads its own: load drift on a shared machine
 * and the engines' own differences fall on both alike. A run of a few seconds each way,
 * one after the other, measured the drift between the two windows as much as the manager
 * (0.84x to 0.98x over the same build). A 30 ms pause follows each container, less than
 * the `docker` CLI's own start-up in a script that runs it in a loop; it is not counted.
 */
async function sequential(directs: URL[], swarm: URL, n: number): Promise<{ direct: Sequential; swarm: Sequential }> {
  const agents = { direct: new http.Agent({ keepAlive: true, maxSockets: 1 }), swarm: new http.Agent({ keepAlive: true, maxSockets: 1 }) };
  const out = { direct: { create: [] as number[], start: [] as number[] }, swarm: { create: [] as number[], start: [] as number[] } };
  const warmup = 4;
  for (let i = 0; i < n + warmup; i++) {
    for (const side of i % 2 === 0 ? (['swarm', 'direct'] as const) : (['direct', 'swarm'] as const)) {
      const base = side === 'swarm' ? swarm : directs[i % directs.length];
      if (!base) throw new Error('no engine');
      const r = await runOne(agents[side], base);
      if (i >= warmup) {
        out[side].create.push(r.create);
        out[side].start.push(r.start);
      }
      await sleep(30);
    }
  }
  agents.direct.destroy();
  agents.swarm.destroy();
  const summed = (s: { create: number[]; start: number[] }): Sequential => {
    const ms = s.create.reduce((a, b) => a + b, 0) + s.start.reduce((a, b) => a + b, 0);
    return { create: s.create.sort((a, b) => a - b), start: s.start.sort((a, b) => a - b), perSecond: (s.create.length * 1000) / ms };
  };
  return { direct: summed(out.direct), swarm: summed(out.swarm) };
}

/** `total` containers (create + start) over `clients` concurrent clients; seconds taken. */
async function concurrentRound(base: URL, clients: number, total: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  let next = 0;
  const t = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < total) {
        next++;
        await runOne(agent, base);
      }
    }),
  );
  agent.destroy();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

async function removeAll(host: string): Promise<void> {
  const ids = (await docker(host, ['ps', '-aq'])).split('\n').filter(Boolean);
  for (let i = 0; i < ids.length; i += 50) await docker(host, ['rm', '-f', ...ids.slice(i, i + 50)]);
}

export async function benchLegacy(): Promise<void> {
  progress('starting 3 engines');
  const bed = await startTestbed({ engines: 3 });
  const mgr = await startManager(['--engine-refresh-min-interval', '30s', '--engine-refresh-max-interval', '60s', `nodes://${bed.engines.map((e) => e.hostPort).join(',')}`]);
  try {
    const engine = bed.engines[0];
    if (!engine) throw new Error('no engine');
    await waitFor('engines healthy', async () => (await docker(mgr.host, ['info'])).split('Status: Healthy').length - 1 === 3, 60_000);
    const direct = new URL(`http://${engine.hostPort}`);
    const directs = bed.engines.map((e) => new URL(`http://${e.hostPort}`));
    const swarm = new URL(mgr.host.replace('tcp://', 'http://'));

    progress('placing 30 containers (10 per engine) so the lists are not empty');
    for (let i = 0; i < 30; i++) await docker(mgr.host, ['run', '-d', 'busybox', 'sleep', '600']);
    const someId = (await docker(engine.url, ['ps', '-q', '--no-trunc'])).split('\n')[0] ?? '';

    const paths: Array<[string, string]> = [
      ['containers_json', `${api}/containers/json?all=1`],
      ['info', `${api}/info`],
      ['container_inspect', `${api}/containers/${someId}/json`],
    ];
    for (const [name, path] of paths) {
      progress(`latency of GET ${path.replace(someId, '{id}')}: 1000 calls each, direct and through the manager`);
      const d = await latency(direct, path, 1000);
      const s = await latency(swarm, path, 1000);
      metric(`legacy_${name}_p50_ms_direct`, percentile(d, 50), 'ms');
      metric(`legacy_${name}_p99_ms_direct`, percentile(d, 99), 'ms');
      metric(`legacy_${name}_p50_ms_swarm`, percentile(s, 50), 'ms');
      metric(`legacy_${name}_p99_ms_swarm`, percentile(s, 99), 'ms');
      metric(`legacy_${name}_p50_ratio_swarm_vs_direct`, percentile(s, 50) / percentile(d, 50), 'x');
      if (name === 'container_inspect') metric('legacy_proxy_added_p50_ms', percentile(s, 50) - percentile(d, 50), 'ms');
    }
    await removeAll(mgr.host);

    const n = Number(process.env.LEGACY_BENCH_RUNS ?? 60);
    progress(`docker run -d (create+start), 1 client: ${n} containers direct (engines in turn) and ${n} through the manager, alternating`);
    const seq = await sequential(directs, swarm, n);
    await Promise.all(bed.engines.map((e) => removeAll(e.url)));
    metric('legacy_run_d_per_s_c1_direct', seq.direct.perSecond, 'containers/s');
    metric('legacy_run_d_per_s_c1_swarm', seq.swarm.perSecond, 'containers/s');
    metric('legacy_run_d_c1_ratio_swarm_vs_direct', seq.swarm.perSecond / seq.direct.perSecond, 'x');
    for (const step of ['create', 'start'] as const) {
      metric(`legacy_run_d_c1_${step}_p50_ms_direct`, percentile(seq.direct[step], 50), 'ms');
      metric(`legacy_run_d_c1_${step}_p50_ms_swarm`, percentile(seq.swarm[step], 50), 'ms');
    }

    // Concurrent: rounds alternate, direct to one engine (another each round) and through
    // the manager over all three; the ratio is how creates scale with the engines.
    const clients = 8;
    const perRound = 32;
    const rounds = Number(process.env.LEGACY_BENCH_ROUNDS ?? 3);
    const seconds = { direct: 0, swarm: 0 };
    for (let round = 0; round < rounds; round++) {
      for (const side of round % 2 === 0 ? (['direct', 'swarm'] as const) : (['swarm', 'direct'] as const)) {
        const base = side === 'swarm' ? swarm : directs[round % directs.length];
        if (!base) throw new Error('no engine');
        progress(`docker run -d (create+start) x${perRound}, ${clients} clients, round ${round + 1}/${rounds}, ${side === 'swarm' ? 'through the manager over 3 engines' : 'direct to one engine'}`);
        seconds[side] += await concurrentRound(base, clients, perRound);
        await Promise.all(bed.engines.map((e) => removeAll(e.url)));
      }
    }
    const total = perRound * rounds;
    metric(`legacy_run_d_per_s_c${clients}_direct`, total / seconds.direct, 'containers/s');
    metric(`legacy_run_d_per_s_c${clients}_swarm`, total / seconds.swarm, 'containers/s');
    metric(`legacy_run_d_c${clients}_ratio_swarm_vs_direct`, seconds.direct / seconds.swarm, 'x');
    // The engines share this machine's cores, so a third engine adds no CPU here; what
    // shows that creates do not queue behind a lock (classic's did) is that the manager
    // gains as much from concurrency as one engine does.
    metric(`legacy_run_d_swarm_c${clients}_vs_c1`, total / seconds.swarm / seq.swarm.perSecond, 'x');
    metric(`legacy_run_d_direct_c${clients}_vs_c1`, total / seconds.direct / seq.direct.perSecond, 'x');

    await scale(bed.engines.map((e) => new URL(`http://${e.hostPort}`)), swarm, mgr.child.pid);
  } finally {
    await mgr.stop();
    await bed.close();
  }
}

function rssMb(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m?.[1] ? Number(m[1]) / 1024 : NaN;
}

/**
 * A larger cluster: `LEGACY_BENCH_SCALE` containers per engine (created, not started, so
 * that they cost the engines disk and not CPU), then the list every `docker ps -a` makes,
 * direct to one engine and through the manager over all of them, and the manager's
 * memory before and after it caches them.
 */
async function scale(directs: URL[], swarm: URL, managerPid: number | undefined): Promise<void> {
  const perEngine = Number(process.env.LEGACY_BENCH_SCALE ?? 200);
  const before = rssMb(managerPid);
  progress(`scale: creating ${perEngine} containers on each of ${directs.length} engines`);
  await Promise.all(
    directs.map(async (base) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
      let next = 0;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (next < perEngine) {
            next++;
            const r = await call(agent, base, 'POST', `${api}/containers/create`, { Image: 'busybox', Cmd: ['true'], HostConfig: {} });
            if (r.status !== 201) throw new Error(`create answered ${r.status}: ${r.text}`);
          }
        }),
      );
      agent.destroy();
    }),
  );
  const total = perEngine * directs.length;
  const listAll = `${api}/containers/json?all=1`;
  await waitFor(`the manager sees ${total} containers`, async () => (JSON.parse((await call(new http.Agent(), swarm, 'GET', listAll)).text) as unknown[]).length >= total, 120_000);
  const first = directs[0];
  if (!first) throw new Error('no engine');
  progress(`scale: GET /containers/json?all=1, 200 calls each: one engine (${perEngine} containers) and the manager (${total})`);
  const d = await latency(first, listAll, 200);
  const s = await latency(swarm, listAll, 200);
  metric(`legacy_scale_containers_json_p50_ms_direct_${perEngine}`, percentile(d, 50), 'ms');
  metric(`legacy_scale_containers_json_p50_ms_swarm_${total}`, percentile(s, 50), 'ms');
  metric('legacy_scale_containers_json_p50_ratio_swarm_vs_direct', percentile(s, 50) / percentile(d, 50), 'x');
  const after = rssMb(managerPid);
  metric('legacy_manager_rss_mb_idle', before, 'MB');
  metric(`legacy_manager_rss_mb_${total}_containers`, after, 'MB');
  metric('legacy_manager_kb_per_container', ((after - before) * 1024) / total, 'kB');
  await Promise.all(directs.map((e) => removeAll(`tcp://${e.host}`)));
}
