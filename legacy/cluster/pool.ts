// The engine pool: every engine discovery names, each with its cached view. Engines are
// added and removed as discovery changes; an engine whose ID another engine already has
// is refused (two addresses for one engine would double-count it).
import type { EngineEvent } from '../../src/docker/types.js';
import { ApiError, noSuchContainer } from '../../src/docker/errors.js';
import { log } from '../../src/log.js';
import { Engine, type CachedContainer, type EngineOptions } from './engine.js';

export interface ContainerRef {
  engine: Engine;
  container: CachedContainer;
}

/** Where a call about a container goes: its engine and its full ID. */
export interface ContainerTarget {
  engine: Engine;
  id: string;
}

export type PoolEventListener = (engine: Engine, event: EngineEvent) => void;

/** Validated at least once (healthy or not): its info and version are known. */
export function isKnown(e: Engine): boolean {
  return e.info !== undefined && e.state !== 'pending';
}

export class EnginePool {
  readonly engines = new Map<string, Engine>();
  private readonly listeners = new Set<PoolEventListener>();
  private readonly stateListeners = new Set<(e: Engine) => void>();

  /** Engines discovery stopped listing, and when their grace ends. */
  private readonly leaving = new Map<string, NodeJS.Timeout>();

  /**
   * @param removalGraceMs how long an engine may be missing from discovery before it is
   * removed: a store that restarts empty, or blinks, must not empty the cluster.
   */
  constructor(
    private readonly opts: EngineOptions,
    private readonly removalGraceMs = 0,
  ) {}

  /** Makes the pool hold these engine addresses (engines no longer listed leave after the grace). */
  update(addrs: string[]): void {
    const want = new Set(addrs);
    for (const [addr, engine] of this.engines) {
      if (want.has(addr) || this.leaving.has(addr)) continue;
      const remove = (): void => {
        this.leaving.delete(addr);
        log.info('Removing engine', { addr, name: engine.name });
        engine.stop();
        this.engines.delete(addr);
      };
      if (this.removalGraceMs <= 0) remove();
      else this.leaving.set(addr, setTimeout(remove, this.removalGraceMs));
    }
    for (const addr of want) {
      const timer = this.leaving.get(addr);
      if (timer) {
        clearTimeout(timer);
        this.leaving.delete(addr);
      }
    }
    for (const addr of want) {
      if (this.engines.has(addr)) continue;
      log.info('Registered Engine', { addr });
      const engine = new Engine(addr, this.opts, (e, ev) => {
        for (const l of this.listeners) l(e, ev);
      });
      engine.onStateChange((e) => {
        for (const l of this.stateListeners) l(e);
      });
      this.engines.set(addr, engine);
      engine.run((e) => this.duplicateOf(e));
    }
  }

  private duplicateOf(engine: Engine): string | undefined {
    for (const other of this.engines.values()) {
      if (other !== engine && other.id !== '' && other.id === engine.id && other.state !== 'pending') {
        return `ID duplicated. ${engine.id} shared by this node ${engine.addr} and another node ${other.addr}`;
      }
    }
    return undefined;
  }

  onEvent(fn: PoolEventListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  onStateChange(fn: (e: Engine) => void): () => void {
    this.stateListeners.add(fn);
    return () => this.stateListeners.delete(fn);
  }

  list(): Engine[] {
    return [...this.engines.values()].sort((a, b) => a.name.localeCompare(b.name) || a.addr.localeCompare(b.addr));
  }

  healthy(): Engine[] {
    return this.list().filter((e) => e.healthy);
  }

  /** Engines that have been validated at least once (healthy or not). */
  known(): Engine[] {
    return this.list().filter(isKnown);
  }

  byName(name: string): Engine | undefined {
    return this.list().find((e) => e.name === name || e.id === name || e.addr === name);
  }

  /** Waits for refreshes started by calls through us, so reads see our own writes. */
  async settled(): Promise<void> {
    await Promise.all(this.list().map((e) => e.settled()));
  }

  /**
   * Finds a container by full ID, name ("web", "/web"), node-qualified name
   * ("node1/web") or unique ID prefix, as the docker CLI lets users name it.
   */
  findContainer(ref: string): ContainerRef | undefined {
    const name = ref.startsWith('/') ? ref.slice(1) : ref;
    for (const engine of this.engines.values()) {
      const container = engine.containers.get(ref);
      if (container) return { engine, container };
    }
    for (const engine of this.engines.values()) {
      for (const container of engine.containers.values()) {
        for (const n of container.summary.Names) {
          const bare = n.startsWith('/') ? n.slice(1) : n;
          if (bare === name || `${engine.name}/${bare}` === name) return { engine, container };
        }
      }
    }
    if (/^[0-9a-f]+$/.test(ref)) {
      const byPrefix: ContainerRef[] = [];
      for (const engine of this.engines.values()) {
        for (const container of engine.containers.values()) {
          if (container.summary.Id.startsWith(ref)) byPrefix.push({ engine, container });
        }
      }
      if (byPrefix.length > 1) throw new ApiError(404, `Multiple IDs found with provided prefix: ${ref}`);
      return byPrefix[0];
    }
    return undefined;
  }

  /**
   * Finds a container for a call about it: from the cache; else once the refreshes our
   * own calls started have landed (a create answered a moment ago); else by asking the
   * engines (a container made directly on an engine, whose event has not arrived yet).
   */
  async resolveContainer(ref: string): Promise<ContainerTarget> {
    const cached = this.findContainer(ref);
    if (cached) return { engine: cached.engine, id: cached.container.summary.Id };
    // A container created through us a moment ago, by the ID we answered with: its
    // engine is known without waiting for the cache (`docker run` starts it at once).
    for (const engine of this.engines.values()) if (engine.justCreated.has(ref)) return { engine, id: ref };
    await this.settled();
    const settled = this.findContainer(ref);
    if (settled) return { engine: settled.engine, id: settled.container.summary.Id };
    const asked = await Promise.all(
      this.healthy().map(async (engine) => {
        const r = await engine.client.request('GET', `/containers/${encodeURIComponent(ref)}/json`).catch(() => undefined);
        if (r?.status !== 200) return undefined;
        const id = (JSON.parse(r.body.toString('utf8')) as { Id: string }).Id;
        await engine.refreshContainer(id);
        return id;
      }),
    );
    const id = asked.find((x) => x !== undefined);
    const found = id ? this.findContainer(id) : undefined;
    if (!found) throw noSuchContainer(ref);
    return { engine: found.engine, id: found.container.summary.Id };
  }

  /** Whether a container name is taken anywhere in the cluster (including pending creates). */
  nameTaken(name: string): string | undefined {
    for (const engine of this.engines.values()) {
      for (const c of engine.containers.values()) {
        if (c.summary.Names.some((n) => n.replace(/^\//, '') === name)) return c.summary.Id;
      }
      for (const p of engine.pending.values()) if (p.name === name) return 'pending';
    }
    return undefined;
  }

  close(): void {
    for (const t of this.leaving.values()) clearTimeout(t);
    this.leaving.clear();
    for (const e of this.engines.values()) e.stop();
    this.engines.clear();
  }
}
