// The store's pure core: the tables of typed objects, their indexes, and the transaction
// rules. Deterministic: fed the same committed transactions in the same order, every
// replica holds the same objects with the same versions. No clock (times come inside the
// transaction, from the proposer), no I/O.
//
// A transaction is all-or-nothing: every op is checked against the state as the earlier
// ops of the same transaction leave it; the first failure refuses the whole transaction
// and changes nothing. Updates and guarded deletes carry the version the writer read
// (optimistic concurrency): if the object moved on since, the write is refused with
// `versionConflict`, never merged.

import { isKind, isTaskState, KINDS, nameOf, UNIQUE_NAMES } from './objects.js';
import type { FieldsOf, Kind, Meta, StoreObject, TaskFields } from './objects.js';

export type Op =
  | { readonly op: 'create'; readonly kind: Kind; readonly id: string; readonly fields: FieldsOf[Kind] }
  | { readonly op: 'update'; readonly kind: Kind; readonly id: string; readonly version: number; readonly fields: FieldsOf[Kind] }
  | { readonly op: 'delete'; readonly kind: Kind; readonly id: string; readonly version?: number };

export interface Transaction {
  /** RFC 3339, the proposer's clock: becomes createdAt/updatedAt. */
  readonly time: string;
  readonly ops: readonly Op[];
}

export type StoreErrorCode = 'notFound' | 'exists' | 'nameConflict' | 'versionConflict' | 'invalid';

export interface TxError {
  readonly code: StoreErrorCode;
  readonly message: string;
  /** Which op of the transaction was refused. */
  readonly op: number;
}

export type TxOutcome = { readonly ok: true; readonly version: number; readonly changes: readonly Change[] } | { readonly ok: false; readonly error: TxError };

export interface Change {
  readonly action: 'create' | 'update' | 'delete';
  readonly kind: Kind;
  /** The object after the change (for a delete: as it was when deleted). */
  readonly object: StoreObject;
  /** Updates: the object before the change (absent in a catch-up batch). */
  readonly old?: StoreObject;
}

/** The changes of one committed transaction, or a catch-up batch (see `changesSince`). */
export interface Commit {
  readonly version: number;
  readonly changes: readonly Change[];
  /**
   * True for a batch summarising everything after a version whose individual commits are
   * no longer kept: each object that changed appears once, in its current state (deleted
   * ones as delete). Applying it brings a consumer to the same state as the commits would.
   */
  readonly catchUp?: boolean;
}

/** Secondary indexes: by name for every kind, plus the ones controllers query. */
const INDEXES: { readonly [K in Kind]: Readonly<Record<string, (o: StoreObject<K>) => string | null>> } = {
  cluster: {},
  node: { role: (o) => o.spec.role },
  service: {},
  task: {
    service: (o) => o.serviceId,
    node: (o) => o.nodeId ?? null,
    desiredState: (o) => o.desiredState,
  },
  network: {},
  secret: {},
  config: {},
};

export type IndexName<K extends Kind> = 'name' | Extract<keyof (typeof INDEXES)[K], string>;

interface Tombstone {
  readonly object: StoreObject;
  readonly kind: Kind;
  /** The version of the delete. */
  readonly version: number;
}

/** What a snapshot holds (see `capture`). */
export interface StoreImage {
  readonly format: 1;
  readonly version: number;
  readonly objects: Readonly<Record<string, readonly StoreObject[]>>;
  readonly tombstones: readonly { readonly object: StoreObject; readonly kind: Kind; readonly version: number }[];
  readonly tombstoneBase: number;
}

export interface Limits {
  /** Committed transactions kept for watchers, newest last. */
  readonly commits: number;
  /** Deleted objects remembered, so that a watcher resuming from an older version learns of the delete. */
  readonly tombstones: number;
}

export const DEFAULT_LIMITS: Limits = { commits: 4096, tombstones: 20_000 };

class Table {
  readonly rows = new Map<string, StoreObject>();
  /** index name -> key -> ids */
  readonly indexes = new Map<string, Map<string, Set<string>>>();

  constructor(readonly kind: Kind) {
    this.indexes.set('name', new Map());
    for (const name of Object.keys(INDEXES[kind])) this.indexes.set(name, new Map());
  }

  keysOf(object: StoreObject): [string, string][] {
    const out: [string, string][] = [];
    const name = nameOf(this.kind, object);
    if (name !== null) out.push(['name', name]);
    const defs = INDEXES[this.kind] as Readonly<Record<string, (o: StoreObject) => string | null>>;
    for (const [index, key] of Object.entries(defs)) {
      const value = key(object);
      if (value !== null) out.push([index, value]);
    }
    return out;
  }

