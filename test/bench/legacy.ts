// `npm run bench -- legacy`: the classic manager against the engines it fronts, from one
// run over the same engines. Per-call latency of the calls scripts make most, direct to
// one engine and through `swarm manage`; `docker run -d` throughput (create + start, the
// two calls the CLI makes) with 1 and 8 concurrent clients.
import http from 'node:http';
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

/** create + start, `total` containers over `clients` concurrent clients; containers per second. */
async function runThroughput(base: URL, clients: number, total: number): Promise<{ perSecond: number; ids: string[] }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const ids: string[] = [];
  let next = 0;
  const t = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < total) {
        next++;
        const created = await call(agent, base, 'POST', `${api}/containers/create`, { Image: 'busybox', Cmd: ['sleep', '600'], HostConfig: {} });
        if (created.status !== 201) throw new Error(`create answered ${created.status}: ${created.text}`);
        const id = (JSON.parse(created.text) as { Id: string }).Id;
        const started = await call(agent, base, 'POST', `${api}/containers/${id}/start`);
        if (started.status !== 204) throw new Error(`start answered ${started.status}: ${started.text}`);
        ids.push(id);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  agent.destroy();
  return { perSecond: total / seconds, ids };
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

    for (const clients of [1, 8]) {
      const total = clients === 1 ? 40 : 96;
      progress(`docker run -d (create+start) x${total}, ${clients} client(s), direct to one engine`);
      const d = await runThroughput(direct, clients, total);
      await removeAll(engine.url);
      progress(`docker run -d (create+start) x${total}, ${clients} client(s), through the manager over 3 engines`);
      const s = await runThroughput(swarm, clients, total);
      await removeAll(mgr.host);
      metric(`legacy_run_d_per_s_c${clients}_direct`, d.perSecond, 'containers/s');
      metric(`legacy_run_d_per_s_c${clients}_swarm`, s.perSecond, 'containers/s');
      metric(`legacy_run_d_c${clients}_ratio_swarm_vs_direct`, s.perSecond / d.perSecond, 'x');
    }
  } finally {
    await mgr.stop();
    await bed.close();
  }
}
