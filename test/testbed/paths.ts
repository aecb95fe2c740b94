// Where the testbed keeps its files, and the guard every write and delete goes through.
// A rootfs builder once ran with an empty variable and truncated the host's
// /etc/resolv.conf: no path is touched unless it is absolute, normalised and strictly
// inside one of the two roots below.
import { isAbsolute, normalize } from 'node:path';

/** Data roots, exec roots, logs, the image cache. On disk (not tmpfs) so overlay2 works. */
export const WORK_ROOT = '/var/tmp/swarmshift-testbed';
/** Slot locks: cleared by a reboot together with the network namespaces they describe. */
export const LOCK_ROOT = '/run/swarmshift-testbed';

const ROOTS = [WORK_ROOT, LOCK_ROOT] as const;

/**
 * Returns `path` if it lies strictly inside WORK_ROOT or LOCK_ROOT; throws otherwise.
 * Rejects empty strings, relative paths, `..` segments and anything that normalises
 * to a different spelling, so a half-built path can never reach outside the roots.
 */
export function guardPath(path: string): string {
  if (path.length === 0) throw new Error('testbed: refusing an empty path');
  if (!isAbsolute(path)) throw new Error(`testbed: refusing relative path ${JSON.stringify(path)}`);
  if (normalize(path) !== path || path.endsWith('/')) {
    throw new Error(`testbed: refusing non-normalised path ${JSON.stringify(path)}`);
  }
  if (path.split('/').includes('..')) throw new Error(`testbed: refusing path with '..': ${path}`);
  const inside = ROOTS.some((root) => path.startsWith(`${root}/`) && path.length > root.length + 1);
  if (!inside) throw new Error(`testbed: refusing path outside ${ROOTS.join(' and ')}: ${path}`);
  return path;
}

/** Joins validated segments onto a guarded base. Segments may not contain '/' or be '.'/'..'. */
export function childPath(base: string, ...segments: string[]): string {
  let path = base === WORK_ROOT || base === LOCK_ROOT ? base : guardPath(base);
  for (const segment of segments) {
    if (segment.length === 0 || segment.includes('/') || segment === '.' || segment === '..' || segment.includes('\0')) {
      throw new Error(`testbed: refusing path segment ${JSON.stringify(segment)}`);
    }
    path = `${path}/${segment}`;
  }
  return guardPath(path);
}

export function slotDir(slot: number): string {
  return childPath(WORK_ROOT, `slot-${checkSlot(slot)}`);
}

export function slotLockPath(slot: number): string {
  return childPath(LOCK_ROOT, `slot-${checkSlot(slot)}.lock`);
}

export function cacheDir(): string {
  return childPath(WORK_ROOT, 'cache');
}

/** Slots map onto 10.213.<slot>.0/24, so they are 1..254. */
export const MAX_SLOT = 254;

export function checkSlot(slot: number): number {
  if (!Number.isInteger(slot) || slot < 1 || slot > MAX_SLOT) throw new Error(`testbed: invalid slot ${slot}`);
  return slot;
}
