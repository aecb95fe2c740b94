// The manager's data key (it seals the WAL) and autolock.
//
// The data key lives in `<dir>/keys/dek.json`, 0600. Without autolock it is stored as is,
// as Docker's swarm mode does: whoever reads the disk reads the key. With autolock it is
// stored sealed (AES-256-GCM) under a key-encryption key the operator holds, shown once as
// an unlock key in Docker's form `SWMKEY-1-<32 bytes, base64 without padding>`; a manager
// that restarts stays locked until it is given that key (`docker swarm unlock`).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { DataKey } from '../raft/driver/index.js';

const UNLOCK_PREFIX = 'SWMKEY-1-';
const NONCE = 12;
const TAG = 16;

/** Docker's words for a locked manager, so scripts that look for them still find them. */
export const LOCKED_MESSAGE = 'Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm unlock" to unlock it.';

export class SwarmLockedError extends Error {
  override readonly name = 'SwarmLockedError';
  constructor(
    readonly reason: 'locked' | 'invalidKey',
    message: string,
  ) {
    super(message);
  }
}

export function newUnlockKey(): Buffer {
  return randomBytes(32);
}

export function formatUnlockKey(kek: Uint8Array): string {
  if (kek.length !== 32) throw new RangeError(`an unlock key is 32 bytes, got ${kek.length}`);
  return UNLOCK_PREFIX + Buffer.from(kek).toString('base64').replace(/=+$/, '');
}

export function parseUnlockKey(text: string): Buffer {
  const t = text.trim();
  const invalid = (why: string): SwarmLockedError => new SwarmLockedError('invalidKey', `invalid unlock key: ${why}; it looks like SWMKEY-1-… (run \`docker swarm unlock-key\` on an unlocked manager to see it)`);
  if (!t.startsWith(UNLOCK_PREFIX)) throw invalid('it does not start with SWMKEY-1-');
  const body = t.slice(UNLOCK_PREFIX.length);
  if (!/^[A-Za-z0-9+/]{43}$/.test(body)) throw invalid('it must be 43 base64 characters after SWMKEY-1-');
  const key = Buffer.from(body, 'base64');
  if (key.length !== 32) throw invalid('it does not decode to 32 bytes');
  return key;
}

interface KeyFile {
  readonly id: string;
  /** The key itself (no autolock). */
  readonly key?: string;
  /** nonce | tag | ciphertext of the key under the unlock key (autolock). */
  readonly sealedKey?: string;
}

const aad = (id: string): Buffer => Buffer.from(`swarmshift data key ${id}`);

function seal(dek: DataKey, kek: Uint8Array): string {
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce);
  cipher.setAAD(aad(dek.id));
  const body = Buffer.concat([cipher.update(dek.key), cipher.final()]);
  return Buffer.concat([nonce, cipher.getAuthTag(), body]).toString('base64');
}

function open(file: KeyFile & { sealedKey: string }, kek: Uint8Array): DataKey {
  const bytes = Buffer.from(file.sealedKey, 'base64');
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, bytes.subarray(0, NONCE));
    decipher.setAAD(aad(file.id));
    decipher.setAuthTag(bytes.subarray(NONCE, NONCE + TAG));
    return { id: file.id, key: Buffer.concat([decipher.update(bytes.subarray(NONCE + TAG)), decipher.final()]) };
  } catch {
    throw new SwarmLockedError('invalidKey', 'swarm could not be unlocked: invalid key; use the unlock key printed when autolock was turned on (or by the last `docker swarm unlock-key --rotate`)');
  }
}

/** Writes the data key, sealed under `unlockKey` when given (autolock) or as is; 0600, atomically. */
export async function writeDataKey(path: string, dek: DataKey, unlockKey?: Uint8Array): Promise<void> {
  const file: KeyFile = unlockKey === undefined ? { id: dek.id, key: Buffer.from(dek.key).toString('base64') } : { id: dek.id, sealedKey: seal(dek, unlockKey) };
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp`;
  await writeFile(tmp, JSON.stringify(file), { mode: 0o600, flush: true });
  await rename(tmp, path);
}

/**
 * Reads the node's data key, or makes one on first start (sealed when an unlock key is
 * given). A sealed key file needs the unlock key: without it, SwarmLockedError('locked').
 */
export async function loadOrCreateDataKey(path: string, opts: { unlockKey?: Uint8Array } = {}): Promise<DataKey> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (!(err instanceof Error && 'code' in err && err.code === 'ENOENT')) throw unusable(path, err);
    const dek: DataKey = { id: `dek-${randomBytes(4).toString('hex')}`, key: randomBytes(32) };
    await writeDataKey(path, dek, opts.unlockKey);
    return dek;
  }
  let file: KeyFile;
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    if (typeof parsed.id !== 'string' || (typeof parsed.key !== 'string' && typeof parsed.sealedKey !== 'string')) throw new Error('needs id and key');
    file = parsed as unknown as KeyFile;
  } catch (err) {
    throw unusable(path, err);
  }
  if (file.sealedKey !== undefined) {
    if (opts.unlockKey === undefined) throw new SwarmLockedError('locked', LOCKED_MESSAGE);
    return open({ ...file, sealedKey: file.sealedKey }, opts.unlockKey);
  }
  const key = Buffer.from(file.key ?? '', 'base64');
  if (key.length !== 32) throw unusable(path, new Error(`key is ${key.length} bytes, not 32`));
  return { id: file.id, key };
}

function unusable(path: string, err: unknown): Error {
  return new Error(`store: data key file ${path} is unusable (${err instanceof Error ? err.message : String(err)}); restore it from a backup: without it the log cannot be read`, { cause: err });
}
