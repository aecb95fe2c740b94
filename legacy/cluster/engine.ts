// One engine of the pool: its cached state (info, containers, images, networks,
// volumes), kept fresh by the engine's event stream and a randomised refresh loop, and
// its health. A broken event stream triggers a probe at once, so a dead engine is seen
// in seconds rather than after the refresh interval.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ContainerInspect, ContainerSummary, PortSummary, EngineEvent, EngineInfo, EngineVersion, ImageSummary, NetworkResource, VolumeResource } from '../../src/docker/types.js';
import { createEngineClient, jsonStream, type EngineClient, type EngineTls } from '../../src/docker/engine-client.js';
import { ApiError } from '../../src/docker/errors.js';
import { log as rootLog, type Logger } from '../../src/log.js';

export type EngineState = 'pending' | 'healthy' | 'unhealthy';

export interface EngineOptions {
  refreshMinMs: number;
  refreshMaxMs: number;
  /** Consecutive failures before an engine is marked unhealthy. */
  failureRetry: number;
  timeoutMs: number;
  tls?: EngineTls;
}

/**
 * One container as cached. Entries are replaced, never changed in place: the scheduler's
 * view of an entry is memoised by its identity (sched-view.ts).
 */
export interface CachedContainer {
  readonly summary: ContainerSummary;
  /** Resources and port bindings the scheduler needs; absent until the first inspect returns. */
  readonly inspect?: ContainerInspect;
}

/** A create the scheduler has placed on this engine that the engine has not confirmed yet. */
export interface PendingCreate {
  token: number;
  name?: string;
  image: string;
  labels: Record<string, string>;
  cpuShares: number;
  memory: number;
  networkMode: string;
  portBindings: Record<string, Array<{ HostIp?: string; HostPort?: string }> | null>;
}

export type EngineListener = (engine: Engine, event: EngineEvent) => void;

const containerEventTypes = new Set(['container']);

export type RefreshDepth = 'full' | 'state';

/** Container events that change only its state, ports and networks' addresses. */
const stateActions = new Set(['start', 'die', 'stop', 'kill', 'pause', 'unpause', 'restart', 'oom', 'health_status']);

/** The list entry's Ports, as the engine writes them, from an inspect's NetworkSettings.Ports. */
export function portsOf(inspect: ContainerInspect): PortSummary[] {
  const out: PortSummary[] = [];
  for (const [key, bindings] of Object.entries(inspect.NetworkSettings?.Ports ?? {})) {
    const [port = '0', type = 'tcp'] = key.split('/');
    const privatePort = Number(port);
    if (!bindings || bindings.length === 0) out.push({ PrivatePort: privatePort, Type: type });
    else for (const b of bindings) out.push({ IP: b.HostIp ?? '', PrivatePort: privatePort, PublicPort: Number(b.HostPort ?? '0'), Type: type });
  }
  return out;
}

export class Engine {
  readonly client: EngineClient;
  state: EngineState = 'pending';
  lastError = '';
  failures = 0;
  updatedAt = new Date(0);
  info: EngineInfo | undefined;
  version: EngineVersion | undefined;
  readonly containers = new Map<string, CachedContainer>();
  images: ImageSummary[] = [];
  networks: NetworkResource[] = [];
  volumes: VolumeResource[] = [];
  readonly pending = new Map<number, PendingCreate>();
  /** IDs of containers created through us whose first refresh has not landed yet. */
  readonly justCreated = new Set<string>();
  /** Container refreshes under way (after our own calls or events); reads wait for them. */
  private readonly inflight = new Set<Promise<void>>();
  private readonly log: Logger;
  private readonly stopper = new AbortController();
  private wake: (() => void) | undefined;
  private stateListeners: Array<(e: Engine) => void> = [];

  constructor(
    readonly addr: string,
    private readonly opts: EngineOptions,
    private readonly onEvent: EngineListener,
  ) {
    this.client = createEngineClient(addr, { timeoutMs: opts.timeoutMs, tls: opts.tls });
    this.log = rootLog.with({ addr });
  }

  get id(): string {
    return this.info?.ID ?? '';
  }

  get name(): string {
    return this.info?.Name ?? this.addr;
  }

  get ip(): string {
    return this.client.host;
  }

  get healthy(): boolean {
    return this.state === 'healthy';
  }

  /** Engine labels as classic exposed them to constraints: dockerd labels plus node attributes. */
  get labels(): Record<string, string> {
    const out: Record<string, string> = {};
    const info = this.info;
    if (!info) return out;
    out.storagedriver = info.Driver;
    out.kernelversion = info.KernelVersion;
    out.operatingsystem = info.OperatingSystem;
    if (info.ExecutionDriver) out.executiondriver = info.ExecutionDriver;
    if (info.OSType) out.ostype = info.OSType;
    for (const l of info.Labels ?? []) {
      const i = l.indexOf('=');
      if (i > 0) out[l.slice(0, i)] = l.slice(i + 1);
    }
    return out;
  }