  put(object: StoreObject): void {
    const old = this.rows.get(object.meta.id);
    if (old !== undefined) this.unindex(old);
    this.rows.set(object.meta.id, object);
    for (const [index, key] of this.keysOf(object)) {
      const map = this.indexes.get(index) as Map<string, Set<string>>;
      let ids = map.get(key);
      if (ids === undefined) map.set(key, (ids = new Set()));
      ids.add(object.meta.id);
    }
  }

  remove(id: string): void {
    const old = this.rows.get(id);
    if (old === undefined) return;
    this.unindex(old);
    this.rows.delete(id);
  }

  private unindex(object: StoreObject): void {
    for (const [index, key] of this.keysOf(object)) {
      const map = this.indexes.get(index) as Map<string, Set<string>>;
      const ids = map.get(key);
      ids?.delete(object.meta.id);
      if (ids?.size === 0) map.delete(key);
    }
  }

  lookup(index: string, key: string): StoreObject[] {
    const ids = this.indexes.get(index)?.get(key);
    if (ids === undefined) return [];
    const out: StoreObject[] = [];
    for (const id of ids) out.push(this.rows.get(id) as StoreObject);
    return out;
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function fail(code: StoreErrorCode, op: number, message: string): TxOutcome {
  return { ok: false, error: { code, op, message } };
}

/** Structural checks every replica makes before applying: a malformed entry is refused, never applied half-way. */
function malformed(op: unknown): string | null {
  if (typeof op !== 'object' || op === null) return 'an op must be an object';
  const o = op as Record<string, unknown>;
  if (o.op !== 'create' && o.op !== 'update' && o.op !== 'delete') return `unknown op ${JSON.stringify(o.op)}`;
  if (!isKind(o.kind)) return `unknown kind ${JSON.stringify(o.kind)} (one of ${KINDS.join(', ')})`;
  if (typeof o.id !== 'string' || o.id === '' || o.id.length > 128) return 'an object id must be a non-empty string of at most 128 characters';
  if (o.op !== 'create' && o.version !== undefined && (typeof o.version !== 'number' || !Number.isSafeInteger(o.version))) return 'version must be an integer';
  if (o.op === 'update' && o.version === undefined) return 'an update must carry the version it was read at';
  if (o.op === 'delete') return null;
  const fields = o.fields;
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) return 'fields must be an object';
  if ('meta' in fields) return 'fields must not carry meta (the store assigns it)';
  if (o.kind === 'task') {
    const t = fields as Partial<TaskFields>;
    if (typeof t.serviceId !== 'string') return 'a task needs a serviceId';
    if (t.nodeId !== undefined && typeof t.nodeId !== 'string') return 'a task nodeId must be a string';
    if (!isTaskState(t.desiredState)) return `a task desiredState must be a task state, got ${JSON.stringify(t.desiredState)}`;
    if (typeof t.status !== 'object' || t.status === null || !isTaskState(t.status.state)) return 'a task needs a status with a task state';
  } else {
    const spec = (fields as { spec?: unknown }).spec;
    if (typeof spec !== 'object' || spec === null) return `a ${o.kind} needs a spec`;
    const annotations = (spec as { annotations?: { name?: unknown } }).annotations;
    if (typeof annotations !== 'object' || annotations === null || typeof annotations.name !== 'string') return `a ${o.kind} spec needs annotations.name`;
    if (UNIQUE_NAMES.has(o.kind) && annotations.name === '') return `a ${o.kind} needs a name`;
  }
  return null;
}

export class StoreState {
  private readonly tables = new Map<Kind, Table>(KINDS.map((k) => [k, new Table(k)]));
  /** Index of the last transaction applied (store versions are raft indexes). */
  private applied = 0;
  private commits: Commit[] = [];
  /** Every commit with version > commitsBase is in `commits`. */
  private commitsBase = 0;
  private tombstones: Tombstone[] = [];
  /** Every delete with version > tombstoneBase has its tombstone. */
  private tombstoneBase = 0;

  constructor(private readonly limits: Limits = DEFAULT_LIMITS) {}

  get version(): number {
    return this.applied;
  }

  // ------------------------------------------------------------------ reads

  get<K extends Kind>(kind: K, id: string): StoreObject<K> | undefined {
    return this.table(kind).rows.get(id) as StoreObject<K> | undefined;
  }

  list<K extends Kind>(kind: K): StoreObject<K>[] {
    return [...this.table(kind).rows.values()] as StoreObject<K>[];
  }

  count(kind: Kind): number {
    return this.table(kind).rows.size;
  }

