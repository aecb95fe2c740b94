// The write-ahead log on disk: one append-only file of framed records,
//   [payload length: u32 LE][crc32 of payload: u32 LE][payload]
// A payload is JSON (entries, hard state), or a binary snapshot
//   [0x02][meta length: u32 LE][meta: JSON][state bytes]
// (a snapshot is the whole state machine: JSON with base64 would cost a long stall of the
// event loop for every snapshot taken or installed), either one possibly sealed by cipher.ts.
// A crash can leave the last record torn (short, or with bytes that fail the checksum).
// Opening stops at the first record that does not check out, truncates the file there and
// fsyncs, so the next append continues from a clean prefix. Records before a damaged one
// are kept; everything from it on is dropped — a hole cannot be repaired, and the
// prefix is exactly what the core needs (everything after it was never acknowledged,
// because acknowledgements wait for fsync).

import { writeSync } from 'node:fs';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Ready, StorageState } from '../core/index.js';
import { isSealed, WalKeyError } from './cipher.js';
import type { WalCipher } from './cipher.js';
import { replay } from './records.js';
import type { WalRecord } from './records.js';

const HEADER = 8;
const FILE = 'wal';

const BINARY_SNAPSHOT = 0x02;

/** The binary snapshot payload, as parts: [0x02, meta length][meta JSON][state]. */
function snapshotParts(snapshot: Extract<WalRecord, { kind: 'snapshot' }>['snapshot']): Uint8Array[] {
  const meta = Buffer.from(JSON.stringify(snapshot.meta));
  const head = Buffer.alloc(5);
  head[0] = BINARY_SNAPSHOT;
  head.writeUInt32LE(meta.length, 1);
  return [head, meta, snapshot.data];
}

function encodePayload(record: WalRecord, cipher: WalCipher | null): Buffer {
  let plain: Buffer;
  if (record.kind === 'snapshot') {
    plain = Buffer.concat(snapshotParts(record.snapshot));
  } else {
    plain = Buffer.from(
      JSON.stringify(record, (_key, value: unknown) => (value instanceof Uint8Array ? { $b64: Buffer.from(value).toString('base64') } : value)),
    );
  }
  return cipher === null ? plain : cipher.seal(plain);
}

function decodeBinarySnapshot(payload: Buffer): WalRecord | null {
  if (payload.length < 5) return null;
  const metaLength = payload.readUInt32LE(1);
  if (5 + metaLength > payload.length) return null;
  try {
    const meta = JSON.parse(payload.toString('utf8', 5, 5 + metaLength)) as Extract<WalRecord, { kind: 'snapshot' }>['snapshot']['meta'];
    // A copy: the state outlives the file buffer it was read from.
    return { kind: 'snapshot', snapshot: { meta, data: new Uint8Array(payload.subarray(5 + metaLength)) } };
  } catch {
    return null;
  }
}

/**
 * A record whose checksum holds but which cannot be opened (sealed, and no key or the
 * wrong key) throws WalKeyError: that is not a torn tail, and truncating there would
 * destroy the log.
 */
function decodePayload(payload: Buffer, cipher: WalCipher | null): WalRecord | null {
  if (isSealed(payload)) {
    if (cipher === null) throw new WalKeyError('wal: this log is encrypted at rest; start the node with its data key');
    payload = cipher.open(payload);
  }
  if (payload[0] === BINARY_SNAPSHOT) return decodeBinarySnapshot(payload);
  try {
    const parsed: unknown = JSON.parse(payload.toString('utf8'), (_key, value: unknown) => {
      if (typeof value === 'object' && value !== null && '$b64' in value) {
        const b64 = (value as { $b64: unknown }).$b64;
        if (typeof b64 === 'string') return new Uint8Array(Buffer.from(b64, 'base64'));
      }
      return value;
    });
    if (typeof parsed !== 'object' || parsed === null || !('kind' in parsed)) return null;
    const kind = (parsed as { kind: unknown }).kind;
    // The checksum vouches for the bytes; the shape is ours, written by encodePayload.
    return kind === 'entries' || kind === 'hardState' || kind === 'snapshot' ? (parsed as WalRecord) : null;
  } catch {
    return null;
  }
}

const SLICE = 1 << 20;
const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * frame(), a megabyte per event-loop turn for a large snapshot (sealing and checksumming
 * a whole state in one go would stall ticks and heartbeats); small records at once.
 */
export async function frameInSlices(record: WalRecord, cipher: WalCipher | null = null): Promise<Buffer> {
  if (record.kind !== 'snapshot' || record.snapshot.data.length < SLICE) return frame(record, cipher);
  const parts = snapshotParts(record.snapshot);
  const payload: Uint8Array[] = cipher === null ? parts : [await cipher.sealInSlices(parts, SLICE)];
  let sum = 0;
  let length = 0;
  for (const part of payload) {
    length += part.length;
    for (let at = 0; at < part.length; at += SLICE) {
      sum = crc32(part.subarray(at, at + SLICE), sum);
      await yieldTurn();
    }
  }
  const header = Buffer.alloc(HEADER);
  header.writeUInt32LE(length, 0);
  header.writeUInt32LE(sum, 4);
  return Buffer.concat([header, ...payload]);
}

