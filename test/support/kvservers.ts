// Real key-value servers for the discovery tests: Debian's etcd (3.4) and ZooKeeper (3.8),
// each on free loopback ports with its own temporary directory. A server that does not
// come up fails the test with the tail of its log: these tests never skip.
// Each server runs in its own process group, killed on stop and, if a test forgets, on
// exit or SIGINT/SIGTERM (test/testbed/exit.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { freePort } from './ports.js';
import { tmpdir } from 'node:os';
import { isAbsolute, join, normalize } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { track, untrack } from '../testbed/exit.js';
import { request as httpsRequest } from 'node:https';

export interface KvServer {
  /** "127.0.0.1:PORT", the client address. */
  endpoint: string;
  /** Terminates the server and removes its directory. */
  stop(): Promise<void>;
  /** SIGKILLs the server, keeping its data (an outage). */
  kill(): Promise<void>;
  /** Starts the server again on the same ports with its data (stopping it first if it runs). */
  restart(): Promise<void>;
  /** How long the last start took until the server answered, in milliseconds. */
  startedInMs(): number;
}

const ETCD_BIN = '/usr/bin/etcd';
const JAVA_BIN = '/usr/bin/java';
/** zookeeper.jar's manifest names its dependencies; slf4j-simple gives it a logger (stderr). */
const ZK_CLASSPATH = ['/usr/share/java/zookeeper.jar', '/usr/share/java/slf4j-simple.jar'].join(':');
const START_TIMEOUT_MS = 30_000;

/** A fresh directory under the OS temp dir; refuses anything that is not plainly inside it. */
function tempDir(kind: string): string {
  const base = normalize(tmpdir());
  const dir = mkdtempSync(join(base, `swarmshift-${kind}-`));
  if (!isAbsolute(dir) || normalize(dir) !== dir || !dir.startsWith(`${base}/swarmshift-${kind}-`) || dir.split('/').includes('..')) {
    throw new Error(`kvservers: refusing temp dir ${JSON.stringify(dir)}`);
  }
  return dir;
}

function tail(path: string, lines = 40): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `(no log: ${err instanceof Error ? err.message : String(err)})`;
  }
}

interface ServerSpec {
  kind: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  logPath: string;
  dir: string;
  endpoint: string;
  /** Resolves true once the server answers. */
  ready(): Promise<boolean>;
}

function runServer(spec: ServerSpec): Promise<KvServer> {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let startedIn = 0;
  let removed = false;

  const killGroup = (sig: NodeJS.Signals): void => {
    const pid = child?.pid;
    if (pid === undefined || child?.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-pid, sig);
    } catch {
      // already gone
    }
  };

  const closable = {
    closeSync(): void {
      killGroup('SIGKILL');
      removeDir();
    },
  };

  function removeDir(): void {
    if (removed) return;
    removed = true;
    rmSync(spec.dir, { recursive: true, force: true });
  }

  async function halt(sig: NodeJS.Signals): Promise<void> {
    if (child === undefined) return;
    killGroup(sig);
    const force = setTimeout(() => killGroup('SIGKILL'), 5000);
    await exited;
    clearTimeout(force);
    child = undefined;
  }

  async function start(): Promise<void> {
    const began = Date.now();
    const log = openSync(spec.logPath, 'a');
    const proc = spawn(spec.command, spec.args, {
      detached: true,
      stdio: ['ignore', log, log],
      env: spec.env ?? process.env,
    });
    closeSync(log);
    child = proc;
    let exitInfo: string | undefined;
    exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        exitInfo = `exited with ${signal ?? String(code)}`;
        resolve();
      });
      proc.on('error', (err) => {
        exitInfo = `could not start: ${err.message}`;
        resolve();
      });
    });
    while (Date.now() - began < START_TIMEOUT_MS) {
      if (exitInfo !== undefined) break;
      if (await spec.ready()) {
        startedIn = Date.now() - began;
        return;
      }
      await sleep(50);
    }
    const why = exitInfo ?? `did not answer on ${spec.endpoint} within ${START_TIMEOUT_MS / 1000} s`;
    await halt('SIGKILL');
    const logTail = tail(spec.logPath);
    removeDir();
    untrack(closable);
    throw new Error(`${spec.kind} (${spec.command}) ${why}; last lines of ${spec.logPath}:\n${logTail}`);
  }

  track(closable);
  return start().then(() => ({
    endpoint: spec.endpoint,
    startedInMs: () => startedIn,
    async stop() {
      await halt('SIGTERM');
      removeDir();
      untrack(closable);
    },
    async kill() {
      await halt('SIGKILL');
    },
    async restart() {
      await halt('SIGTERM');
      await start();
    },
  }));
}