  onStateChange(fn: (e: Engine) => void): void {
    this.stateListeners.push(fn);
  }

  private setState(state: EngineState, error = ''): void {
    const changed = state !== this.state;
    this.state = state;
    this.lastError = error;
    if (!changed) return;
    if (state === 'unhealthy') this.log.error('Flagging engine as unhealthy', { name: this.name, id: this.id, error });
    else if (state === 'healthy') this.log.info('Engine is healthy', { name: this.name, id: this.id });
    for (const fn of this.stateListeners) fn(this);
  }

  /** Validates the engine and runs its refresh and event loops until stop(). */
  run(validate: (e: Engine) => string | undefined): void {
    void this.loop(validate);
  }

  stop(): void {
    this.stopper.abort();
    this.wake?.();
    this.client.close();
  }

  /** Asks the refresh loop to probe now (for instance when the event stream broke). */
  probeNow(): void {
    this.wake?.();
  }

  private async loop(validate: (e: Engine) => string | undefined): Promise<void> {
    const signal = this.stopper.signal;
    let eventsRunning = false;
    while (!signal.aborted) {
      try {
        await this.refreshAll();
        const refusal = validate(this);
        if (refusal) {
          this.setState('unhealthy', refusal);
        } else {
          this.failures = 0;
          this.setState('healthy');
          if (!eventsRunning) {
            eventsRunning = true;
            void this.eventLoop(signal).finally(() => {
              eventsRunning = false;
              // The stream ended: the engine may be gone. Look now, not at the next refresh.
              if (!signal.aborted) this.probeNow();
            });
          }
        }
      } catch (err) {
        this.failures++;
        const message = (err as Error).message;
        this.log.debug('engine refresh failed', { failures: this.failures, error: message });
        if (this.failures >= this.opts.failureRetry) this.setState('unhealthy', message);
        else this.lastError = message;
      }
      await this.sleepOrWake(this.nextDelay(), signal);
    }
  }

  /**
   * Healthy engines refresh at a random point between min and max (so a large pool does
   * not refresh in lockstep). A failing engine is retried quickly until it is declared
   * unhealthy (seconds, not a refresh interval), and an unhealthy one is probed with a
   * backoff capped at the minimum interval, so its return is seen soon.
   */
  private nextDelay(): number {
    const { refreshMinMs, refreshMaxMs, failureRetry } = this.opts;
    if (this.failures === 0) return refreshMinMs + Math.random() * (refreshMaxMs - refreshMinMs);
    if (this.failures < failureRetry) return 500 * this.failures;
    return Math.min(refreshMinMs, 1000 * 2 ** Math.min(10, this.failures - failureRetry));
  }

  private async sleepOrWake(ms: number, signal: AbortSignal): Promise<void> {
    const woken = new Promise<void>((resolve) => {
      this.wake = resolve;
    });
    try {
      await Promise.race([sleep(ms, undefined, { signal }), woken]);
    } catch {
      // aborted
    } finally {
      this.wake = undefined;
    }
  }

  private async eventLoop(signal: AbortSignal): Promise<void> {
    try {
      const stream = await this.client.stream('GET', '/events', signal);
      for await (const value of jsonStream(stream)) {
        const event = value as EngineEvent;
        this.handleEvent(event);
        this.onEvent(this, event);
      }
    } catch (err) {
      if (!signal.aborted) this.log.debug('event stream ended', { error: (err as Error).message });
    }
  }

  private handleEvent(event: EngineEvent): void {
    const type = event.Type ?? 'container';
    const id = event.Actor?.ID ?? event.id ?? '';
    const action = event.Action ?? event.status ?? '';
    if (containerEventTypes.has(type) && id) {
      if (action === 'destroy') this.containers.delete(id);
      else if (!action.startsWith('exec_') && action !== 'top' && action !== 'attach' && action !== 'resize') void this.refreshContainer(id, stateActions.has(action.split(':')[0] ?? '') ? 'state' : 'full');
    } else if (type === 'image') {
      void this.refreshImages().catch(() => undefined);
    } else if (type === 'network') {
      void this.refreshNetworks().catch(() => undefined);
      // connect/disconnect change the container's networks, and no container event says so.
      const container = event.Actor?.Attributes?.container;
      if (container && this.containers.has(container)) void this.refreshContainer(container);
    } else if (type === 'volume') {
      void this.refreshVolumes().catch(() => undefined);
    }
  }

  async refreshAll(): Promise<void> {
    const [info, version] = await Promise.all([this.client.json<EngineInfo>('GET', '/info'), this.client.json<EngineVersion>('GET', '/version')]);
    this.info = info;
    this.version = version;
    await Promise.all([this.refreshContainers(), this.refreshImages(), this.refreshNetworks(), this.refreshVolumes()]);
    this.updatedAt = new Date();
  }

