// One engine: a real dockerd in its own network and UTS namespace, with its own data
// root, exec root (where dockerd keeps its containerd's state and socket), pidfile,
// sockets, cgroup parent and trust key (the key is the engine ID in `docker info`:
// engines sharing /etc/docker/key.json would all report the same ID).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { request } from 'node:http';
import { connect as tlsConnect } from 'node:tls';
import { ENGINE_PORT, ENGINE_TLS_PORT, type EngineLayout } from './layout.js';
import { netnsPath } from './network.js';
import { childPath } from './paths.js';
import { cmdline, isAlive, signal, sleep, waitDead } from './proc.js';

/** Absolute paths of PEM files: what dockerd's --tlscacert, --tlscert and --tlskey name. */
export interface TestbedTls {
  /** The CA whose certificates the engine accepts from clients (and that signed `cert`). */
  readonly ca: string;
  /** The engine's server certificate: its SANs must name the engine's address. */
  readonly cert: string;
  readonly key: string;
}

export interface EngineHost {
  readonly index: number;
  /** Hostname the engine reports in `docker info` (Name), e.g. "tb3-node1". */
  readonly name: string;
  /** The engine's address on the testbed bridge, e.g. "10.213.3.11". */
  readonly address: string;
  /** 2375 (plain TCP), or 2376 when the testbed was started with `tls`. */
  readonly port: number;
  /** "tcp://10.213.3.11:2375": what you pass to `docker -H` (port 2376 with TLS). */
  readonly url: string;
  /** "10.213.3.11:2375" (":2376" with TLS) */
  readonly hostPort: string;
  /**
   * The files the engine was started with (`--tlsverify`), or undefined for plain TCP. A
   * TLS engine serves only clients presenting a certificate signed by `tls.ca` on its TCP
   * listener; its unix socket (`socketUrl`) stays plain.
   */
  readonly tls: TestbedTls | undefined;
  readonly netns: string;
  readonly labels: Record<string, string>;
  /** unix:// URL of the engine's local socket (same API as `url`). */
  readonly socketUrl: string;
  /** The engine's dockerd log (dockerd and its containerd write here). */
  readonly logFile: string;
  /** dockerd's PID while it runs. */
  readonly pid: number | undefined;
  running(): boolean;
  /** SIGKILL dockerd (a crash) and wait until it is gone. Containers keep running. */
  kill(): Promise<void>;
  /** SIGTERM: dockerd stops its containers and its containerd, then exits. */
  stop(): Promise<void>;
  /** (Re)start on the same data root; resolves once the engine answers /_ping over TCP. */
  start(): Promise<void>;
}

export interface EngineConfig {
  layout: EngineLayout;
  labels: Record<string, string>;
  storageDriver: string;
  insecureRegistry: string;
  startTimeoutMs: number;
  tls?: TestbedTls;
  log: (line: string) => void;
}

/** GET `path` on a unix socket or TCP address; resolves to the status code, or 0 on error. */
export function httpStatus(target: { socketPath: string } | { host: string; port: number }, path: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ ...target, path, method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** Socket-level failures: the listener is not there yet (or not reachable); worth a retry. */
const NOT_YET = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'TIMEOUT']);

/**
 * A TLS 1.3 handshake without a client certificate, verifying the server's certificate
 * against `ca` for `host`. In TLS 1.3 the client finishes its side of the handshake
 * before the server checks the (missing) client certificate, so this proves the host
 * reaches the listener and that its certificate is right, without needing a client
 * certificate; the server's "certificate required" alert that follows is ignored.
 * `retry` is false when the answer is final (a certificate that does not verify).
 */
export function tlsHandshake(host: string, port: number, ca: string, timeoutMs: number): Promise<{ ok: true } | { ok: false; retry: boolean; error: string }> {
  return new Promise((resolve) => {
    let caPem: Buffer;
    try {
      caPem = readFileSync(ca);
    } catch (err) {
      resolve({ ok: false, retry: false, error: `cannot read the CA: ${String(err)}` });
      return;
    }
    const socket = tlsConnect({ host, port, ca: caPem, minVersion: 'TLSv1.3', timeout: timeoutMs });
    socket.once('secureConnect', () => {
      socket.destroy();
      resolve({ ok: true });
    });
    socket.once('timeout', () => socket.destroy(Object.assign(new Error(`no TLS handshake within ${timeoutMs} ms`), { code: 'TIMEOUT' })));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.destroy();
      resolve({ ok: false, retry: NOT_YET.has(err.code ?? ''), error: err.message });
    });
  });
}

