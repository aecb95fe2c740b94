// The replicated cluster store: StoreState (the pure core) as a raft state machine.
//
// Writes are transactions proposed through raft; each resolves once applied on this node,
// with the stored objects and their version (the entry's raft index), or rejects with a
// StoreError saying what was refused and why. Reads come from this node's replica;
// `read(fn, { linearizable: true })` first waits for a ReadIndex barrier, so it reflects
// every write acknowledged anywhere before the call. Watches stream committed
// transactions from a given version.

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { NodeId } from '../raft/core/index.js';
import { jsonArrayInSlices, RaftDriver, WalCipher } from '../raft/driver/index.js';
import type { AddressBook, Bootstrap, DataKey, DriverStatus, StateMachine, Transport, Tuning } from '../raft/driver/index.js';
import { loadOrCreateDataKey } from './keys.js';
import type { FieldsOf, Kind, StoreObject } from './objects.js';
import { DEFAULT_LIMITS, StoreState } from './state.js';
import type { Commit, IndexName, Limits, Op, StoreErrorCode, StoreImage, Transaction, TxOutcome } from './state.js';

export type { Change, Commit, Op, StoreErrorCode, Transaction } from './state.js';

/** A transaction larger than this is refused before it is proposed (raft entries stay small). */
export const MAX_TRANSACTION_BYTES = 1536 * 1024;