  /** Objects whose index `index` has the value `key` (e.g. tasks by service). */
  find<K extends Kind>(kind: K, index: IndexName<K>, key: string): StoreObject<K>[] {
    if (!this.table(kind).indexes.has(index)) throw new Error(`store: no index ${index} on ${kind}`);
    return this.table(kind).lookup(index, key) as StoreObject<K>[];
  }

  /** The one object of a uniquely named kind, or any object of that name otherwise. */
  byName<K extends Kind>(kind: K, name: string): StoreObject<K> | undefined {
    return this.table(kind).lookup('name', name)[0] as StoreObject<K> | undefined;
  }

  // ------------------------------------------------------------------ writes

  /**
   * Applies a committed transaction at raft index `index`. Never throws for a bad
   * transaction: refuses it. Takes ownership of `tx` (its objects are frozen and stored).
   */
  apply(index: number, tx: unknown): TxOutcome {
    this.applied = index;
    const t = tx as Partial<Transaction> | null;
    if (typeof t !== 'object' || t === null || !Array.isArray(t.ops) || typeof t.time !== 'string') return fail('invalid', 0, 'a transaction needs ops and a time');
    if (t.ops.length === 0) return fail('invalid', 0, 'a transaction needs at least one op');
    const ops = t.ops as readonly Op[];
    const touched = new Set<string>();
    // Names taken and freed by earlier ops of this transaction.
    const names = new Map<string, string | null>();
    const nameHolder = (kind: Kind, name: string): string | null => {
      const k = `${kind}\0${name}`;
      if (names.has(k)) return names.get(k) ?? null;
      return this.table(kind).lookup('name', name)[0]?.meta.id ?? null;
    };
    const staged: { op: Op; object: StoreObject | null; old: StoreObject | undefined }[] = [];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as Op;
      const bad = malformed(op);
      if (bad !== null) return fail('invalid', i, bad);
      const key = `${op.kind}\0${op.id}`;
      if (touched.has(key)) return fail('invalid', i, `${op.kind} ${op.id} is changed twice in one transaction`);
      touched.add(key);
      const current = this.table(op.kind).rows.get(op.id);
      if (op.op === 'create') {
        if (current !== undefined) return fail('exists', i, `${op.kind} ${op.id} already exists`);
      } else {
        if (current === undefined) return fail('notFound', i, `${op.kind} ${op.id} not found`);
        if (op.version !== undefined && current.meta.version !== op.version) {
          return fail('versionConflict', i, `${op.kind} ${op.id} is at version ${current.meta.version}, not ${op.version}: it changed since it was read; read it again and retry`);
        }
      }
      const oldName = current === undefined ? null : nameOf(op.kind, current);
      const newName = op.op === 'delete' ? null : nameOf(op.kind, op.fields);
      if (UNIQUE_NAMES.has(op.kind) && newName !== null && newName !== oldName) {
        const holder = nameHolder(op.kind, newName);
        if (holder !== null && holder !== op.id) return fail('nameConflict', i, `${op.kind} name "${newName}" is already in use by ${holder}`);
      }
      if (UNIQUE_NAMES.has(op.kind) && oldName !== null && oldName !== newName) names.set(`${op.kind}\0${oldName}`, null);
      if (UNIQUE_NAMES.has(op.kind) && newName !== null) names.set(`${op.kind}\0${newName}`, op.id);
      let object: StoreObject | null = null;
      if (op.op !== 'delete') {
        const meta: Meta = {
          id: op.id,
          version: index,
          createdVersion: current?.meta.createdVersion ?? index,
          createdAt: current?.meta.createdAt ?? t.time,
          updatedAt: t.time,
        };
        object = deepFreeze({ ...op.fields, meta } as StoreObject);
      }
      staged.push({ op, object, old: current });
    }
    const changes: Change[] = [];
    for (const { op, object, old } of staged) {
      const table = this.table(op.kind);
      if (object === null) {
        table.remove(op.id);
        const gone = old as StoreObject;
        this.tombstones.push({ kind: op.kind, object: gone, version: index });
        changes.push({ action: 'delete', kind: op.kind, object: gone });
      } else {
        table.put(object);
        changes.push(old === undefined ? { action: 'create', kind: op.kind, object } : { action: 'update', kind: op.kind, object, old });
      }
    }
    this.remember({ version: index, changes });
    return { ok: true, version: index, changes };
  }

  private remember(commit: Commit): void {
    this.commits.push(commit);
    if (this.commits.length > this.limits.commits * 2) {
      const drop = this.commits.length - this.limits.commits;
      this.commitsBase = (this.commits[drop - 1] as Commit).version;
      this.commits = this.commits.slice(drop);
    }
    if (this.tombstones.length > this.limits.tombstones * 2) {
      const drop = this.tombstones.length - this.limits.tombstones;
      this.tombstoneBase = (this.tombstones[drop - 1] as Tombstone).version;
      this.tombstones = this.tombstones.slice(drop);
    }
  }

