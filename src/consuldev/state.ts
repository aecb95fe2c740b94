// The in-memory state of one Consul datacenter with a single server: the KV table with
// its tombstones, the session table, lock delays, and the raft-like index that every
// committed write takes. No I/O here except the session TTL timers, which are part of
// the state's lifetime (Consul's leader keeps them the same way) and end with close().

import { randomUUID } from 'node:crypto';
import { WatchHub, type StateChange } from './watch.js';

export interface KvEntry {
  readonly key: string;
  /** null when the value is empty, as Consul's API shows it ("Value": null). */
  readonly value: Buffer | null;
  /** uint64, opaque to Consul. */
  readonly flags: bigint;
  readonly createIndex: number;
  readonly modifyIndex: number;
  readonly lockIndex: number;
  readonly session: string | undefined;
}

export type SessionBehavior = 'release' | 'delete';

export interface ServiceCheck {
  readonly id: string;
  readonly namespace: string;
}

export interface Session {
  readonly id: string;
  readonly name: string;
  readonly node: string;
  /** Nanoseconds, the unit the API reports it in. */
  readonly lockDelayNs: bigint;
  readonly behavior: SessionBehavior;
  /** As given at creation ("" for none); the API echoes the text. */
  readonly ttl: string;
  readonly ttlNs: bigint;
  readonly nodeChecks: readonly string[];
  readonly serviceChecks: readonly ServiceCheck[] | null;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

export interface SessionSpec {
  name: string;
  node: string;
  lockDelayNs: bigint;
  behavior: SessionBehavior;
  ttl: string;
  ttlNs: bigint;
  nodeChecks: readonly string[];
  serviceChecks: readonly ServiceCheck[] | null;
}

/** A write either commits with an answer or fails with Consul's error text (a 500). */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: string };

export interface Read<T> {
  /** The X-Consul-Index for this answer: never below 1. */
  readonly index: number;
  readonly value: T;
}

export interface StateOptions {
  nodeName: string;
  now?: () => number;
  /**
   * Consul invalidates a TTL session only after TTL x 2 without a renewal (the docs say
   * "up to double this TTL"); we do exactly that, one timer per session.
   */
  ttlMultiplier?: number;
}

const uuidShape = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** The error Consul's state store gives when a session ID cannot be an index key. */
export function sessionIdProblem(id: string): string | undefined {
  if (id.length !== 36) return 'failed session lookup: UUID must be 36 characters';
  if (!uuidShape.test(id)) return 'failed session lookup: Invalid UUID';
  return undefined;
}

export class ConsulState {
  readonly hub = new WatchHub();
  private index = 0;
  private kvIndex = 0;
  private sessionsIndex = 0;
  private readonly kv = new Map<string, KvEntry>();
  /** Every live key, sorted, for prefix scans in key order (Consul's radix order). */
  private readonly sortedKeys: string[] = [];
  /** Deleted key -> index of its deletion, so a prefix's index never slides backwards. */
  private readonly tombstones = new Map<string, number>();
  private readonly sessions = new Map<string, Session>();
  private readonly heldBy = new Map<string, Set<string>>();
  /** Key -> wall time (ms) until which it cannot be locked. */
  private readonly lockDelays = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly now: () => number;
  private readonly ttlMultiplier: number;
  readonly nodeName: string;

  constructor(options: StateOptions) {
    this.nodeName = options.nodeName;
    this.now = options.now ?? Date.now;
    this.ttlMultiplier = options.ttlMultiplier ?? 2;
    // A dev agent has committed a few entries (its own node registration) before anyone
    // can ask: start above zero so that no index we hand out is 0.
    this.index = 1;
  }

  /** The last committed index. */
  lastIndex(): number {
    return this.index;
  }

  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  // ---- KV reads ----

  kvGet(key: string): Read<KvEntry | undefined> {
    const entry = this.kv.get(key);
    return { index: atLeastOne(entry?.modifyIndex ?? this.kvIndex), value: entry };
  }

  kvList(prefix: string): Read<KvEntry[]> {
    const entries = this.scan(prefix);
    let index = 0;
    if (prefix === '') {
      index = this.kvIndex;
    } else {
      for (const e of entries) index = Math.max(index, e.modifyIndex);
      for (const [key, deletedAt] of this.tombstones) {
        if (deletedAt > index && key.startsWith(prefix)) index = deletedAt;
      }
    }
    return { index: atLeastOne(index === 0 ? this.kvIndex : index), value: entries };
  }

  /** Keys under `prefix`, each cut just after the first `separator` past the prefix. */
  kvKeys(prefix: string, separator: string): Read<string[]> {
    const listed = this.kvList(prefix);
    const keys: string[] = [];
    let last: string | undefined;
    for (const entry of listed.value) {
      let key = entry.key;
      if (separator !== '') {
        const at = key.indexOf(separator, prefix.length);
        if (at >= 0) key = key.slice(0, at + separator.length);
      }
      // Sorted input: equal cut keys are adjacent.
      if (key !== last) keys.push(key);
      last = key;
    }
    return { index: listed.index, value: keys };
  }