export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode | 'compacted' | 'tooLarge' | 'closed',
    message: string,
    /** For a refused transaction: the index of the op that was refused. */
    readonly op: number | null = null,
  ) {
    super(`store: ${message}`);
    this.name = 'StoreError';
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Ids as SwarmKit makes them: 25 lowercase base-36 characters from 128 random bits. */
export function newId(): string {
  let n = BigInt(`0x${randomBytes(16).toString('hex')}`);
  let out = '';
  for (let i = 0; i < 25; i++) {
    out = (n % 36n).toString(36) + out;
    n /= 36n;
  }
  return out;
}

/** Fields may be given as a changed copy of a stored object: its meta is the store's to assign. */
function withoutMeta(op: Op): Op {
  if (op.op === 'delete' || !('meta' in op.fields)) return op;
  const { meta: _meta, ...fields } = op.fields as FieldsOf[Kind] & { meta: unknown };
  return { ...op, fields: fields as FieldsOf[Kind] };
}

/** JSON.stringify(image) as bytes, built a slice of objects per event-loop turn. */
export async function encodeInSlices(image: StoreImage): Promise<Buffer> {
  const parts: Buffer[] = [Buffer.from(`{"format":${image.format},"version":${image.version},"objects":{`)];
  for (const [i, [kind, list]] of Object.entries(image.objects).entries()) {
    parts.push(Buffer.from(`${i > 0 ? ',' : ''}${JSON.stringify(kind)}:`), await jsonArrayInSlices(list));
  }
  parts.push(Buffer.from('},"tombstones":'), await jsonArrayInSlices(image.tombstones), Buffer.from(`,"tombstoneBase":${image.tombstoneBase}}`));
  return Buffer.concat(parts);
}

/** The state machine the raft driver feeds: decodes entries, applies them, wakes watchers. */
class Machine implements StateMachine<TxOutcome> {
  private wake: (() => void)[] = [];

  constructor(readonly state: StoreState) {}

  apply(index: number, command: Uint8Array): TxOutcome {
    let tx: unknown;
    try {
      tx = JSON.parse(decoder.decode(command));
    } catch {
      tx = null;
    }
    const outcome = this.state.apply(index, tx);
    this.notify();
    return outcome;
  }

  snapshot(): Uint8Array {
    return encoder.encode(this.state.encode());
  }

  /** The same JSON as snapshot(), captured now and serialised in slices (no long stall). */
  snapshotLater(): Promise<Uint8Array> {
    return encodeInSlices(this.state.capture());
  }

  restore(data: Uint8Array): void {
    this.state.restore(decoder.decode(data));
    this.notify();
  }

  /** Resolves on the next apply or restore. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.wake.push(resolve));
  }

  notify(): void {
    if (this.wake.length === 0) return;
    const wake = this.wake;
    this.wake = [];
    for (const w of wake) w();
  }
}

export interface StoreOptions {
  readonly id: NodeId;
  /** The node's state directory: the WAL goes in `raft/`, the data key (unless given) in `keys/`. */
  readonly dir: string;
  readonly transport: Transport;
  readonly addresses: AddressBook;
  readonly bootstrap: Bootstrap;
  /** Seals the WAL and its snapshots; default: the key in `<dir>/keys/dek.json`, made on first start. */
  readonly dataKey?: DataKey;
  /** Autolock: the key that seals `<dir>/keys/dek.json`; without it a locked store does not open (SwarmLockedError). */
  readonly unlockKey?: Uint8Array;
  /** Older keys, to open records sealed before a rotation. */
  readonly previousDataKeys?: readonly DataKey[];
  readonly forceNewCluster?: boolean;
  readonly tuning?: Partial<Tuning>;
  readonly limits?: Partial<Limits>;
  /** The proposer's clock, for createdAt/updatedAt. */
  readonly now?: () => Date;
  readonly onFatal?: (error: Error) => void;
}

export interface WatchOptions {
  /** Stream what was committed after this version (default: from now on). */
  readonly from?: number;
  /** Only changes of these kinds (a commit with none of them is skipped). */
  readonly kinds?: readonly Kind[];
  readonly signal?: AbortSignal;
}

/** A read-only view of one replica; valid until the caller yields to the event loop. */
export interface StoreReader {
  readonly version: number;
  get<K extends Kind>(kind: K, id: string): StoreObject<K> | undefined;
  list<K extends Kind>(kind: K): StoreObject<K>[];
  find<K extends Kind>(kind: K, index: IndexName<K>, key: string): StoreObject<K>[];
  byName<K extends Kind>(kind: K, name: string): StoreObject<K> | undefined;
}

export class ClusterStore implements StoreReader {
  private closed = false;

  private constructor(
    readonly driver: RaftDriver<TxOutcome>,
    private readonly machine: Machine,
    private readonly now: () => Date,
  ) {}

  static async open(opts: StoreOptions): Promise<ClusterStore> {
    const dataKey = opts.dataKey ?? (await loadOrCreateDataKey(join(opts.dir, 'keys', 'dek.json'), opts.unlockKey === undefined ? {} : { unlockKey: opts.unlockKey }));
    const machine = new Machine(new StoreState({ ...DEFAULT_LIMITS, ...opts.limits }));
    const driver = await RaftDriver.start<TxOutcome>({
      id: opts.id,
      dir: join(opts.dir, 'raft'),
      stateMachine: machine,
      transport: opts.transport,
      addresses: opts.addresses,
      bootstrap: opts.bootstrap,
      cipher: new WalCipher(dataKey, opts.previousDataKeys ?? []),
      ...(opts.forceNewCluster === undefined ? {} : { forceNewCluster: opts.forceNewCluster }),
      ...(opts.tuning === undefined ? {} : { tuning: opts.tuning }),
      ...(opts.onFatal === undefined ? {} : { onFatal: opts.onFatal }),
    });
    return new ClusterStore(driver, machine, opts.now ?? (() => new Date()));
  }

  // ------------------------------------------------------------------ reads (this replica)

  get version(): number {
    return this.machine.state.version;
  }

  get<K extends Kind>(kind: K, id: string): StoreObject<K> | undefined {
    return this.machine.state.get(kind, id);
  }

  list<K extends Kind>(kind: K): StoreObject<K>[] {
    return this.machine.state.list(kind);
  }

  find<K extends Kind>(kind: K, index: IndexName<K>, key: string): StoreObject<K>[] {
    return this.machine.state.find(kind, index, key);
  }

  byName<K extends Kind>(kind: K, name: string): StoreObject<K> | undefined {
    return this.machine.state.byName(kind, name);
  }

  /** Runs `fn` over this replica; with `linearizable`, after a ReadIndex barrier (reflects every write acknowledged before the call). */
  async read<T>(fn: (reader: StoreReader) => T, options: { linearizable?: boolean } = {}): Promise<T> {
    if (options.linearizable === true) await this.driver.readBarrier();
    return fn(this);
  }

  status(): DriverStatus {
    return this.driver.status();
  }

  // ------------------------------------------------------------------ writes

  /** Proposes the ops as one all-or-nothing transaction; resolves with the objects written (null for deletes). */
  async commit(ops: readonly Op[]): Promise<{ version: number; objects: (StoreObject | null)[] }> {
    if (this.closed) throw new StoreError('closed', 'the store is closed');
    const tx: Transaction = { time: this.now().toISOString(), ops: ops.map(withoutMeta) };
    const bytes = encoder.encode(JSON.stringify(tx));
    if (bytes.length > MAX_TRANSACTION_BYTES) {
      throw new StoreError('tooLarge', `a transaction of ${bytes.length} bytes exceeds the ${MAX_TRANSACTION_BYTES} byte limit; split it or make the objects smaller`);
    }
    const { result } = await this.driver.propose(bytes);
    if (!result.ok) throw new StoreError(result.error.code, result.error.message, result.error.op);
    const byKey = new Map(result.changes.map((c) => [`${c.kind}\0${c.object.meta.id}`, c]));
    return { version: result.version, objects: ops.map((op) => (op.op === 'delete' ? null : (byKey.get(`${op.kind}\0${op.id}`)?.object ?? null))) };
  }

  async create<K extends Kind>(kind: K, fields: FieldsOf[K], id: string = newId()): Promise<StoreObject<K>> {
    const { objects } = await this.commit([{ op: 'create', kind, id, fields }]);
    return objects[0] as StoreObject<K>;
  }

  /** Replaces the object read at `read.meta.version` with `fields`; refused if it changed since. */
  async update<K extends Kind>(kind: K, read: StoreObject<K>, fields: FieldsOf[K]): Promise<StoreObject<K>> {
    const { objects } = await this.commit([{ op: 'update', kind, id: read.meta.id, version: read.meta.version, fields }]);
    return objects[0] as StoreObject<K>;
  }

  /**
   * Read-modify-write with retries: `change` gets the current object (frozen) and returns the
   * new fields, or null to leave it as it is. On a version conflict, reads again and retries.
   */
  async modify<K extends Kind>(kind: K, id: string, change: (current: StoreObject<K>) => FieldsOf[K] | null, retries = 5): Promise<StoreObject<K>> {
    for (let attempt = 0; ; attempt++) {
      const current = this.get(kind, id);
      if (current === undefined) throw new StoreError('notFound', `${kind} ${id} not found`, 0);
      const fields = change(current);
      if (fields === null) return current;
      try {
        return await this.update(kind, current, fields);
      } catch (err) {
        if (!(err instanceof StoreError && err.code === 'versionConflict') || attempt >= retries) throw err;
      }
    }
  }

  /** Deletes the object; with `version`, only if it is still at that version. */
  async delete(kind: Kind, id: string, version?: number): Promise<void> {
    await this.commit([version === undefined ? { op: 'delete', kind, id } : { op: 'delete', kind, id, version }]);
  }

  // ------------------------------------------------------------------ watches

  /**
   * Committed transactions after `from`, in order, each once, then new ones as they commit.
   * A consumer that records the version of the last commit it finished and resumes from it
   * neither misses nor sees twice a change. When the individual commits are no longer kept
   * it gets one catch-up batch (each changed object once, in its current state); when even
   * the deletes since `from` are forgotten it fails with `compacted`: read the store again
   * (`snapshotAndWatch`).
   */
  async *watch(options: WatchOptions = {}): AsyncGenerator<Commit, void, undefined> {
    let position = options.from ?? this.version;
    const kinds = options.kinds === undefined ? null : new Set(options.kinds);
    const signal = options.signal;
    let aborted: Promise<void> | null = null;
    if (signal !== undefined) aborted = new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    const done = (): boolean => this.closed || signal?.aborted === true;
    while (!done()) {
      const commits = this.machine.state.changesSince(position);
      if (commits === null) {
        throw new StoreError('compacted', `cannot resume a watch from version ${position}: deletes before version ${this.machine.state.resumableFrom} are no longer kept; read the store again and watch from its version`);
      }
      if (commits.length === 0) {
        const changed = this.machine.changed();
        await (aborted === null ? changed : Promise.race([changed, aborted]));
        continue;
      }
      for (const commit of commits) {
        position = commit.version;
        const changes = kinds === null ? commit.changes : commit.changes.filter((c) => kinds.has(c.kind));
        if (changes.length === 0) continue;
        yield changes === commit.changes ? commit : { ...commit, changes };
        if (done()) return;
      }
    }
  }

  /** The objects of `kinds` as of one version, and a watch that continues exactly from it. */
  snapshotAndWatch<K extends Kind>(kinds: readonly K[], signal?: AbortSignal): { version: number; objects: { [P in K]: StoreObject<P>[] }; watch: AsyncGenerator<Commit, void, undefined> } {
    const version = this.version;
    const objects = {} as { [P in K]: StoreObject<P>[] };
    for (const kind of kinds) objects[kind] = this.list(kind);
    return { version, objects, watch: this.watch({ from: version, kinds, ...(signal === undefined ? {} : { signal }) }) };
  }

  /** Order-independent digest of the replica, to compare managers. */
  digest(): string {
    return this.machine.state.digest();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.machine.notify();
    await this.driver.stop();
  }
}