/** dockerd's gRPC chatter and containerd's plugin loading: never the reason it failed. */
const NOISE = /module=grpc|loading plugin|skip loading plugin/;

/** The last `lines` meaningful lines of a log file, for error messages. */
export function logTail(file: string, lines = 25): string {
  try {
    const text = readFileSync(file, 'utf8').trimEnd().split('\n').filter((line) => !NOISE.test(line));
    return text.slice(-lines).join('\n');
  } catch (err) {
    return `(no log: ${String(err)})`;
  }
}

export class Engine implements EngineHost {
  readonly index: number;
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly url: string;
  readonly hostPort: string;
  readonly tls: TestbedTls | undefined;
  readonly netns: string;
  readonly labels: Record<string, string>;
  readonly socketUrl: string;
  /** Path of the engine's unix socket. */
  readonly socketPath: string;
  readonly logFile: string;

  private readonly config: EngineConfig;
  private readonly pidfile: string;
  private readonly execRoot: string;
  private readonly dataRoot: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(config: EngineConfig) {
    const { layout } = config;
    this.config = config;
    this.index = layout.index;
    this.name = layout.name;
    this.address = layout.address;
    this.tls = config.tls;
    this.port = config.tls ? ENGINE_TLS_PORT : ENGINE_PORT;
    this.hostPort = `${layout.address}:${this.port}`;
    this.url = `tcp://${this.hostPort}`;
    this.netns = layout.netns;
    this.labels = Object.freeze({ ...config.labels });
    this.socketPath = childPath(layout.dir, 'docker.sock');
    this.socketUrl = `unix://${this.socketPath}`;
    this.logFile = childPath(layout.dir, 'dockerd.log');
    this.pidfile = childPath(layout.dir, 'dockerd.pid');
    this.execRoot = childPath(layout.dir, 'exec');
    this.dataRoot = childPath(layout.dir, 'data');
  }

  get pid(): number | undefined {
    return this.running() ? this.child?.pid : undefined;
  }

  running(): boolean {
    const child = this.child;
    return child?.pid !== undefined && child.exitCode === null && child.signalCode === null && isAlive(child.pid);
  }

  private starting: Promise<void> | undefined;

