// The testbed: N real dockerd "hosts" on one machine, each in its own network and UTS
// namespace on a private bridge, for integration tests, benchmarks and the sandbox.
//
//   const tb = await startTestbed({ engines: 3 });
//   try { ... docker -H tb.engines[0].url run --rm busybox echo hi ... } finally { await tb.close(); }
import { accessSync, constants, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Engine, type EngineHost, type TestbedTls } from './engine.js';
import { track, untrack } from './exit.js';
import { busyboxImageTar, importBusybox } from './image.js';
import { ENGINE_PORT, ENGINE_TLS_PORT, MAX_ENGINES, REGISTRY_PORT, bridgeAddress, engineLayout } from './layout.js';
import { createBridge, createEngineNetwork } from './network.js';
import { childPath, slotDir } from './paths.js';
import { which } from './proc.js';
import { RegistryProcess, type Registry } from './registry.js';
import { acquireSlot, releaseSlot } from './slots.js';
import { storageDriver } from './storage.js';
import { sweepSlot } from './sweep.js';

export type { EngineHost, TestbedTls } from './engine.js';
export type { Registry } from './registry.js';
export { busyboxImageTar } from './image.js';
export { slotLeftovers } from './sweep.js';
export { listSlots, reclaimSlots } from './slots.js';

export interface Testbed {
  /** Slot number: the subnet is 10.213.<id>.0/24 and every name carries it. */
  readonly id: number;
  readonly engines: EngineHost[];
  /** Host side of the bridge, e.g. "10.213.3.1": host processes bind here (or 127.0.0.1). */
  readonly bridgeAddress: string;
  /** The files the engines run with (`--tlsverify` on port 2376), or undefined (plain TCP, 2375). */
  readonly tls: TestbedTls | undefined;
  /** Debian's docker-registry on bridgeAddress:5000; every engine already trusts it. */
  startRegistry(): Promise<Registry>;
  /** Stops every process, removes every netns, link, rule and directory. Idempotent. */
  close(): Promise<void>;
}

export interface TestbedOptions {
  engines: number;
  /** Per-engine labels (dockerd --label), index-aligned with engines. */
  labels?: Array<Record<string, string>>;
  /** Import busybox:latest on every engine (default true). */
  image?: boolean;
  /** Progress lines (default: silent unless TESTBED_DEBUG=1). */
  log?: (line: string) => void;
  /**
   * Run every engine's TCP listener with `--tlsverify` on port 2376 (instead of plain TCP
   * on 2375). The certificate's SANs must name the engines' addresses, which are known
   * only once a slot is allocated: pass a function to make the files then (it is called
   * once, before any engine starts). The unix sockets stay plain.
   */
  tls?: TestbedTls | ((addresses: TestbedAddresses) => TestbedTls | Promise<TestbedTls>);
}

/** Where a testbed's engines will be, before they start. */
export interface TestbedAddresses {
  readonly bridgeAddress: string;
  /** Engine i's address, index-aligned with `engines`. */
  readonly engineAddresses: string[];
  /** The port the engines will listen on (2376, Docker's TLS port). */
  readonly port: number;
}

function checkTlsFiles(tls: TestbedTls): TestbedTls {
  for (const [what, path] of Object.entries(tls)) {
    if (typeof path !== 'string' || path.length === 0) throw new Error(`testbed: tls.${what} must be a file path, got ${JSON.stringify(path)}`);
  }
  // dockerd runs with our working directory, but absolute paths read better in its log.
  const out = { ca: resolve(tls.ca), cert: resolve(tls.cert), key: resolve(tls.key) };
  for (const [what, path] of Object.entries(out)) {
    try {
      accessSync(path, constants.R_OK);
    } catch (err) {
      throw new Error(`testbed: tls.${what} ${path} is not readable: ${String(err)}`, { cause: err });
    }
  }
  return Object.freeze(out);
}

/** How long one engine may take to answer /_ping before startTestbed fails. */
const ENGINE_START_TIMEOUT_MS = 60_000;

const REQUIRED_TOOLS = ['dockerd', 'containerd', 'runc', 'nsenter', 'unshare', 'sh', 'ip', 'iptables', 'mount', 'umount', 'tar'];

function checkHost(): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new Error('testbed: must run as root (it creates network namespaces, bridges, iptables rules and runs dockerd)');
  }
  const missing = REQUIRED_TOOLS.filter((tool) => which(tool) === undefined);
  if (missing.length > 0) {
    throw new Error(`testbed: missing ${missing.join(', ')}; install docker.io, iproute2, iptables and util-linux (see .ci/setup)`);
  }
}

