// Data at rest: WAL records (entries, hard state, snapshots) sealed with a data key,
// AES-256-GCM. Each node seals its own disk with its own key; what travels between nodes
// is protected by the transport's TLS instead.
//
// A sealed payload:
//   [0x01][key id length: u8][key id: utf8][nonce: 12][tag: 16][ciphertext]
// The header (marker, key id) is authenticated as associated data. A plain payload (JSON)
// always starts with '{', so a log written before encryption was turned on still opens;
// the next rewrite (after a snapshot) seals it whole.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export interface DataKey {
  /** Names the key in every sealed record, so that an old key can still open old records. */
  readonly id: string;
  /** 32 bytes. */
  readonly key: Uint8Array;
}

const SEALED = 0x01;
const NONCE = 12;
const TAG = 16;

/** A record cannot be opened: the wrong key, a missing key, or tampering. Never a torn tail. */
export class WalKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WalKeyError';
  }
}

export function isSealed(payload: Uint8Array): boolean {
  return payload[0] === SEALED;
}

export function newDataKey(id = `dek-${randomBytes(4).toString('hex')}`): DataKey {
  return { id, key: randomBytes(32) };
}

export class WalCipher {
  private readonly keys = new Map<string, DataKey>();
  private current: DataKey;

  /** `previous` keys only open records; new records are sealed with `current`. */
  constructor(current: DataKey, previous: readonly DataKey[] = []) {
    for (const k of [...previous, current]) {
      if (k.key.length !== 32) throw new Error(`data key ${k.id}: must be 32 bytes, is ${k.key.length}`);
      const idBytes = Buffer.byteLength(k.id);
      if (idBytes === 0 || idBytes > 255) throw new Error(`data key id "${k.id}": must be 1-255 bytes`);
      this.keys.set(k.id, k);
    }
    this.current = current;
  }

  get currentKeyId(): string {
    return this.current.id;
  }

  /** Seals new records with `key` from now on; the old key still opens what it sealed. */
  rotate(key: DataKey): void {
    if (key.key.length !== 32) throw new Error(`data key ${key.id}: must be 32 bytes, is ${key.key.length}`);
    this.keys.set(key.id, key);
    this.current = key;
  }

  /** The authenticated header of a record sealed with the current key: marker and key id. */
  private header(): Buffer {
    const id = Buffer.from(this.current.id, 'utf8');
    return Buffer.concat([Buffer.from([SEALED, id.length]), id]);
  }

  seal(plain: Uint8Array): Buffer {
    const header = this.header();
    const nonce = randomBytes(NONCE);
    const c = createCipheriv('aes-256-gcm', this.current.key, nonce);
    c.setAAD(header);
    const body = Buffer.concat([c.update(plain), c.final()]);
    return Buffer.concat([header, nonce, c.getAuthTag(), body]);
  }

  /**
   * seal() of the concatenated parts, encrypting `slice` bytes per event-loop turn: a
   * whole snapshot sealed in one go would stall the loop for tens of milliseconds.
   */
  async sealInSlices(parts: readonly Uint8Array[], slice = 1 << 20): Promise<Buffer> {
    const header = this.header();
    const nonce = randomBytes(NONCE);
    const c = createCipheriv('aes-256-gcm', this.current.key, nonce);
    c.setAAD(header);
    const out: Buffer[] = [];
    for (const part of parts) {
      for (let at = 0; at < part.length; at += slice) {
        out.push(c.update(part.subarray(at, at + slice)));
        if (at + slice < part.length) await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    out.push(c.final());
    return Buffer.concat([header, nonce, c.getAuthTag(), ...out]);
  }

  open(sealed: Uint8Array): Buffer {
    const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    if (buf.length < 2 || buf[0] !== SEALED) throw new WalKeyError('wal: record is not sealed');
    const idLength = buf[1] as number;
    const headerEnd = 2 + idLength;
    if (buf.length < headerEnd + NONCE + TAG) throw new WalKeyError('wal: sealed record is too short');
    const id = buf.subarray(2, headerEnd).toString('utf8');
    const key = this.keys.get(id);
    if (key === undefined) {
      throw new WalKeyError(`wal: a record is sealed with data key "${id}", which this node was not given (it holds: ${[...this.keys.keys()].join(', ')}); start it with that key`);
    }
    const nonce = buf.subarray(headerEnd, headerEnd + NONCE);
    const tag = buf.subarray(headerEnd + NONCE, headerEnd + NONCE + TAG);
    const d = createDecipheriv('aes-256-gcm', key.key, nonce);
    d.setAAD(buf.subarray(0, headerEnd));
    d.setAuthTag(tag);
    try {
      return Buffer.concat([d.update(buf.subarray(headerEnd + NONCE + TAG)), d.final()]);
    } catch {
      throw new WalKeyError(`wal: a record sealed with data key "${id}" does not authenticate: the key given under that id is not the one that sealed it, or the file was altered`);
    }
  }
}
