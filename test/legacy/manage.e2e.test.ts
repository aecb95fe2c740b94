// `swarm manage` end to end: three real engines from the test bed, the real manager
// binary, and the real docker CLI (28.x and Debian's 20.10) as the client.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { execFile } from 'node:child_process';
import WebSocket from 'ws';
import { startTestbed, type Testbed } from '../testbed/index.js';
import { debianDocker, docker, dockerRun, dockerSpawn, waitFor } from '../support/docker-cli.js';
import { startManager, type ManagerProcess } from '../support/manager.js';

let bed: Testbed;
let mgr: ManagerProcess;
let host: string;
let work: string;

function names(): string[] {
  return bed.engines.map((e) => e.name);
}

async function nodeOf(ref: string): Promise<string> {
  return docker(host, ['inspect', '-f', '{{.Node.Name}}', ref]);
}

async function clean(): Promise<void> {
  const ids = (await docker(host, ['ps', '-aq'])).split('\n').filter(Boolean);
  if (ids.length > 0) await docker(host, ['rm', '-f', ...ids]);
}

/** A raw HTTP call to the manager, for what the CLI will not send (bad input). */
function raw(method: string, path: string, body?: string): Promise<{ status: number; json: unknown }> {
  const url = new URL(host.replace('tcp://', 'http://'));
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, headers: body === undefined ? {} : { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        let json: unknown = text;
        try {
          json = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('swarm manage over three real engines', { timeout: 15 * 60_000 }, () => {
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'swarmshift-manage-'));
    bed = await startTestbed({ engines: 3, labels: [{ zone: 'a' }, { zone: 'b' }, { zone: 'b', containerslots: '4' }] });
    mgr = await startManager(['--engine-refresh-min-interval', '1s', '--engine-refresh-max-interval', '2s', '--engine-failure-retry', '2', `nodes://${bed.engines.map((e) => e.hostPort).join(',')}`]);
    host = mgr.host;
    await waitFor('three healthy engines', async () => (await docker(host, ['info'])).split('Status: Healthy').length - 1 === 3);
  });

  after(async () => {
    await mgr?.stop();
    await bed?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('docker version and info speak for the cluster', async () => {
    const version = await docker(host, ['version', '-f', '{{.Server.Version}} {{.Server.APIVersion}}']);
    assert.match(version, /^swarm\/1\.2\.9 1\.4\d$/);
    const info = await docker(host, ['info']);
    assert.match(info, /Role: primary/);
    assert.match(info, /Strategy: spread/);
    assert.match(info, /Filters: health, port, containerslots, dependency, affinity, constraint, whitelist/);
    assert.match(info, /Nodes: 3/);
    for (const e of bed.engines) assert.match(info, new RegExp(`${e.name}: ${e.hostPort.replace(/\./g, '\\.')}`));
    assert.match(info, /Labels: .*zone=a/);
  });

  test('run with output, run -d, ps -a with node-prefixed names, logs, stop, rm', async () => {
    assert.equal(await docker(host, ['run', '--rm', 'busybox', 'echo', 'hello from the cluster']), 'hello from the cluster');
    const id = await docker(host, ['run', '-d', '--name', 'greeter', 'busybox', 'sh', '-c', 'echo ready; sleep 300']);
    assert.match(id, /^[0-9a-f]{64}$/);
    const node = await nodeOf('greeter');
    assert.ok(names().includes(node));
    const ps = await docker(host, ['ps', '-a', '--format', '{{.Names}}']);
    assert.ok(ps.split('\n').includes(`${node}/greeter`), ps);
    assert.equal(await docker(host, ['ps', '--filter', `node=${node}`, '--format', '{{.Names}}']), `${node}/greeter`);
    await waitFor('logs', async () => (await docker(host, ['logs', 'greeter'])) === 'ready');
    await docker(host, ['stop', '-t', '1', 'greeter']);
    assert.match(await docker(host, ['ps', '-a', '--filter', 'name=greeter', '--format', '{{.Status}}']), /^Exited/);
    await docker(host, ['rm', `${node}/greeter`]);
    assert.equal(await docker(host, ['ps', '-a', '--filter', 'name=greeter', '-q']), '');
    const missing = await dockerRun(host, ['inspect', 'greeter']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /No such (container|object): greeter/);
  });

  test('exec with and without a tty, attach, cp both ways', async () => {
    await docker(host, ['run', '-d', '--name', 'box', 'busybox', 'sleep', '300']);
    assert.equal(await docker(host, ['exec', 'box', 'sh', '-c', 'echo out; echo err >&2']), 'out');
    const tty = await new Promise<string>((resolve, reject) => {
      execFile('script', ['-qec', `${'/usr/local/bin/docker'} -H ${host} exec -it box sh -c 'echo tty:$(tty)'`, '/dev/null'], { timeout: 30_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout.toString())));
    });
    assert.match(tty, /tty:\/dev\/pts\/\d+/);
    // attach to a container that prints after the client is attached
    await docker(host, ['run', '-d', '--name', 'speaker', 'busybox', 'sh', '-c', 'sleep 2; echo attached-output']);
    const att2 = dockerSpawn(host, ['attach', '--no-stdin', 'speaker']);
    assert.equal(await att2.exited, 0);
    assert.match(att2.output(), /attached-output/);
    const local = join(work, 'in.txt');
    writeFileSync(local, 'copied in\n');
    await docker(host, ['cp', local, 'box:/tmp/in.txt']);
    assert.equal(await docker(host, ['exec', 'box', 'cat', '/tmp/in.txt']), 'copied in');
    await docker(host, ['cp', 'box:/tmp/in.txt', join(work, 'out.txt')]);
    assert.equal(readFileSync(join(work, 'out.txt'), 'utf8'), 'copied in\n');
    await clean();
  });

  test('spread places on every engine; binpack fills one', async () => {
    for (let i = 0; i < 3; i++) await docker(host, ['run', '-d', '--name', `s${i}`, 'busybox', 'sleep', '300']);
    const spread = new Set(await Promise.all([0, 1, 2].map((i) => nodeOf(`s${i}`))));
    assert.equal(spread.size, 3);
    await clean();
    const bin = await startManager(['--strategy', 'binpack', `nodes://${bed.engines.map((e) => e.hostPort).join(',')}`]);
    try {
      await waitFor('binpack manager sees the engines', async () => (await docker(bin.host, ['info'])).split('Status: Healthy').length - 1 === 3);
      for (let i = 0; i < 3; i++) await docker(bin.host, ['run', '-d', '-m', '8m', '--name', `b${i}`, 'busybox', 'sleep', '300']);
      const packed = new Set(await Promise.all([0, 1, 2].map((i) => docker(bin.host, ['inspect', '-f', '{{.Node.Name}}', `b${i}`]))));
      assert.equal(packed.size, 1);
    } finally {
      await bin.stop();
      await clean();
    }
  });

  test('constraint, affinity, port, dependency and containerslots filters', async () => {
    const [e0, e1, e2] = bed.engines;
    assert.ok(e0 && e1 && e2);
    await docker(host, ['run', '-d', '--name', 'c-a', '-e', 'constraint:zone==a', 'busybox', 'sleep', '300']);
    assert.equal(await nodeOf('c-a'), e0.name);
    await docker(host, ['run', '-d', '--name', 'c-node', '--label', `com.docker.swarm.constraints=["node==${e1.name}"]`, 'busybox', 'sleep', '300']);
    assert.equal(await nodeOf('c-node'), e1.name);
    const labels = JSON.parse(await docker(host, ['inspect', '-f', '{{json .Config.Labels}}', 'c-a'])) as Record<string, string>;
    assert.deepEqual(JSON.parse(labels['com.docker.swarm.constraints'] ?? '[]'), ['zone==a']);
    assert.match(labels['com.docker.swarm.id'] ?? '', /^[0-9a-f]{64}$/);
    const none = await dockerRun(host, ['run', '-d', '-e', 'constraint:zone==mars', 'busybox', 'sleep', '1']);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /Unable to find a node that satisfies the following conditions/);
    assert.match(none.stderr, /zone==mars/);

    await docker(host, ['run', '-d', '--name', 'friend', '-e', 'affinity:container==c-node', 'busybox', 'sleep', '300']);
    assert.equal(await nodeOf('friend'), e1.name);

    await docker(host, ['run', '-d', '--name', 'vols', '--volumes-from', 'c-a', 'busybox', 'sleep', '300']);
    assert.equal(await nodeOf('vols'), e0.name);
    await docker(host, ['run', '-d', '--name', 'netc', '--net', 'container:c-node', 'busybox', 'sleep', '300']);
    assert.equal(await nodeOf('netc'), e1.name);

    const portNodes = new Set<string>();
    for (let i = 0; i < 3; i++) {
      await docker(host, ['run', '-d', '--name', `p${i}`, '-p', '18080:80', 'busybox', 'sleep', '300']);
      portNodes.add(await nodeOf(`p${i}`));
    }
    assert.equal(portNodes.size, 3);
    // The cached entry (patched from inspect after start) shows ports as the engine does,
    // but for the address: a port published on every address is shown on the node's, as
    // classic showed it, in `docker ps` and in `docker port` (inspect).
    const p0 = await nodeOf('p0');
    const owner = bed.engines.find((e) => e.name === p0);
    assert.ok(owner);
    const direct = await docker(owner.url, ['ps', '--filter', 'name=p0', '--format', '{{.Ports}} {{.Status}}']);
    assert.match(direct, /0\.0\.0\.0:18080->80\/tcp/);
    assert.equal(await docker(host, ['ps', '--filter', 'name=p0', '--format', '{{.Ports}} {{.Status}}']), direct.replaceAll('0.0.0.0:', `${owner.address}:`));
    assert.match(await docker(host, ['port', 'p0', '80']), new RegExp(`^${owner.address.replaceAll('.', '\\.')}:18080$`, 'm'));
    assert.match(await docker(owner.url, ['port', 'p0', '80']), /^0\.0\.0\.0:18080$/m);
    const fourth = await dockerRun(host, ['run', '-d', '-p', '18080:80', 'busybox', 'sleep', '300']);
    assert.notEqual(fourth.code, 0);
    assert.match(fourth.stderr, /port 18080/);
    await clean();

    // e2 has the engine label containerslots=4: a fifth container pinned there is refused.
    let placed = 0;
    for (let i = 0; i < 6; i++) {
      const r = await dockerRun(host, ['run', '-d', '-e', `constraint:node==${e2.name}`, 'busybox', 'sleep', '300']);
      if (r.code !== 0) {
        assert.match(r.stderr, /available container slots/);
        break;
      }
      placed++;
    }
    assert.equal(placed, 4);
    await clean();
  });

  test('concurrent creates with one host port never collide', async () => {
    const results = await Promise.all([0, 1, 2, 3, 4].map((i) => dockerRun(host, ['run', '-d', '--name', `race${i}`, '-p', '18181:80', 'busybox', 'sleep', '300'])));
    const ok = results.filter((r) => r.code === 0);
    assert.equal(ok.length, 3, results.map((r) => r.stderr).join('\n'));
    const nodes = await Promise.all(ok.map((r) => nodeOf(r.stdout.trim())));
    assert.equal(new Set(nodes).size, 3);
    const named = await Promise.all([0, 1, 2, 3].map(() => dockerRun(host, ['create', '--name', 'only-one', 'busybox', 'true'])));
    assert.equal(named.filter((r) => r.code === 0).length, 1, named.map((r) => r.stderr).join('\n'));
    assert.ok(named.filter((r) => r.code !== 0).every((r) => /Conflict\. The container name "\/only-one" is already in use/.test(r.stderr)));
    await clean();
  });

  test('images: pull from a local registry lands on every engine; networks, volumes, events', async () => {
    const registry = await bed.startRegistry();
    try {
      const e0 = bed.engines[0];
      assert.ok(e0);
      await docker(e0.url, ['tag', 'busybox:latest', `${registry.address}/tools/busybox:1`]);
      await docker(e0.url, ['push', `${registry.address}/tools/busybox:1`]);
      const pull = await docker(host, ['pull', `${registry.address}/tools/busybox:1`]);
      assert.ok(pull.length > 0);
      for (const e of bed.engines) {
        assert.match(await docker(e.url, ['images', '--format', '{{.Repository}}:{{.Tag}}']), new RegExp(`${registry.address}/tools/busybox:1`));
      }
      assert.match(await docker(host, ['images', '--format', '{{.Repository}}:{{.Tag}}']), /tools\/busybox:1/);
    } finally {
      await registry.stop();
    }
    const net = await docker(host, ['network', 'create', 'appnet']);
    assert.match(net, /^[0-9a-f]{64}$/);
    const nets = await docker(host, ['network', 'ls', '--format', '{{.Name}}']);
    assert.match(nets, /\/appnet$/m);
    const holder = (nets.split('\n').find((n) => n.endsWith('/appnet')) ?? '').split('/')[0] ?? '';
    await docker(host, ['run', '-d', '--name', 'onnet', '--net', 'appnet', 'busybox', 'sleep', '300']);
    assert.equal(await nodeOf('onnet'), holder);
    await docker(host, ['volume', 'create', 'data1']);
    const vols = await docker(host, ['volume', 'ls', '--format', '{{.Name}}']);
    for (const n of names()) assert.match(vols, new RegExp(`^${n}/data1$`, 'm'));

    const ev = dockerSpawn(host, ['events', '--filter', 'type=container', '--format', '{{.Action}} {{.Actor.Attributes.name}}']);
    await new Promise((r) => setTimeout(r, 500));
    await docker(host, ['run', '--rm', '--name', 'evented', 'busybox', 'true']);
    await waitFor('start event through the manager', () => /start evented/.test(ev.output()), 10_000);
    ev.child.kill();
    await clean();
    await docker(host, ['network', 'rm', `${holder}/appnet`]);
  });

  test('images: build on one engine, tag, history, save | load onto every engine, rmi; system df', async () => {
    const ctxDir = join(work, 'build');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(ctxDir, { recursive: true });
    writeFileSync(join(ctxDir, 'Dockerfile'), 'FROM busybox\nRUN echo built > /built.txt\nCMD ["cat", "/built.txt"]\n');
    await docker(host, ['build', '-q', '-t', 'e2e/built:1', ctxDir], { env: { DOCKER_BUILDKIT: '0' } });
    const holders = [];
    for (const e of bed.engines) if ((await docker(e.url, ['images', '-q', 'e2e/built:1'])) !== '') holders.push(e.name);
    assert.equal(holders.length, 1, `built on ${holders.join(', ')}`);
    await docker(host, ['tag', 'e2e/built:1', 'e2e/built:latest']);
    assert.match(await docker(host, ['history', 'e2e/built:1']), /echo built > \/built.txt/);
    assert.equal(await docker(host, ['run', '--rm', 'e2e/built:1']), 'built');
    const tar = join(work, 'built.tar');
    await docker(host, ['save', '-o', tar, 'e2e/built:1']);
    await docker(host, ['load', '-i', tar]);
    for (const e of bed.engines) assert.notEqual(await docker(e.url, ['images', '-q', 'e2e/built:1']), '', `not loaded on ${e.name}`);
    await docker(host, ['rmi', 'e2e/built:1', 'e2e/built:latest']);
    for (const e of bed.engines) assert.equal(await docker(e.url, ['images', '-q', 'e2e/built:1']), '', `still on ${e.name}`);
    const missing = await dockerRun(host, ['rmi', 'e2e/built:1']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /No such image/);
    assert.match(await docker(host, ['system', 'df']), /^TYPE\s+TOTAL/m);
  });

  test('websocket attach through the manager; a manager on a unix socket', async () => {
    const id = await docker(host, ['run', '-d', 'busybox', 'sh', '-c', 'sleep 2; echo over-websocket; sleep 1']);
    const url = `${host.replace('tcp://', 'ws://')}/v1.41/containers/${id}/attach/ws?stream=1&stdout=1&stderr=1`;
    const received = await new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(url);
      let text = '';
      ws.on('message', (data: Buffer) => {
        text += data.toString();
        if (text.includes('over-websocket')) {
          ws.close();
          resolve(text);
        }
      });
      ws.on('error', reject);
      setTimeout(() => reject(new Error(`no output over the websocket within 15 s; got ${JSON.stringify(text)}`)), 15_000);
    });
    assert.match(received, /over-websocket/);
    await docker(host, ['rm', '-f', id]);

    const sock = join(work, 'swarm.sock');
    const onSocket = await startManager(['-H', '127.0.0.1:0', '-H', `unix://${sock}`, `nodes://${bed.engines.map((e) => e.hostPort).join(',')}`]);
    try {
      await waitFor('the unix-socket manager sees the engines', async () => (await docker(`unix://${sock}`, ['info'])).split('Status: Healthy').length - 1 === 3);
      assert.equal(await docker(`unix://${sock}`, ['run', '--rm', 'busybox', 'echo', 'over a unix socket']), 'over a unix socket');
    } finally {
      await onSocket.stop();
    }
  });

  test("Debian's docker 20.10 client works too", async () => {
    const out = await docker(host, ['run', '--rm', 'busybox', 'echo', 'old client'], { bin: debianDocker });
    assert.equal(out, 'old client');
    assert.match(await docker(host, ['info'], { bin: debianDocker }), /Nodes: 3/);
  });

  test('docker-compose 1.29: up -d, ps, scale', async () => {
    const dir = join(work, 'compose');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'docker-compose.yml'), 'version: "2"\nservices:\n  web:\n    image: busybox\n    command: sleep 300\n');
    const compose = (args: string[]): Promise<string> =>
      new Promise((resolve, reject) =>
        execFile('docker-compose', ['-p', 'e2e', ...args], { cwd: dir, env: { ...process.env, DOCKER_HOST: host }, timeout: 120_000 }, (err, stdout, stderr) =>
          err ? reject(new Error(`docker-compose ${args.join(' ')}: ${stderr.toString()}`)) : resolve(stdout.toString() + stderr.toString()),
        ),
      );
    await compose(['up', '-d']);
    assert.match(await compose(['ps']), /e2e_web_1.*Up/);
    await compose(['up', '-d', '--scale', 'web=3']);
    const ps = await compose(['ps']);
    assert.equal(ps.split('\n').filter((l) => /e2e_web_\d.*Up/.test(l)).length, 3, ps);
    await compose(['down']);
  });

  test('bad input gets Docker status codes and JSON messages; the manager keeps serving', async () => {
    const malformed = await raw('POST', '/v1.41/containers/create', '{"Image": "busybox",');
    assert.equal(malformed.status, 400);
    assert.match(JSON.stringify(malformed.json), /malformed JSON/);
    const notObject = await raw('POST', '/v1.41/containers/create', '[1,2]');
    assert.equal(notObject.status, 400);
    assert.equal((await raw('GET', '/v1.41/containers/doesnotexist/json')).status, 404);
    const badRegex = await raw('GET', `/v1.41/containers/json?filters=${encodeURIComponent(JSON.stringify({ name: ['(('] }))}`);
    assert.equal(badRegex.status, 400);
    assert.match(JSON.stringify(badRegex.json), /invalid filter 'name=\(\('/);
    assert.equal((await raw('GET', '/v1.41/containers/json?filters=notjson')).status, 400);
    const tooNew = await raw('GET', '/v9.99/info');
    assert.equal(tooNew.status, 400);
    assert.match(JSON.stringify(tooNew.json), /client version 9\.99 is too new/);
    const swarmMode = await raw('GET', '/v1.41/services');
    assert.equal(swarmMode.status, 404);
    assert.match(JSON.stringify(swarmMode.json), /swarm-mode endpoint/);
    const huge = await raw('POST', '/v1.41/containers/create', JSON.stringify({ Image: 'busybox', Env: ['X=' + 'x'.repeat(17 * 1024 * 1024)] }));
    assert.equal(huge.status, 413);
    assert.equal((await raw('GET', '/_ping')).status, 200);
  });

  test('bodiless calls over the pooled engine connections: stats streamed and not, top, diff, wait, HEAD archive, with and without a version prefix', async () => {
    await docker(host, ['run', '-d', '--name', 'pooled', 'busybox', 'sh', '-c', 'echo hi > /tmp/marker; sleep 300']);
    const node = await nodeOf('pooled');
    assert.match(await docker(host, ['stats', '--no-stream', '--format', '{{.Name}}', 'pooled']), /pooled/);
    const stats = dockerSpawn(host, ['stats', '--format', 'frame {{.Name}}', 'pooled']);
    await waitFor('three stats frames', () => stats.output().split('frame pooled').length > 3, 15_000);
    // docker stats outlives SIGTERM (it keeps its display loop): stop it for good.
    stats.child.kill('SIGKILL');
    await stats.exited;
    assert.match(await docker(host, ['top', 'pooled']), /sleep 300/);
    await waitFor('the marker file', async () => (await docker(host, ['diff', 'pooled'])).includes('/tmp/marker'));
    for (const prefix of ['', '/v1.41', '/v1.24']) {
      const inspect = await raw('GET', `${prefix}/containers/pooled/json`);
      assert.equal(inspect.status, 200);
      assert.equal((inspect.json as { Node?: { Name?: string } }).Node?.Name, node, `inspect via ${prefix || 'no prefix'}`);
      const head = await raw('HEAD', `${prefix}/containers/pooled/archive?path=/tmp/marker`);
      assert.equal(head.status, 200);
      assert.equal(head.json, '');
    }
    assert.equal((await raw('GET', '/v1.41/containers/pooled/archive?path=/nonexistent')).status, 404);
    await docker(host, ['run', '-d', '--name', 'exits3', 'busybox', 'sh', '-c', 'sleep 1; exit 3']);
    assert.equal(await docker(host, ['wait', 'exits3']), '3');
    await clean();
  });

  test('an engine killed mid-logs -f: the stream errors, the manager serves on, the engine goes Unhealthy then Healthy', async () => {
    const e1 = bed.engines[1];
    assert.ok(e1);
    await docker(host, ['run', '-d', '--name', 'ticker', '-e', `constraint:node==${e1.name}`, 'busybox', 'sh', '-c', 'while true; do echo tick; sleep 0.2; done']);
    const events = dockerSpawn(host, ['events', '--filter', 'type=container', '--format', '{{.Action}} {{.Actor.Attributes.name}}']);
    const logs = dockerSpawn(host, ['logs', '-f', 'ticker']);
    await waitFor('ticks', () => logs.output().includes('tick\ntick'), 10_000);
    await e1.kill();
    const code = await logs.exited;
    assert.notEqual(code, 0, `logs -f should fail when its engine dies; output tail: ${logs.output().slice(-200)}`);
    assert.match(await docker(host, ['ps', '--format', '{{.Names}}']), /./s);
    await waitFor('engine shown Unhealthy', async () => new RegExp(`${e1.name}: [^\\n]*\\n[^\\n]*\\n\\s*└ Status: Unhealthy`).test(await docker(host, ['info'])), 20_000);
    assert.equal(await docker(host, ['run', '--rm', 'busybox', 'echo', 'still serving']), 'still serving');
    await e1.start();
    await waitFor('engine Healthy again', async () => (await docker(host, ['info'])).split('Status: Healthy').length - 1 === 3, 30_000);
    // The events stream opened before the kill carries the returned engine's events too.
    await docker(host, ['run', '--rm', '--name', 'after-return', '-e', `constraint:node==${e1.name}`, 'busybox', 'true']);
    await waitFor('an event from the returned engine on the long-lived stream', () => /start after-return/.test(events.output()), 10_000);
    events.child.kill();
    await clean();
  });
});