function defaultLog(): (line: string) => void {
  return process.env.TESTBED_DEBUG === '1' ? (line) => process.stderr.write(`[testbed] ${line}\n`) : () => undefined;
}

class LocalTestbed implements Testbed {
  readonly id: number;
  readonly bridgeAddress: string;
  readonly engines: Engine[];
  readonly tls: TestbedTls | undefined;
  private readonly log: (line: string) => void;
  private registry: RegistryProcess | undefined;
  private closed = false;

  constructor(id: number, engines: Engine[], tls: TestbedTls | undefined, log: (line: string) => void) {
    this.id = id;
    this.tls = tls;
    this.bridgeAddress = bridgeAddress(id);
    this.engines = engines;
    this.log = log;
  }

  async startRegistry(): Promise<Registry> {
    if (this.closed) throw new Error(`testbed ${this.id} is closed`);
    if (this.registry?.pid !== undefined) return this.registry;
    const registry = new RegistryProcess(this.bridgeAddress, childPath(slotDir(this.id), 'registry'));
    this.registry = registry;
    await registry.start(this.log);
    return registry;
  }

  close(): Promise<void> {
    try {
      this.closeSync();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Everything is SIGKILLed: nothing here needs a graceful shutdown, and it is fast. */
  closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    const started = Date.now();
    try {
      const pids = this.engines.flatMap((engine) => engine.knownPids());
      const registryPid = this.registry?.pid;
      if (registryPid !== undefined) pids.push(registryPid);
      sweepSlot(this.id, pids);
      releaseSlot(this.id);
      this.log(`testbed ${this.id}: closed in ${Date.now() - started} ms`);
    } finally {
      untrack(this);
    }
  }
}

export async function startTestbed(opts: TestbedOptions): Promise<Testbed> {
  const log = opts.log ?? defaultLog();
  checkHost();
  const count = opts.engines;
  if (!Number.isInteger(count) || count < 1 || count > MAX_ENGINES) {
    throw new Error(`testbed: engines must be an integer from 1 to ${MAX_ENGINES}, got ${count}`);
  }
  const labels = opts.labels ?? [];
  if (labels.length > count) throw new Error(`testbed: ${labels.length} label sets for ${count} engines`);
  const started = Date.now();

  // Build (or find) the image tar while the engines boot.
  const tar = opts.image === false ? undefined : busyboxImageTar();
  tar?.catch(() => undefined);
  const driver = storageDriver(log);
  const slot = await acquireSlot();
  const bridge = bridgeAddress(slot);
  let tls: TestbedTls | undefined;
  try {
    const given = typeof opts.tls === 'function'
      ? await opts.tls({ bridgeAddress: bridge, engineAddresses: Array.from({ length: count }, (_, index) => engineLayout(slot, index).address), port: ENGINE_TLS_PORT })
      : opts.tls;
    tls = given === undefined ? undefined : checkTlsFiles(given);
  } catch (err) {
    releaseSlot(slot);
    throw err;
  }
  const engines = Array.from({ length: count }, (_, index) => {
    return new Engine({
      layout: engineLayout(slot, index),
      labels: labels[index] ?? {},
      storageDriver: driver,
      insecureRegistry: `${bridge}:${REGISTRY_PORT}`,
      startTimeoutMs: ENGINE_START_TIMEOUT_MS,
      tls,
      log,
    });
  });
  const testbed = new LocalTestbed(slot, engines, tls, log);
  track(testbed);
  try {
    mkdirSync(slotDir(slot), { recursive: true });
    createBridge(slot);
    for (const engine of engines) createEngineNetwork(engineLayout(slot, engine.index));
    log(`testbed ${slot}: network for ${count} engines ready in ${Date.now() - started} ms`);

    const results = await Promise.allSettled(engines.map((engine) => engine.start()));
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason instanceof Error ? r.reason.message : String(r.reason)] : []));
    if (failures.length > 0) throw new Error(failures.join('\n\n'));
    log(`testbed ${slot}: ${count} engines answering on port ${tls ? `${ENGINE_TLS_PORT} (TLS)` : ENGINE_PORT} in ${Date.now() - started} ms`);

    if (tar !== undefined) {
      const path = await tar;
      await Promise.all(engines.map((engine) => importBusybox(engine.socketPath, path)));
      log(`testbed ${slot}: busybox:latest imported in ${Date.now() - started} ms`);
    }
    return testbed;
  } catch (err) {
    try {
      testbed.closeSync();
    } catch (closeErr) {
      log(`testbed ${slot}: cleanup after failed start: ${String(closeErr)}`);
    }
    throw err;
  }
}
