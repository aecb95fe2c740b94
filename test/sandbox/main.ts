// `npm run sandbox`: a local classic cluster as our users run it, on this machine.
// Three real engines in network namespaces, the Consul-compatible store, `swarm join` for
// each engine, and two `swarm manage --replication` managers (4000 primary, 4001 replica).
// It proves itself with the real docker CLI, prints how to use it, and stays up until
// Ctrl-C (or exits after the check with --check). Swarm mode and the migration join it as
// they land.
import { spawn, type ChildProcess } from 'node:child_process';
import { startTestbed } from '../testbed/index.js';
import { startConsulDev } from '../../src/consuldev/index.js';
import { swarmBin } from '../support/manager.js';
import { docker, waitFor } from '../support/docker-cli.js';

const checkOnly = process.argv.includes('--check');
const say = (line: string): void => {
  process.stdout.write(`sandbox: ${line}\n`);
};

const children: ChildProcess[] = [];
function swarm(args: string[]): ChildProcess {
  const child = spawn(process.execPath, [swarmBin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let tail = '';
  child.stderr?.on('data', (d: Buffer) => (tail = (tail + d.toString()).slice(-4000)));
  child.on('exit', (code, sig) => {
    if (!stopping) say(`swarm ${args[0] ?? ''} exited (${code ?? sig}); its last log lines:\n${tail}`);
  });
  children.push(child);
  return child;
}

let stopping = false;
say('starting 3 engines (real dockerd, one network namespace each)');
const bed = await startTestbed({ engines: 3, labels: [{ zone: 'a' }, { zone: 'b' }, { zone: 'b' }], log: (l) => say(l) });
const consul = await startConsulDev({ host: bed.bridgeAddress, port: 8500 });
const discovery = `consul://${consul.address}/swarm`;
say(`Consul-compatible store at ${consul.address}`);

async function shutdown(code: number): Promise<void> {
  stopping = true;
  say('stopping');
  for (const c of children) c.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 1000));
  await consul.close();
  await bed.close();
  process.exit(code);
}
process.once('SIGINT', () => void shutdown(0));
process.once('SIGTERM', () => void shutdown(0));

try {
  for (const e of bed.engines) swarm(['join', '--advertise', e.hostPort, '--heartbeat', '5s', '--ttl', '15s', discovery]);
  swarm(['manage', '-H', '127.0.0.1:4000', '--replication', '--advertise', '127.0.0.1:4000', discovery]);
  await new Promise((r) => setTimeout(r, 500));
  swarm(['manage', '-H', '127.0.0.1:4001', '--replication', '--advertise', '127.0.0.1:4001', discovery]);
  const host = 'tcp://127.0.0.1:4000';
  await waitFor('the cluster to see 3 healthy engines', async () => (await docker(host, ['info']).catch(() => '')).split('Status: Healthy').length - 1 === 3, 60_000);
  const echo = await docker(host, ['run', '--rm', 'busybox', 'echo', 'hello from the sandbox']);
  const replica = await docker('tcp://127.0.0.1:4001', ['info']);
  say(`check: docker run through the primary said "${echo}"; the replica reports ${/Role: (\w+)/.exec(replica)?.[1] ?? '?'}`);
  if (checkOnly) {
    await shutdown(echo === 'hello from the sandbox' ? 0 : 1);
  } else {
    say('ready. Try:');
    say('  export DOCKER_HOST=tcp://127.0.0.1:4000     # the primary manager (4001 is the replica)');
    say('  docker info; docker run -d -e constraint:zone==b busybox sleep 600; docker ps');
    for (const e of bed.engines) say(`  engine ${e.name}: docker -H ${e.url} ps`);
    say('Ctrl-C stops everything and removes the namespaces.');
  }
} catch (err) {
  say(`failed: ${(err as Error).message}`);
  await shutdown(1);
}
