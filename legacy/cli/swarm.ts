#!/usr/bin/env node
// `swarm`: classic Swarm 1.2.9's command line (manage, join, list), drop-in.
import { Command, Option } from 'commander';
import { startManager } from '../manage.js';
import { createDiscovery } from '../discovery/index.js';
import { filterNames, strategyNames, DEFAULT_STRATEGY } from '../scheduler/index.js';
import { parseDuration } from './duration.js';
import { entryOf, renderEntry } from './format.js';
import { log, setLogLevel } from '../../src/log.js';
import { swarmVersion } from '../api/system.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function keyValues(pairs: string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0) throw new Error(`${flag} ${p}: expected key=value`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

function fail(message: string): never {
  process.stderr.write(`swarm: ${message}\n`);
  process.exit(1);
}

function discoveryArg(arg: string | undefined): string {
  const d = arg ?? process.env.SWARM_DISCOVERY;
  if (!d) fail('missing <discovery>: give a discovery URL, for example nodes://10.0.0.1:2375,10.0.0.2:2375 or file:///etc/swarm/cluster (or set SWARM_DISCOVERY)');
  return d;
}

const program = new Command('swarm')
  .description('A Docker-native clustering system (classic Swarm 1.2.9, drop-in, by swarmshift)')
  .version(`swarm version ${swarmVersion} (swarmshift)`, '-v, --version')
  .option('--debug', 'debug mode')
  .addOption(new Option('-l, --log-level <level>', 'log level').choices(['debug', 'info', 'warn', 'error', 'fatal', 'panic']).default('info'))
  .option('--experimental', 'enable experimental features')
  .showHelpAfterError()
  .hook('preAction', (cmd) => {
    const o = cmd.opts<{ debug?: boolean; logLevel: string }>();
    if (o.debug || o.logLevel === 'debug') setLogLevel('debug');
    else if (o.logLevel === 'warn' || o.logLevel === 'error') setLogLevel(o.logLevel);
    else if (o.logLevel === 'fatal' || o.logLevel === 'panic') setLogLevel('error');
  });

interface ManageFlags {
  host: string[];
  strategy: string;
  filter: string[];
  engineRefreshMinInterval: string;
  engineRefreshMaxInterval: string;
  engineFailureRetry: string;
  engineRefreshRetry?: string;
  heartbeat: string;
  timeout: string;
  clusterOpt: string[];
  clusterDriver: string;
  discoveryOpt: string[];
  apiEnableCors?: boolean;
  cors?: boolean;
  replication?: boolean;
  replicationTtl: string;
  advertise?: string;
  addr?: string;
  tls?: boolean;
  tlsverify?: boolean;
  tlscacert?: string;
  tlscert?: string;
  tlskey?: string;
}

