// End to end over real engines: what every other integration test relies on. Needs root.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { reclaimSlots, slotLeftovers, startTestbed, type EngineHost } from './index.js';

const execFileAsync = promisify(execFile);

const CLIENTS = [
  { name: 'Docker CLI 28.x', path: '/usr/local/bin/docker' },
  { name: "Debian's Docker CLI 20.10 (API 1.41)", path: '/usr/bin/docker' },
];

async function docker(client: string, engine: EngineHost, ...args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(client, ['-H', engine.url, ...args], { timeout: 120_000 });
    return stdout.trim();
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`${client} -H ${engine.url} ${args.join(' ')} failed: ${stderr.trim() || String(err)}`, { cause: err });
  }
}

for (const client of CLIENTS) {
  void test(`three engines serve ${client.name}: run, info, crash and restart, registry push and pull, clean close`, { timeout: 300_000 }, async () => {
    const tb = await startTestbed({
      engines: 3,
      labels: [{ zone: 'a', role: 'first' }, { zone: 'b' }, { zone: 'c' }],
    });
    try {
      assert.equal(tb.engines.length, 3);
      for (const engine of tb.engines) {
        assert.equal(await docker(client.path, engine, 'run', '--rm', 'busybox', 'echo', `hi from ${engine.name}`), `hi from ${engine.name}`);
      }

      const infos = await Promise.all(
        tb.engines.map(async (engine) => JSON.parse(await docker(client.path, engine, 'info', '--format', '{{json .}}')) as { Name: string; ID: string; Labels: string[] }),
      );
      assert.deepEqual(infos.map((info) => info.Name), tb.engines.map((engine) => engine.name));
      assert.equal(new Set(infos.map((info) => info.Name)).size, 3, 'engine names differ');
      assert.equal(new Set(infos.map((info) => info.ID)).size, 3, 'engine IDs differ');
      assert.ok(infos[0]?.Labels.includes('zone=a') && infos[0].Labels.includes('role=first'), `labels of engine 0: ${JSON.stringify(infos[0]?.Labels)}`);
      assert.ok(infos[2]?.Labels.includes('zone=c'));
      assert.deepEqual(tb.engines[1]?.labels, { zone: 'b' });

      // A crash with a container running: the restarted engine must cope with the zombie
      // containerd and its stale pidfile, and stop the orphaned container.
      const crashed = tb.engines[1];
      assert.ok(crashed);
      const survivor = await docker(client.path, crashed, 'run', '-d', '--stop-timeout', '1', 'busybox', 'sleep', '600');
      await crashed.kill();
      assert.equal(crashed.running(), false);
      await assert.rejects(docker(client.path, crashed, 'version'));
      await crashed.start();
      assert.equal(crashed.running(), true);
      assert.equal(await docker(client.path, crashed, 'inspect', '--format', '{{.State.Running}}', survivor), 'false');
      assert.equal(await docker(client.path, crashed, 'run', '--rm', 'busybox', 'echo', 'back'), 'back');

      const registry = await tb.startRegistry();
      assert.equal(registry.address, `${tb.bridgeAddress}:5000`);
      const [first, , third] = tb.engines;
      assert.ok(first && third);
      const ref = `${registry.address}/busybox:e2e`;
      await docker(client.path, first, 'tag', 'busybox:latest', ref);
      await docker(client.path, first, 'push', ref);
      await docker(client.path, third, 'pull', ref);
      assert.equal(await docker(client.path, third, 'run', '--rm', ref, 'echo', 'pulled'), 'pulled');
      await registry.stop();
    } finally {
      await tb.close();
    }
    assert.deepEqual(slotLeftovers(tb.id), []);
    await tb.close();
  });
}

void test('a graceful stop and start keeps the engine\'s name, images and containers; close removes running ones', { timeout: 180_000 }, async () => {
  const tb = await startTestbed({ engines: 1 });
  try {
    const [engine] = tb.engines;
    assert.ok(engine);
    const client = '/usr/local/bin/docker';
    await docker(client, engine, 'create', '--name', 'kept', 'busybox', 'true');
    await engine.stop();
    assert.equal(engine.running(), false);
    await engine.start();
    assert.equal(await docker(client, engine, 'inspect', '--format', '{{.Name}}', 'kept'), '/kept');
    assert.equal(await docker(client, engine, 'info', '--format', '{{.Name}}'), engine.name);
    assert.equal(await docker(client, engine, 'run', '--rm', 'busybox', 'echo', 'ok'), 'ok');
    // Left running on purpose: close() must remove its processes, mounts and cgroups too.
    await docker(client, engine, 'run', '-d', 'busybox', 'sleep', '600');
  } finally {
    await tb.close();
  }
  assert.deepEqual(slotLeftovers(tb.id), []);
});

void test('testbeds started at the same time get distinct slots, subnets and names', { timeout: 180_000 }, async () => {
  const [a, b] = await Promise.all([startTestbed({ engines: 1, image: false }), startTestbed({ engines: 1, image: false })]);
  try {
    assert.notEqual(a.id, b.id);
    assert.notEqual(a.bridgeAddress, b.bridgeAddress);
    assert.notEqual(a.engines[0]?.name, b.engines[0]?.name);
    assert.notEqual(a.engines[0]?.netns, b.engines[0]?.netns);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
  assert.deepEqual([...slotLeftovers(a.id), ...slotLeftovers(b.id)], []);
});

/** Starts a testbed in a child process and resolves to the child and its slot. */
async function testbedInChild(): Promise<{ child: ReturnType<typeof spawn>; slot: number }> {
  const index = fileURLToPath(new URL('./index.js', import.meta.url));
  const script = `import(${JSON.stringify(index)}).then((m) => m.startTestbed({ engines: 1, image: false }))
    .then((tb) => { console.log('slot', tb.id); setInterval(() => undefined, 1000); });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  for await (const chunk of child.stdout) {
    out += String(chunk);
    const match = /slot (\d+)/.exec(out);
    if (match) return { child, slot: Number(match[1]) };
  }
  throw new Error(`child exited without starting a testbed: ${out}`);
}

void test('a testbed is cleaned up when its process gets SIGTERM', { timeout: 180_000 }, async () => {
  const { child, slot } = await testbedInChild();
  try {
    assert.notDeepEqual(slotLeftovers(slot), []);
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
    assert.equal(signal ?? code, 'SIGTERM', 'the signal is re-raised after cleanup');
    assert.deepEqual(slotLeftovers(slot), []);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

void test('the slot of a SIGKILLed owner is reclaimed', { timeout: 180_000 }, async () => {
  const { child, slot } = await testbedInChild();
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
  assert.notDeepEqual(slotLeftovers(slot), [], 'nothing ran the dead owner\'s cleanup');
  const cleaned = await reclaimSlots();
  assert.ok(cleaned.includes(slot), `reclaimed ${JSON.stringify(cleaned)}, expected slot ${slot}`);
  assert.deepEqual(slotLeftovers(slot), []);
});
