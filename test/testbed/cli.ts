#!/usr/bin/env node
// testbed up|down|ls: real engines for a human at a shell (see docs/testbed.md).
import { parseArgs } from 'node:util';
import { listSlots, reclaimSlots, slotLeftovers, startTestbed, type Testbed } from './index.js';

const USAGE = `usage:
  testbed up [-n 3] [--label INDEX:KEY=VALUE]... [--registry] [--no-image] [--debug]
      start engines, print how to reach them, stay until Ctrl-C (then clean up)
  testbed down [--all]
      clean up every slot whose owner process is dead (--all: every slot)
  testbed ls
      list slots, their owners and what they hold`;

function fail(message: string): never {
  process.stderr.write(`testbed: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function parseLabels(specs: string[], engines: number): Array<Record<string, string>> {
  const labels: Array<Record<string, string>> = Array.from({ length: engines }, () => ({}));
  for (const spec of specs) {
    const match = /^([0-9]+):([^=]+)=(.*)$/.exec(spec);
    if (match === null) fail(`--label ${JSON.stringify(spec)}: expected INDEX:KEY=VALUE, e.g. 0:zone=a`);
    const [, index = '', key = '', value = ''] = match;
    const target = labels[Number(index)];
    if (target === undefined) fail(`--label ${spec}: engine index ${index} is not below -n ${engines}`);
    target[key] = value;
  }
  return labels;
}

async function up(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      n: { type: 'string', short: 'n', default: '3' },
      label: { type: 'string', multiple: true, default: [] },
      registry: { type: 'boolean', default: false },
      'no-image': { type: 'boolean', default: false },
      debug: { type: 'boolean', default: false },
    },
  });
  const engines = Number(values.n);
  if (!Number.isInteger(engines) || engines < 1) fail(`-n ${values.n}: expected a positive integer`);
  const labels = parseLabels(values.label, engines);

  // Filled in once started; a signal during startup finds it empty (the library's own
  // handler then removes the half-built testbed).
  const current: { testbed?: Testbed } = {};
  const shutdown = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\n${signal}: cleaning up\n`);
    const closing = current.testbed?.close() ?? Promise.resolve();
    closing.then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);

  const started = Date.now();
  const testbed = await startTestbed({
    engines,
    labels,
    image: !values['no-image'],
    log: values.debug ? (line) => process.stderr.write(`[testbed] ${line}\n`) : undefined,
  });
  current.testbed = testbed;
  const out: string[] = [`testbed ${testbed.id}: ${engines} engine(s) on ${testbed.bridgeAddress}/24, up in ${Date.now() - started} ms`];
  for (const engine of testbed.engines) {
    const tags = Object.entries(engine.labels).map(([k, v]) => `${k}=${v}`).join(',');
    out.push(`  ${engine.name}  ${engine.url}  netns ${engine.netns}${tags ? `  labels ${tags}` : ''}`);
  }
  if (values.registry) {
    const registry = await testbed.startRegistry();
    out.push(`  registry  ${registry.address}  (every engine trusts it: docker tag busybox ${registry.address}/busybox)`);
  }
  const first = testbed.engines[0];
  if (first) out.push('', `export DOCKER_HOST=${first.url}`);
  out.push('', 'Ctrl-C (or SIGTERM) stops the engines and removes everything the testbed made.');
  process.stdout.write(`${out.join('\n')}\n`);
  // Stay: the engines are unref'd children, so keep the event loop alive ourselves.
  setInterval(() => undefined, 1 << 30);
}

async function down(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { all: { type: 'boolean', default: false } } });
  const cleaned = await reclaimSlots(values.all);
  process.stdout.write(cleaned.length === 0 ? 'nothing to clean\n' : `cleaned slot(s) ${cleaned.join(', ')}\n`);
}

function ls(): void {
  const slots = listSlots();
  if (slots.length === 0) process.stdout.write('no slots in use\n');
  for (const info of slots) {
    const owner = info.owner === undefined ? 'no owner' : `pid ${info.owner.pid} ${info.alive ? 'alive' : 'dead'}`;
    const netns = slotLeftovers(info.slot).filter((what) => what.startsWith('netns ')).length;
    process.stdout.write(`slot ${info.slot}: ${owner}, ${netns} engine netns\n`);
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'up':
      return up(rest);
    case 'down':
      return down(rest);
    case 'ls':
      return ls();
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(`${USAGE}\n`);
      return;
    default:
      fail(`unknown command ${JSON.stringify(command)}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