  private async refreshContainers(): Promise<void> {
    const list = await this.client.json<ContainerSummary[]>('GET', '/containers/json?all=1');
    const seen = new Set<string>();
    const toInspect: string[] = [];
    for (const summary of list) {
      seen.add(summary.Id);
      const cached = this.containers.get(summary.Id);
      // Resources and bindings only change through `docker update`/recreate, which raise
      // events; inspect only what is new to us.
      if (!cached?.inspect) toInspect.push(summary.Id);
      this.containers.set(summary.Id, { summary, inspect: cached?.inspect });
    }
    for (const id of this.containers.keys()) if (!seen.has(id)) this.containers.delete(id);
    await forEachLimited(toInspect, 16, async (id) => {
      try {
        const inspect = await this.client.json<ContainerInspect>('GET', `/containers/${id}/json`);
        const cached = this.containers.get(id);
        if (cached) this.containers.set(id, { summary: cached.summary, inspect });
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 404)) throw err;
      }
    });
  }

  /** Per container: the refresh under way, and what must follow it (none, a state read, a full read). */
  private readonly refreshing = new Map<string, { done: Promise<void>; again: RefreshDepth | undefined }>();

  /**
   * Re-reads one container; removes it if the engine no longer has it. 'full' reads the
   * list entry and the inspect (for a new container, a rename, an update, a network
   * change); 'state' reads only the inspect and patches the entry's state, ports and
   * networks (start, die, pause...: half the calls, on the path of every `docker run`).
   * Calls for a container already being refreshed coalesce into one more read after the
   * current one, so a burst of events costs at most two reads, and the last read always
   * follows the last change.
   */
  refreshContainer(id: string, depth: RefreshDepth = 'full'): Promise<void> {
    const running = this.refreshing.get(id);
    if (running) {
      running.again = running.again === 'full' || depth === 'full' ? 'full' : 'state';
      return running.done;
    }
    const entry: { done: Promise<void>; again: RefreshDepth | undefined } = { done: Promise.resolve(), again: depth };
    entry.done = (async () => {
      while (entry.again !== undefined) {
        const next: RefreshDepth = entry.again;
        entry.again = undefined;
        if (next === 'state' && this.containers.has(id)) await this.readState(id);
        else await this.readContainer(id);
      }
      this.refreshing.delete(id);
    })();
    this.refreshing.set(id, entry);
    this.track(entry.done);
    return entry.done;
  }

  private async readContainer(id: string): Promise<void> {
    try {
      const filters = encodeURIComponent(JSON.stringify({ id: [id] }));
      const [list, inspect] = await Promise.all([
        this.client.json<ContainerSummary[]>('GET', `/containers/json?all=1&filters=${filters}`),
        this.client.json<ContainerInspect>('GET', `/containers/${id}/json`).catch((err: unknown) => {
          if (err instanceof ApiError && err.status === 404) return undefined;
          throw err;
        }),
      ]);
      const summary = list.find((c) => c.Id === id);
      if (summary && inspect) this.containers.set(id, { summary, inspect });
      else this.containers.delete(id);
    } catch (err) {
      this.log.debug('container refresh failed', { id, error: (err as Error).message });
    }
  }

  /** The inspect alone, patched into the cached entry: what a state change alters. */
  private async readState(id: string): Promise<void> {
    try {
      const inspect = await this.client.json<ContainerInspect>('GET', `/containers/${id}/json`);
      const cached = this.containers.get(id);
      if (!cached) return;
      const summary: ContainerSummary = { ...cached.summary, State: inspect.State.Status, Ports: portsOf(inspect) };
      if (inspect.NetworkSettings?.Networks) summary.NetworkSettings = { Networks: inspect.NetworkSettings.Networks };
      this.containers.set(id, { summary, inspect });
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) this.containers.delete(id);
      else this.log.debug('container state refresh failed', { id, error: (err as Error).message });
    }
  }

  async refreshImages(): Promise<void> {
    this.images = await this.client.json<ImageSummary[]>('GET', '/images/json?all=0');
  }

  async refreshNetworks(): Promise<void> {
    this.networks = await this.client.json<NetworkResource[]>('GET', '/networks');
  }

  async refreshVolumes(): Promise<void> {
    const res = await this.client.json<{ Volumes: VolumeResource[] | null }>('GET', '/volumes');
    this.volumes = res.Volumes ?? [];
  }

  /** Records a refresh that reads will wait for (read-your-writes after a call through us). */
  private track(p: Promise<void>): void {
    const q = p.catch(() => undefined);
    this.inflight.add(q);
    void q.finally(() => this.inflight.delete(q));
  }

  /**
   * Resolves when the refreshes under way now have landed. Later ones are not waited
   * for: a read needs to see the writes that were answered before it, and under a
   * steady stream of events waiting for "none in flight" could wait forever.
   */
  async settled(): Promise<void> {
    if (this.inflight.size > 0) await Promise.all([...this.inflight]);
  }
}

async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  });
  await Promise.all(workers);
}