  // ---- KV writes ----

  kvSet(key: string, value: Buffer | null, flags: bigint): boolean {
    const existing = this.kv.get(key);
    const idx = this.commit();
    this.put({
      key,
      value,
      flags,
      createIndex: existing?.createIndex ?? idx,
      modifyIndex: idx,
      lockIndex: existing?.lockIndex ?? 0,
      session: existing?.session,
    });
    this.publish({ keys: [key], sessions: false });
    return true;
  }

  /** cas = 0: only if absent; otherwise only if the key's ModifyIndex equals cas. */
  kvCas(key: string, value: Buffer | null, flags: bigint, cas: bigint): boolean {
    const existing = this.kv.get(key);
    if (cas === 0n ? existing !== undefined : existing === undefined || BigInt(existing.modifyIndex) !== cas) {
      return false;
    }
    return this.kvSet(key, value, flags);
  }

  kvLock(key: string, value: Buffer | null, flags: bigint, sessionId: string): Outcome<boolean> {
    // Lock-delay is judged first, as Consul's leader does before it commits anything.
    const delayedUntil = this.lockDelays.get(key);
    if (delayedUntil !== undefined) {
      if (delayedUntil > this.now()) return { ok: true, value: false };
      this.lockDelays.delete(key);
    }
    if (sessionId === '') return { ok: false, error: 'missing session' };
    const problem = sessionIdProblem(sessionId);
    if (problem !== undefined) return { ok: false, error: problem };
    if (!this.sessions.has(sessionId)) return { ok: false, error: `invalid session ${JSON.stringify(sessionId)}` };
    const existing = this.kv.get(key);
    if (existing?.session !== undefined && existing.session !== sessionId) return { ok: true, value: false };
    const idx = this.commit();
    const lockIndex = existing === undefined ? 1 : existing.session === sessionId ? existing.lockIndex : existing.lockIndex + 1;
    this.put({ key, value, flags, createIndex: existing?.createIndex ?? idx, modifyIndex: idx, lockIndex, session: sessionId });
    this.publish({ keys: [key], sessions: false });
    return { ok: true, value: true };
  }

  kvUnlock(key: string, value: Buffer | null, flags: bigint, sessionId: string): Outcome<boolean> {
    if (sessionId === '') return { ok: false, error: 'missing session' };
    const existing = this.kv.get(key);
    if (existing === undefined || existing.session !== sessionId) return { ok: true, value: false };
    const idx = this.commit();
    this.put({ ...existing, value, flags, modifyIndex: idx, session: undefined });
    this.publish({ keys: [key], sessions: false });
    return { ok: true, value: true };
  }

  kvDelete(key: string): boolean {
    if (this.kv.has(key)) {
      const idx = this.commit();
      this.remove(key, idx);
      this.publish({ keys: [key], sessions: false });
    }
    return true;
  }

  /** Consul: a CAS delete of a key that does not exist succeeds. */
  kvDeleteCas(key: string, cas: bigint): boolean {
    const existing = this.kv.get(key);
    if (existing === undefined) return true;
    if (BigInt(existing.modifyIndex) !== cas) return false;
    return this.kvDelete(key);
  }

  kvDeleteTree(prefix: string): boolean {
    const keys = this.scan(prefix).map((e) => e.key);
    if (keys.length > 0) {
      const idx = this.commit();
      for (const key of keys) this.remove(key, idx);
      this.publish({ keys, sessions: false });
    }
    return true;
  }

  // ---- sessions ----

  sessionCreate(spec: SessionSpec): Outcome<string> {
    if (spec.node !== this.nodeName) return { ok: false, error: 'Missing node registration' };
    let id = randomUUID();
    while (this.sessions.has(id)) id = randomUUID();
    const idx = this.commit();
    this.sessions.set(id, { ...spec, id, createIndex: idx, modifyIndex: idx });
    this.sessionsIndex = idx;
    this.armTimer(id, spec.ttlNs);
    this.publish({ keys: [], sessions: true });
    return { ok: true, value: id };
  }

  /** Idempotent: destroying an unknown session succeeds. */
  sessionDestroy(id: string): Outcome<true> {
    const problem = sessionIdProblem(id);
    if (problem !== undefined) return { ok: false, error: problem };
    this.invalidate(id);
    return { ok: true, value: true };
  }