program
  .command('manage')
  .alias('m')
  .description('Manage a docker cluster')
  .argument('[discovery]', 'discovery backend: nodes://ip:port,..., file:///path, consul://, etcd://, zk:// (or $SWARM_DISCOVERY)')
  .option('-H, --host <addr>', 'ip/socket to listen on (repeatable; $SWARM_HOST)', collect, [])
  .option('--strategy <name>', `placement strategy to use [${strategyNames.join(', ')}]`, DEFAULT_STRATEGY)
  .option('-f, --filter <name>', `filter to use [${filterNames.join(', ')}] (repeatable)`, collect, [])
  .option('--engine-refresh-min-interval <duration>', 'set engine refresh minimum interval', '30s')
  .option('--engine-refresh-max-interval <duration>', 'set engine refresh maximum interval', '60s')
  .option('--engine-failure-retry <n>', 'set engine failure retry count', '3')
  .addOption(new Option('--engine-refresh-retry <n>', 'deprecated; use --engine-failure-retry').hideHelp())
  .option('--heartbeat <duration>', 'period between each heartbeat', '60s')
  .option('--timeout <duration>', 'timeout period for calls to engines', '10s')
  .option('--cluster-opt <key=value>', 'cluster driver options: swarm.overcommit=0.05, swarm.createretry=0 (repeatable)', collect, [])
  .option('-c, --cluster-driver <driver>', 'cluster driver to use [swarm]', 'swarm')
  .option('--discovery-opt <key=value>', 'discovery options (repeatable)', collect, [])
  .option('--api-enable-cors', 'enable CORS headers in the remote API')
  .option('--cors', 'enable CORS headers in the remote API')
  .option('--replication', 'enable Swarm manager replication')
  .option('--replication-ttl <duration>', 'leader lock release time on failure', '20s')
  .option('--advertise, --addr <ip:port>', 'address of the manager advertised to other managers ($SWARM_ADVERTISE)')
  .option('--tls', 'use TLS; implied by --tlsverify')
  .option('--tlsverify', 'use TLS and verify the remote')
  .option('--tlscacert <path>', 'trust certs signed only by this CA')
  .option('--tlscert <path>', 'path to TLS certificate file')
  .option('--tlskey <path>', 'path to TLS key file')
  .action(async (discovery: string | undefined, flags: ManageFlags) => {
    try {
      if (flags.clusterDriver !== 'swarm') fail(`cluster driver '${flags.clusterDriver}' is not supported: only 'swarm' (the Mesos driver was experimental and is not carried over)`);
      const advertise = flags.advertise ?? flags.addr ?? process.env.SWARM_ADVERTISE;
      if (flags.replication && !advertise) fail('--replication needs --advertise ip:port: the address at which the other managers reach this one');
      const clusterOpts = keyValues(flags.clusterOpt, '--cluster-opt');
      for (const k of Object.keys(clusterOpts)) if (k !== 'swarm.overcommit' && k !== 'swarm.createretry') fail(`--cluster-opt ${k}: unknown option; known: swarm.overcommit, swarm.createretry`);
      const overcommit = Number(clusterOpts['swarm.overcommit'] ?? '0.05');
      const createRetry = Number(clusterOpts['swarm.createretry'] ?? '0');
      if (!Number.isFinite(overcommit) || overcommit <= -1) fail(`--cluster-opt swarm.overcommit=${clusterOpts['swarm.overcommit']}: expected a number greater than -1, for example 0.05`);
      if (!Number.isInteger(createRetry) || createRetry < 0) fail(`--cluster-opt swarm.createretry=${clusterOpts['swarm.createretry']}: expected a whole number ≥ 0`);
      const failureRetry = Number(flags.engineRefreshRetry ?? flags.engineFailureRetry);
      if (!Number.isInteger(failureRetry) || failureRetry < 1) fail(`--engine-failure-retry ${flags.engineFailureRetry}: expected a whole number ≥ 1`);
      const refreshMinMs = parseDuration(flags.engineRefreshMinInterval, '--engine-refresh-min-interval');
      const refreshMaxMs = parseDuration(flags.engineRefreshMaxInterval, '--engine-refresh-max-interval');
      if (refreshMinMs <= 0) fail('--engine-refresh-min-interval must be greater than 0');
      if (refreshMaxMs < refreshMinMs) fail('--engine-refresh-max-interval must be at least --engine-refresh-min-interval');
      const hosts = flags.host.length > 0 ? flags.host : process.env.SWARM_HOST ? process.env.SWARM_HOST.split(',') : ['tcp://127.0.0.1:2375'];
      const filters = flags.filter.length > 0 ? flags.filter : filterNames;
      const useTls = Boolean(flags.tls || flags.tlsverify);
      const controller = new AbortController();
      const manager = await startManager(
        {
          discovery: discoveryArg(discovery),
          hosts,
          strategy: flags.strategy,
          filters,
          refreshMinMs,
          refreshMaxMs,
          failureRetry,
          heartbeatMs: parseDuration(flags.heartbeat, '--heartbeat'),
          timeoutMs: parseDuration(flags.timeout, '--timeout'),
          overcommit,
          createRetry,
          discoveryOpts: keyValues(flags.discoveryOpt, '--discovery-opt'),
          cors: Boolean(flags.apiEnableCors || flags.cors),
          tls: useTls ? { ca: flags.tlscacert, cert: flags.tlscert, key: flags.tlskey, verify: Boolean(flags.tlsverify) } : undefined,
          replication: flags.replication && advertise ? { advertise, ttlMs: parseDuration(flags.replicationTtl, '--replication-ttl') } : undefined,
        },
        controller.signal,
      );
      const shutdown = (sig: string): void => {
        log.info('Shutting down', { signal: sig });
        controller.abort();
        void manager.close().then(() => process.exit(0));
        setTimeout(() => process.exit(0), 5000).unref();
      };
      process.once('SIGINT', () => shutdown('SIGINT'));
      process.once('SIGTERM', () => shutdown('SIGTERM'));
    } catch (err) {
      fail((err as Error).message);
    }
  });