  start(): Promise<void> {
    // Two callers racing must not spawn two dockerds on one data root.
    this.starting ??= this.startOnce().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async startOnce(): Promise<void> {
    if (this.running()) return;
    const { layout } = this.config;
    mkdirSync(layout.dir, { recursive: true });
    this.removeStaleState();
    const configFile = childPath(layout.dir, 'daemon.json');
    writeFileSync(configFile, `${JSON.stringify({ 'deprecated-key-path': childPath(layout.dir, 'key.json') }, null, 2)}\n`);

    const args = [
      '--config-file', configFile,
      '--data-root', this.dataRoot,
      '--exec-root', this.execRoot,
      '--pidfile', this.pidfile,
      '-H', this.socketUrl,
      '-H', this.url,
      // Without an explicit --tls=false, dockerd 20.10 sleeps 15 s at startup to warn
      // about unauthenticated TCP (it still sleeps 1 s). With --tlsverify the TCP
      // listener demands a client certificate signed by the CA; the unix socket (what
      // the testbed itself uses) is never wrapped in TLS.
      ...(this.tls ? ['--tlsverify', '--tlscacert', this.tls.ca, '--tlscert', this.tls.cert, '--tlskey', this.tls.key] : ['--tls=false']),
      '--storage-driver', this.config.storageDriver,
      '--insecure-registry', this.config.insecureRegistry,
      '--cgroup-parent', layout.cgroupParent,
    ];
    for (const [key, value] of Object.entries(this.labels)) args.push('--label', `${key}=${value}`);

    const logFd = openSync(this.logFile, 'a');
    writeSync(logFd, `--- testbed: starting ${this.name} at ${new Date().toISOString()}: dockerd ${args.join(' ')}\n`);
    let child: ChildProcess;
    try {
      // nsenter, not `ip netns exec` (which remounts /sys and hides the cgroup mounts:
      // "Devices cgroup isn't mounted"). unshare --uts gives the engine its own hostname;
      // the shell sets it and execs, so the spawned PID is dockerd's own.
      child = spawn(
        'nsenter',
        [`--net=${netnsPath(this.netns)}`, 'unshare', '--uts', 'sh', '-c', 'hostname "$0" && exec "$@"', this.name, 'dockerd', ...args],
        { detached: true, stdio: ['ignore', logFd, logFd] },
      );
    } finally {
      closeSync(logFd);
    }
    // The test process must be free to exit; the exit handler sweeps what is left.
    child.unref();
    this.child = child;
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    child.once('error', () => undefined);

    try {
      await this.waitReady(child);
    } catch (err) {
      this.config.log(`${this.name}: failed to start; killing dockerd`);
      await this.kill();
      throw err;
    }
  }

  private async waitReady(child: ChildProcess): Promise<void> {
    const started = Date.now();
    const deadline = started + this.config.startTimeoutMs;
    const fail = (why: string): Error =>
      new Error(`testbed: engine ${this.name} (${this.url}) ${why}; last lines of ${this.logFile}:\n${logTail(this.logFile)}`);
    while ((await httpStatus({ socketPath: this.socketPath }, '/_ping', 1000)) !== 200) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw fail(`dockerd exited (${child.exitCode ?? child.signalCode ?? '?'}) before answering /_ping`);
      }
      if (Date.now() > deadline) throw fail(`did not answer /_ping on ${this.socketUrl} within ${this.config.startTimeoutMs / 1000} s`);
      await sleep(40);
    }
    // The unix socket answers; now prove the host reaches the engine across the bridge.
    const tls = this.tls;
    if (tls) {
      for (;;) {
        const check = await tlsHandshake(this.address, this.port, tls.ca, 1000);
        if (check.ok) break;
        if (!check.retry) throw fail(`presents a certificate that does not verify against ${tls.ca} for ${this.address}: ${check.error}`);
        if (Date.now() > deadline) throw fail(`answers on its unix socket but its TLS listener ${this.url} does not (${check.error}; bridge, veth or iptables?)`);
        await sleep(40);
      }
    } else {
      while ((await httpStatus({ host: this.address, port: this.port }, '/_ping', 1000)) !== 200) {
        if (Date.now() > deadline) throw fail(`answers on its unix socket but not on ${this.url} (bridge, veth or iptables?)`);
        await sleep(40);
      }
    }
    this.config.log(`${this.name}: up at ${this.url} in ${Date.now() - started} ms (pid ${child.pid ?? '?'})`);
  }

  /**
   * Stale pidfiles from a killed dockerd make the next one refuse to start (its own) or
   * wait forever for a containerd that is a zombie (containerd's): the process that
   * reaps orphans here does so late, and a zombie's PID still answers kill(pid, 0).
   */
  private removeStaleState(): void {
    const containerdPidfile = childPath(this.execRoot, 'containerd', 'containerd.pid');
    for (const file of [this.pidfile, containerdPidfile]) {
      let pid: number;
      try {
        pid = Number(readFileSync(file, 'utf8').trim());
      } catch {
        continue;
      }
      // A live process from this engine's previous life (its command line names our
      // exec root or data root) would fight the new dockerd over the same state.
      if (pid > 1 && isAlive(pid) && (cmdline(pid).includes(this.execRoot) || cmdline(pid).includes(this.dataRoot))) {
        signal(pid, 'SIGKILL');
      }
      rmSync(file, { force: true });
    }
  }

  async kill(): Promise<void> {
    const pid = this.child?.pid;
    if (pid === undefined || !this.running()) return;
    signal(pid, 'SIGKILL');
    await this.waitExit(pid, 10_000);
  }

  async stop(): Promise<void> {
    const pid = this.child?.pid;
    if (pid === undefined || !this.running()) return;
    signal(pid, 'SIGTERM');
    // dockerd gives each container its stop timeout (10 s by default), then stops containerd.
    if (!(await this.waitExit(pid, 60_000, false))) {
      this.config.log(`${this.name}: dockerd ignored SIGTERM for 60 s; killing it`);
      signal(pid, 'SIGKILL');
      await this.waitExit(pid, 10_000);
    }
  }

  /** Resolves true once dockerd is gone (reaped, or at least a zombie). */
  private async waitExit(pid: number, timeoutMs: number, mustDie = true): Promise<boolean> {
    const gone = await Promise.race([this.exited.then(() => true), waitDead(pid, timeoutMs)]);
    if (!gone && mustDie) throw new Error(`testbed: dockerd of ${this.name} (pid ${pid}) did not exit within ${timeoutMs / 1000} s`);
    return gone;
  }

  /** PIDs to kill on close (the slot sweep finds the rest: containerd, shims, containers). */
  knownPids(): number[] {
    const pid = this.child?.pid;
    return pid !== undefined && this.running() ? [pid] : [];
  }
}