export function frame(record: WalRecord, cipher: WalCipher | null = null): Buffer {
  const payload = encodePayload(record, cipher);
  const header = Buffer.alloc(HEADER);
  header.writeUInt32LE(payload.length, 0);
  header.writeUInt32LE(crc32(payload), 4);
  return Buffer.concat([header, payload]);
}

/** Parses the valid prefix of a WAL file; `validBytes` is where the first bad record starts. */
export function parse(data: Buffer, cipher: WalCipher | null = null): { records: WalRecord[]; validBytes: number } {
  const records: WalRecord[] = [];
  let at = 0;
  while (at + HEADER <= data.length) {
    const length = data.readUInt32LE(at);
    const sum = data.readUInt32LE(at + 4);
    const end = at + HEADER + length;
    if (end > data.length) break;
    const payload = data.subarray(at + HEADER, end);
    if (crc32(payload) !== sum) break;
    const record = decodePayload(payload, cipher);
    if (record === null) break;
    records.push(record);
    at = end;
  }
  return { records, validBytes: at };
}

/** The records that make a Ready durable, in the order recovery relies on. */
export function recordsOf(ready: Ready): WalRecord[] {
  const out: WalRecord[] = [];
  if (ready.snapshot !== null) out.push({ kind: 'snapshot', snapshot: ready.snapshot });
  if (ready.entries.length > 0) out.push({ kind: 'entries', entries: ready.entries });
  // Last: a commit index on disk must never point past entries that are not.
  if (ready.hardState !== null) out.push({ kind: 'hardState', hardState: ready.hardState });
  return out;
}

export interface OpenedWal {
  readonly wal: Wal;
  readonly storage: StorageState;
  /** Bytes of torn or corrupt tail cut off while opening. */
  readonly truncatedBytes: number;
}

export interface WalOptions {
  /** Seals every record written (data at rest); also needed to open a sealed log. */
  readonly cipher?: WalCipher | null;
}

export class Wal {
  private constructor(
    private readonly dir: string,
    private file: FileHandle,
    private size: number,
    private readonly cipher: WalCipher | null,
  ) {}

  static async open(dir: string, options: WalOptions = {}): Promise<OpenedWal> {
    const cipher = options.cipher ?? null;
    await mkdir(dir, { recursive: true });
    const path = join(dir, FILE);
    const data = await readFile(path).catch((err: unknown) => {
      if (err instanceof Error && 'code' in err && err.code === 'ENOENT') return Buffer.alloc(0);
      throw err;
    });
    const { records, validBytes } = parse(data, cipher);
    const file = await open(path, 'a+');
    const truncatedBytes = data.length - validBytes;
    if (truncatedBytes > 0) {
      await file.truncate(validBytes);
      await file.sync();
    }
    return { wal: new Wal(dir, file, validBytes, cipher), storage: replay(records), truncatedBytes };
  }

  /**
   * Writes records after the current end; not durable until sync() resolves. The write
   * itself is synchronous: copying a Ready's records into the page cache takes
   * microseconds, less than handing it to the thread pool and back, and it is on every
   * write's path (the fsync, which can take milliseconds, stays asynchronous).
   */
  async append(records: readonly WalRecord[]): Promise<void> {
    if (records.length === 0) return;
    // A snapshot from the leader is framed in slices first; everything else synchronously.
    const framed: Buffer[] = [];
    for (const r of records) framed.push(r.kind === 'snapshot' ? await frameInSlices(r, this.cipher) : frame(r, this.cipher));
    const buf = framed.length === 1 ? (framed[0] as Buffer) : Buffer.concat(framed);
    let done = 0;
    while (done < buf.length) done += writeSync(this.file.fd, buf, done, buf.length - done, this.size + done);
    this.size += buf.length;
  }

  async sync(): Promise<void> {
    await this.file.datasync();
  }

  /**
   * Replaces the whole log with `storage` (typically after a snapshot, to drop compacted
   * entries): written to a new file, fsynced, renamed over the old one, directory fsynced,
   * so a crash at any point leaves either the old log or the new one.
   */
  async rewrite(storage: StorageState): Promise<void> {
    const records: WalRecord[] = [];
    if (storage.snapshot !== null) records.push({ kind: 'snapshot', snapshot: storage.snapshot });
    if (storage.entries.length > 0) records.push({ kind: 'entries', entries: storage.entries });
    records.push({ kind: 'hardState', hardState: storage.hardState });
    const framed: Buffer[] = [];
    for (const r of records) framed.push(await frameInSlices(r, this.cipher));
    const buf = Buffer.concat(framed);
    const tmpPath = join(this.dir, `${FILE}.tmp`);
    const tmp = await open(tmpPath, 'w');
    try {
      await tmp.write(buf, 0, buf.length, 0);
      await tmp.sync();
    } finally {
      await tmp.close();
    }
    await rename(tmpPath, join(this.dir, FILE));
    const dirHandle = await open(this.dir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
    await this.file.close();
    this.file = await open(join(this.dir, FILE), 'a+');
    this.size = buf.length;
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}