  /** Resets the TTL timer; undefined when the session does not exist (any more). */
  sessionRenew(id: string): Outcome<Read<Session | undefined>> {
    const problem = sessionIdProblem(id);
    if (problem !== undefined) return { ok: false, error: problem };
    const session = this.sessions.get(id);
    if (session !== undefined) this.armTimer(id, session.ttlNs);
    return { ok: true, value: { index: atLeastOne(this.sessionsIndex), value: session } };
  }

  sessionGet(id: string): Outcome<Read<Session[]>> {
    const problem = sessionIdProblem(id);
    if (problem !== undefined) return { ok: false, error: problem };
    const session = this.sessions.get(id);
    return { ok: true, value: { index: atLeastOne(this.sessionsIndex), value: session === undefined ? [] : [session] } };
  }

  sessionList(node?: string): Read<Session[]> {
    const all = [...this.sessions.values()].filter((s) => node === undefined || s.node === node);
    // memdb returns sessions ordered by ID.
    all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { index: atLeastOne(this.sessionsIndex), value: all };
  }

  // ---- internals ----

  private commit(): number {
    this.index += 1;
    return this.index;
  }

  private publish(change: StateChange): void {
    this.hub.notify(change);
  }

  private armTimer(id: string, ttlNs: bigint): void {
    const old = this.timers.get(id);
    if (old !== undefined) clearTimeout(old);
    this.timers.delete(id);
    if (ttlNs <= 0n) return;
    const ms = Number(ttlNs / 1_000_000n) * this.ttlMultiplier;
    const timer = setTimeout(() => {
      this.timers.delete(id);
      this.invalidate(id);
    }, ms);
    // An expiring session must not keep a process alive on its own.
    timer.unref();
    this.timers.set(id, timer);
  }

  /** Destroy or expiry: the session goes, its locks are released or deleted per Behavior. */
  private invalidate(id: string): void {
    const session = this.sessions.get(id);
    if (session === undefined) return;
    const timer = this.timers.get(id);
    if (timer !== undefined) clearTimeout(timer);
    this.timers.delete(id);
    const idx = this.commit();
    this.sessions.delete(id);
    this.sessionsIndex = idx;
    const keys = [...(this.heldBy.get(id) ?? [])];
    this.heldBy.delete(id);
    const delayMs = Number(session.lockDelayNs / 1_000_000n);
    const now = this.now();
    for (const [key, until] of this.lockDelays) if (until <= now) this.lockDelays.delete(key);
    for (const key of keys) {
      const entry = this.kv.get(key);
      if (entry === undefined) continue;
      if (delayMs > 0) this.lockDelays.set(key, now + delayMs);
      switch (session.behavior) {
        case 'release':
          this.put({ ...entry, modifyIndex: idx, session: undefined });
          break;
        case 'delete':
          this.remove(key, idx);
          break;
        default: {
          const unreachable: never = session.behavior;
          throw new Error(`unknown session behavior ${String(unreachable)}`);
        }
      }
    }
    this.publish({ keys, sessions: true });
  }

  private put(entry: KvEntry): void {
    const previous = this.kv.get(entry.key);
    if (previous === undefined) {
      this.sortedKeys.splice(lowerBound(this.sortedKeys, entry.key), 0, entry.key);
      // A live entry's ModifyIndex is above its old tombstone's: the stone adds nothing.
      this.tombstones.delete(entry.key);
    }
    if (previous?.session !== undefined && previous.session !== entry.session) {
      this.heldBy.get(previous.session)?.delete(entry.key);
    }
    if (entry.session !== undefined) {
      let held = this.heldBy.get(entry.session);
      if (held === undefined) {
        held = new Set();
        this.heldBy.set(entry.session, held);
      }
      held.add(entry.key);
    }
    this.kv.set(entry.key, entry);
    this.kvIndex = Math.max(this.kvIndex, entry.modifyIndex);
  }

  private remove(key: string, idx: number): void {
    const entry = this.kv.get(key);
    if (entry === undefined) return;
    this.kv.delete(key);
    const at = lowerBound(this.sortedKeys, key);
    if (this.sortedKeys[at] === key) this.sortedKeys.splice(at, 1);
    if (entry.session !== undefined) this.heldBy.get(entry.session)?.delete(key);
    this.tombstones.set(key, idx);
    this.kvIndex = Math.max(this.kvIndex, idx);
  }

  private scan(prefix: string): KvEntry[] {
    const out: KvEntry[] = [];
    for (let i = lowerBound(this.sortedKeys, prefix); i < this.sortedKeys.length; i++) {
      const key = this.sortedKeys[i];
      if (key === undefined || !key.startsWith(prefix)) break;
      const entry = this.kv.get(key);
      if (entry !== undefined) out.push(entry);
    }
    return out;
  }
}

function atLeastOne(index: number): number {
  return index < 1 ? 1 : index;
}

function lowerBound(sorted: readonly string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const probe = sorted[mid];
    if (probe !== undefined && probe < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
