// Slot allocation across processes. Several test files may start testbeds at the same
// moment; each slot is owned through a lock file holding the owner's pid and start time
// (so a reused pid is not mistaken for the owner). Allocation itself runs under a short
// mutex (alloc.lock) so that reclaiming a dead owner's slot and taking a free one never
// race; both files are written whole and then link()ed into place, which is atomic and
// fails if the name exists.
import { linkSync, mkdirSync, readFileSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { slotNetnses } from './network.js';
import { LOCK_ROOT, MAX_SLOT, childPath, slotLockPath } from './paths.js';
import { isAlive, sleep, startTime } from './proc.js';
import { sweepSlot } from './sweep.js';

export interface LockOwner {
  pid: number;
  start: string;
}

export function parseOwner(text: string): LockOwner | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null) return undefined;
    const pid = (value as Record<string, unknown>).pid;
    const start = (value as Record<string, unknown>).start;
    if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0 || typeof start !== 'string') return undefined;
    return { pid, start };
  } catch {
    return undefined;
  }
}

export function ownerAlive(owner: LockOwner | undefined): boolean {
  return owner !== undefined && isAlive(owner.pid) && startTime(owner.pid) === owner.start;
}

function readOwner(path: string): LockOwner | undefined {
  try {
    return parseOwner(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

function self(): LockOwner {
  return { pid: process.pid, start: startTime(process.pid) ?? '' };
}

let tmpCounter = 0;

/** Creates `path` holding our owner record; false if it already exists. */
function createLock(path: string): boolean {
  mkdirSync(LOCK_ROOT, { recursive: true, mode: 0o755 });
  const tmp = childPath(LOCK_ROOT, `.tmp-${process.pid}-${tmpCounter++}`);
  writeFileSync(tmp, JSON.stringify(self()));
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}

/** Removes a lock whose owner is dead; false if it changed hands meanwhile. */
function removeDeadLock(path: string, dead: LockOwner | undefined): boolean {
  const aside = childPath(LOCK_ROOT, `.stale-${process.pid}-${tmpCounter++}`);
  try {
    renameSync(path, aside);
  } catch {
    return false;
  }
  const moved = readOwner(aside);
  if (moved !== undefined && (dead === undefined || moved.pid !== dead.pid || moved.start !== dead.start)) {
    // A live owner took the name between our read and the rename: put it back.
    try {
      linkSync(aside, path);
    } catch {
      // its owner will notice the missing lock only at close; nothing more we can do
    }
    unlinkSync(aside);
    return false;
  }
  unlinkSync(aside);
  return true;
}

const MUTEX = childPath(LOCK_ROOT, 'alloc.lock');

async function withMutex<T>(fn: () => T): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (createLock(MUTEX)) break;
    const owner = readOwner(MUTEX);
    // A lock still being written reads as undefined: only a dead owner is removed.
    if (owner !== undefined && !ownerAlive(owner)) {
      removeDeadLock(MUTEX, owner);
      continue;
    }
    if (Date.now() > deadline) throw new Error(`testbed: ${MUTEX} held by pid ${owner?.pid ?? '?'} for over 60 s`);
    await sleep(20 + Math.random() * 30);
  }
  try {
    return fn();
  } finally {
    const owner = readOwner(MUTEX);
    if (owner?.pid === process.pid) unlinkSync(MUTEX);
  }
}

export interface SlotInfo {
  slot: number;
  owner: LockOwner | undefined;
  alive: boolean;
}

/** Every slot that has a lock file or leftover network namespaces. */
export function listSlots(): SlotInfo[] {
  const slots = new Map<number, SlotInfo>();
  let names: string[] = [];
  try {
    names = readdirSync(LOCK_ROOT);
  } catch {
    // no slot was ever taken since boot
  }
  for (const name of names) {
    const match = /^slot-([0-9]+)\.lock$/.exec(name);
    if (match === null) continue;
    const slot = Number(match[1]);
    if (slot < 1 || slot > MAX_SLOT) continue;
    const owner = readOwner(slotLockPath(slot));
    slots.set(slot, { slot, owner, alive: ownerAlive(owner) });
  }
  let netnses: string[] = [];
  try {
    netnses = readdirSync('/run/netns');
  } catch {
    // none
  }
  for (const ns of netnses) {
    const match = /^ss([0-9]+)-/.exec(ns);
    if (match === null) continue;
    const slot = Number(match[1]);
    if (slot >= 1 && slot <= MAX_SLOT && !slots.has(slot)) slots.set(slot, { slot, owner: undefined, alive: false });
  }
  return [...slots.values()].sort((a, b) => a.slot - b.slot);
}

/**
 * Cleans slots whose owner is dead (or every slot with `all`), then frees their locks.
 * Returns the slots it cleaned.
 */
export async function reclaimSlots(all = false): Promise<number[]> {
  return withMutex(() => {
    const { cleaned, errors } = reclaimLocked(all);
    if (errors.length > 0) throw new Error(errors.join('\n'));
    return cleaned;
  });
}

function reclaimLocked(all: boolean): { cleaned: number[]; errors: string[] } {
  const cleaned: number[] = [];
  const errors: string[] = [];
  for (const info of listSlots()) {
    if (info.alive && !all) continue;
    try {
      sweepSlot(info.slot);
      const path = slotLockPath(info.slot);
      if (info.owner === undefined || !info.alive) removeDeadLock(path, info.owner);
      else unlinkSync(path);
      cleaned.push(info.slot);
    } catch (err) {
      // The dead owner's lock stays: the slot is not handed out until a sweep succeeds.
      errors.push(err instanceof Error ? err.message : String(err));
    }
  }
  return { cleaned, errors };
}

/** Takes the lowest free slot, after reclaiming those of dead owners. */
export async function acquireSlot(): Promise<number> {
  return withMutex(() => {
    // A slot that cannot be swept keeps its lock and is skipped; its errors are reported
    // only if no slot at all can be had.
    const { errors } = reclaimLocked(false);
    for (let slot = 1; slot <= MAX_SLOT; slot++) {
      // Leftovers without a lock (e.g. /run was wiped but not the netns): not free.
      if (slotNetnses(slot).length > 0) continue;
      const path = slotLockPath(slot);
      if (!createLock(path)) continue;
      try {
        // Whatever a previous owner left under this slot's names goes first.
        sweepSlot(slot);
        return slot;
      } catch (err) {
        errors.push(err instanceof Error ? err.message : String(err));
        unlinkSync(path);
      }
    }
    throw new Error(
      `testbed: no free slot among ${MAX_SLOT}; \`testbed ls\` lists them, \`testbed down\` frees those of dead owners${errors.length > 0 ? `\n${errors.join('\n')}` : ''}`,
    );
  });
}

/** Gives a slot back; only if we still own it. */
export function releaseSlot(slot: number): void {
  const path = slotLockPath(slot);
  const owner = readOwner(path);
  if (owner?.pid === process.pid) {
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
  }
}
