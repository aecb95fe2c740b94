// Join tokens, as Docker's swarm mode shows them (pure: no clock, no I/O;
// randomness comes in as bytes).
//
//   SWMTKN-1-<root CA digest, base 36, 50 chars>-<secret, base 36, 25 chars>
//
// The digest lets a joining node check the CA it reaches before it trusts it; the secret
// says which role it may join as (one secret per role, each rotated on its own).
import { timingSafeEqual } from 'node:crypto';

export const TOKEN_PREFIX = 'SWMTKN';
export const TOKEN_VERSION = '1';
const DIGEST_CHARS = 50; // 256 bits in base 36
const SECRET_CHARS = 25; // 128 bits in base 36
export const SECRET_BYTES = 16;

/** Big-endian bytes as base 36, left-padded with zeros to `width`. */
export function base36(bytes: Uint8Array, width: number): string {
  const text = BigInt(`0x${Buffer.from(bytes).toString('hex') || '0'}`).toString(36);
  return text.padStart(width, '0');
}

export interface JoinToken {
  /** The root CA certificate's SHA-256 (hex) that the token vouches for. */
  readonly caDigest: string;
  /** The role secret, as written in the token (base 36). */
  readonly secret: string;
}

/** A join secret as tokens write it: 16 random bytes in base 36. */
export function joinSecret(random: Uint8Array): string {
  if (random.length !== SECRET_BYTES) throw new RangeError(`a join token secret is ${SECRET_BYTES} random bytes, got ${random.length}`);
  return base36(random, SECRET_CHARS);
}

/** The token for a root digest and a secret (bytes, or as joinSecret wrote it). */
export function formatJoinToken(caDigestHex: string, secret: Uint8Array | string): string {
  if (!/^[0-9a-f]{64}$/.test(caDigestHex)) throw new Error(`a join token needs the CA's SHA-256 digest in hex, got "${caDigestHex}"`);
  const written = typeof secret === 'string' ? secret : joinSecret(secret);
  if (!/^[0-9a-z]{25}$/.test(written)) throw new Error(`a join token secret is ${SECRET_CHARS} base-36 characters, got "${written}"`);
  return `${TOKEN_PREFIX}-${TOKEN_VERSION}-${base36(Buffer.from(caDigestHex, 'hex'), DIGEST_CHARS)}-${written}`;
}

export class TokenError extends Error {
  override readonly name = 'TokenError';
}

/** Reads a token; a malformed one is refused with what is wrong and what to do. */
export function parseJoinToken(text: string): JoinToken {
  const token = text.trim();
  const parts = token.split('-');
  const fix = 'copy it again from `docker swarm join-token worker` (or manager) on a manager';
  if (parts.length !== 4 || parts[0] !== TOKEN_PREFIX) throw new TokenError(`invalid join token: expected SWMTKN-1-<digest>-<secret>; ${fix}`);
  const [, version = '', digest = '', secret = ''] = parts;
  if (version !== TOKEN_VERSION) throw new TokenError(`invalid join token: version ${version} is not supported (this swarm speaks version ${TOKEN_VERSION}); ${fix}`);
  if (digest.length !== DIGEST_CHARS || !/^[0-9a-z]+$/.test(digest)) throw new TokenError(`invalid join token: the CA digest must be ${DIGEST_CHARS} base-36 characters; ${fix}`);
  if (secret.length !== SECRET_CHARS || !/^[0-9a-z]+$/.test(secret)) throw new TokenError(`invalid join token: the secret must be ${SECRET_CHARS} base-36 characters; ${fix}`);
  const value = parseBase36(digest);
  if (value >= 1n << 256n) throw new TokenError(`invalid join token: the CA digest is out of range; ${fix}`);
  return { caDigest: value.toString(16).padStart(64, '0'), secret };
}

function parseBase36(text: string): bigint {
  let v = 0n;
  for (const ch of text) v = v * 36n + BigInt(parseInt(ch, 36));
  return v;
}

/** Which role a presented secret grants, comparing in constant time; undefined for none. */
export function roleOfSecret<R extends string>(presented: string, secrets: Readonly<Record<R, string>>): R | undefined {
  const given = Buffer.from(presented);
  let found: R | undefined;
  for (const role of Object.keys(secrets) as R[]) {
    const want = Buffer.from(secrets[role]);
    if (want.length === given.length && timingSafeEqual(want, given)) found = role;
  }
  return found;
}