program
  .command('list')
  .alias('l')
  .description('List nodes in a cluster')
  .argument('[discovery]', 'discovery backend (or $SWARM_DISCOVERY)')
  .option('--timeout <duration>', 'timeout period', '10s')
  .option('--discovery-opt <key=value>', 'discovery options (repeatable)', collect, [])
  .option('--format <template>', 'print each engine with a Go template: {{.Addr}}, {{.IP}}, {{.Port}}, {{json .}}')
  .action(async (discovery: string | undefined, flags: { timeout: string; discoveryOpt: string[]; format?: string }) => {
    try {
      const timeoutMs = parseDuration(flags.timeout, '--timeout');
      const d = createDiscovery(discoveryArg(discovery), { heartbeatMs: timeoutMs, ttlMs: timeoutMs, opts: keyValues(flags.discoveryOpt, '--discovery-opt') });
      const signal = AbortSignal.timeout(timeoutMs);
      for await (const addrs of d.watch(signal)) {
        for (const a of addrs) process.stdout.write(`${flags.format ? renderEntry(flags.format, entryOf(a)) : a}\n`);
        await d.close?.();
        process.exit(0);
      }
      fail(`no answer from ${d.uri} within ${flags.timeout}`);
    } catch (err) {
      fail((err as Error).message);
    }
  });

program
  .command('join')
  .alias('j')
  .description('Join a docker cluster')
  .argument('[discovery]', 'key-value discovery backend: consul://, etcd://, zk:// (or $SWARM_DISCOVERY)')
  .option('--advertise, --addr <ip:port>', 'address of the Docker Engine joining the cluster ($SWARM_ADVERTISE)')
  .option('--heartbeat <duration>', 'period between each heartbeat', '60s')
  .option('--ttl <duration>', 'set the expiration of an ephemeral node', '180s')
  .option('--delay <duration>', 'add a random delay in [0s,delay] to avoid synchronized registration', '0s')
  .option('--discovery-opt <key=value>', 'discovery options (repeatable)', collect, [])
  .action(async (discovery: string | undefined, flags: { advertise?: string; addr?: string; heartbeat: string; ttl: string; delay: string; discoveryOpt: string[] }) => {
    try {
      const advertise = flags.advertise ?? flags.addr ?? process.env.SWARM_ADVERTISE;
      if (!advertise) fail('missing --advertise: the ip:port at which the managers reach this engine, for example --advertise=10.0.0.11:2375');
      const heartbeatMs = parseDuration(flags.heartbeat, '--heartbeat');
      const ttlMs = parseDuration(flags.ttl, '--ttl');
      const delayMs = parseDuration(flags.delay, '--delay');
      if (ttlMs <= heartbeatMs) fail(`--ttl ${flags.ttl} must be longer than --heartbeat ${flags.heartbeat}, or the registration expires between two heartbeats`);
      const d = createDiscovery(discoveryArg(discovery), { heartbeatMs, ttlMs, opts: keyValues(flags.discoveryOpt, '--discovery-opt') });
      if (!d.register) fail(`join needs a key-value discovery backend (consul://, etcd://, zk://): with ${d.uri.split(':')[0]}:// list the engine in the manager's discovery instead`);
      const controller = new AbortController();
      const stop = (sig: string): void => {
        log.info('Leaving the cluster', { signal: sig });
        controller.abort();
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
      if (delayMs > 0) await new Promise((r) => setTimeout(r, Math.random() * delayMs));
      await d.register(advertise, controller.signal);
      await d.close?.();
      process.exit(0);
    } catch (err) {
      fail((err as Error).message);
    }
  });

program.parseAsync(process.argv).catch((err: unknown) => fail((err as Error).message));