  // ------------------------------------------------------------------ watches

  /** The oldest version a watch can resume from (older ones must re-read the whole store). */
  get resumableFrom(): number {
    return this.tombstoneBase;
  }

  /**
   * Everything after version `from`, in order: the kept commits themselves when they reach
   * back that far, otherwise one catch-up batch at the current version. Null when `from`
   * is older than the deletes remembered (the caller must re-read the whole store).
   */
  changesSince(from: number): Commit[] | null {
    if (from >= this.applied) return [];
    if (from >= this.commitsBase) {
      // Commits are in version order: find the first after `from`.
      let lo = 0;
      let hi = this.commits.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((this.commits[mid] as Commit).version <= from) lo = mid + 1;
        else hi = mid;
      }
      return this.commits.slice(lo);
    }
    if (from < this.tombstoneBase) return null;
    const changes: Change[] = [];
    const seen = new Set<string>();
    // Deletes first (newest tombstone per object), skipping objects born after `from`:
    // the consumer never saw them.
    for (let i = this.tombstones.length - 1; i >= 0; i--) {
      const t = this.tombstones[i] as Tombstone;
      if (t.version <= from) break;
      const key = `${t.kind}\0${t.object.meta.id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (t.object.meta.createdVersion > from) continue;
      changes.push({ action: 'delete', kind: t.kind, object: t.object });
    }
    changes.reverse();
    // Then every live object written after `from`, oldest write first.
    const written: Change[] = [];
    for (const table of this.tables.values()) {
      for (const object of table.rows.values()) {
        if (object.meta.version <= from) continue;
        written.push({ action: object.meta.createdVersion > from ? 'create' : 'update', kind: table.kind, object });
      }
    }
    written.sort((a, b) => a.object.meta.version - b.object.meta.version);
    changes.push(...written);
    return [{ version: this.applied, changes, catchUp: true }];
  }

  // ------------------------------------------------------------------ snapshots

  /**
   * The whole store as of now, by reference: objects are frozen, so what this returns stays
   * the state of this version while later transactions apply (they replace, never change).
   * `encode()` serialises it at once; the shell can serialise it in slices instead.
   */
  capture(): StoreImage {
    const objects: Record<string, StoreObject[]> = {};
    for (const [kind, table] of this.tables) objects[kind] = [...table.rows.values()];
    return {
      format: 1,
      version: this.applied,
      objects,
      tombstones: this.tombstones.slice(-this.limits.tombstones),
      tombstoneBase: this.tombstones.length > this.limits.tombstones ? (this.tombstones[this.tombstones.length - this.limits.tombstones - 1] as Tombstone).version : this.tombstoneBase,
    };
  }

  /** The whole store (objects, remembered deletes) as JSON text. */
  encode(): string {
    return JSON.stringify(this.capture());
  }

  /** Replaces everything with an encoded store. Kept commits are dropped: watchers behind it get a catch-up batch. */
  restore(text: string): void {
    for (const table of this.tables.values()) {
      table.rows.clear();
      for (const index of table.indexes.values()) index.clear();
    }
    this.tombstones = [];
    this.commits = [];
    if (text === '') {
      this.applied = 0;
      this.commitsBase = 0;
      this.tombstoneBase = 0;
      return;
    }
    const parsed = JSON.parse(text) as { format: number; version: number; objects: Record<string, StoreObject[]>; tombstones: Tombstone[]; tombstoneBase: number };
    if (parsed.format !== 1) throw new Error(`store: snapshot format ${parsed.format} is not supported by this version`);
    for (const kind of KINDS) for (const object of parsed.objects[kind] ?? []) this.table(kind).put(deepFreeze(object));
    this.tombstones = parsed.tombstones.map((t) => deepFreeze(t));
    this.tombstoneBase = parsed.tombstoneBase;
    this.applied = parsed.version;
    this.commitsBase = parsed.version;
  }

  /** Order-independent digest of the contents, to compare replicas. */
  digest(): string {
    const rows: string[] = [];
    for (const [kind, table] of this.tables) for (const o of table.rows.values()) rows.push(`${kind}/${o.meta.id}@${o.meta.version}:${JSON.stringify(o)}`);
    return rows.sort().join('\n');
  }

  private table(kind: Kind): Table {
    const table = this.tables.get(kind);
    if (table === undefined) throw new Error(`store: unknown kind ${String(kind)}`);
    return table;
  }
}