/**
 * etcd with test-speed raft timings (50 ms heartbeat, 500 ms election: leases as short as
 * 1 s). With `tls`, clients speak https and must present a certificate signed by `ca`.
 */
export async function startEtcd(opts: { tls?: { ca: string; cert: string; key: string } } = {}): Promise<KvServer> {
  const dir = tempDir('etcd');
  const clientPort = await freePort();
  const peerPort = await freePort();
  const tls = opts.tls;
  const client = `${tls ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  return runServer({
    kind: 'etcd',
    command: ETCD_BIN,
    args: [
      '--name', 'kvtest',
      '--data-dir', join(dir, 'data'),
      '--listen-client-urls', client,
      '--advertise-client-urls', client,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `kvtest=${peer}`,
      '--initial-cluster-state', 'new',
      '--heartbeat-interval', '50',
      '--election-timeout', '500',
      '--logger', 'zap',
      '--log-outputs', 'stderr',
      ...(tls ? ['--cert-file', tls.cert, '--key-file', tls.key, '--trusted-ca-file', tls.ca, '--client-cert-auth'] : []),
    ],
    logPath: join(dir, 'etcd.log'),
    dir,
    endpoint: `127.0.0.1:${clientPort}`,
    async ready() {
      const body = tls ? await httpsHealth(clientPort, tls) : await fetch(`${client}/health`, { signal: AbortSignal.timeout(1000) }).then((r) => r.json() as Promise<unknown>, () => undefined);
      return typeof body === 'object' && body !== null && 'health' in body && body.health === 'true';
    },
  });
}

/** GET /health over https with a client certificate (fetch cannot present one). */
function httpsHealth(port: number, tls: { ca: string; cert: string; key: string }): Promise<unknown> {
  return new Promise((resolve) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path: '/health', ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key), timeout: 1000 },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => {
          try {
            resolve(JSON.parse(text) as unknown);
          } catch {
            resolve(undefined);
          }
        });
      },
    );
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** Sends a four-letter word and resolves with the answer ('' when the server is not there). */
function fourLetterWord(port: number, word: string): Promise<string> {
  return new Promise((resolve) => {
    let answer = '';
    const sock = connect(port, '127.0.0.1', () => sock.end(word));
    sock.setTimeout(1000, () => sock.destroy());
    sock.on('data', (d: Buffer) => (answer += d.toString()));
    sock.on('error', () => resolve(''));
    sock.on('close', () => resolve(answer));
  });
}

/**
 * A standalone ZooKeeper started directly with java (zkServer.sh insists on the system's
 * /etc/zookeeper and /var/log/zookeeper). tickTime 500 ms lets sessions be as short as
 * 1 s (2 ticks) and up to 60 s; the admin HTTP server is off (it costs a second and a port).
 */
export async function startZookeeper(): Promise<KvServer> {
  const dir = tempDir('zk');
  const port = await freePort();
  const cfg = join(dir, 'zoo.cfg');
  writeFileSync(
    cfg,
    [
      'tickTime=500',
      'initLimit=10',
      'syncLimit=5',
      `dataDir=${join(dir, 'data')}`,
      `clientPort=${port}`,
      'clientPortAddress=127.0.0.1',
      'minSessionTimeout=1000',
      'maxSessionTimeout=60000',
      'admin.enableServer=false',
      '4lw.commands.whitelist=srvr',
      '',
    ].join('\n'),
  );
  return runServer({
    kind: 'zookeeper',
    command: JAVA_BIN,
    args: [
      '-Xms64m', '-Xmx256m',
      '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1',
      '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
      '-Dzookeeper.jmx.log4j.disable=true',
      '-cp', ZK_CLASSPATH,
      'org.apache.zookeeper.server.ZooKeeperServerMain', cfg,
    ],
    logPath: join(dir, 'zookeeper.log'),
    dir,
    endpoint: `127.0.0.1:${port}`,
    async ready() {
      // 'ruok' answers before the server serves; 'srvr' names the mode only once it does.
      return (await fourLetterWord(port, 'srvr')).includes('Mode: standalone');
    },
  });
}
