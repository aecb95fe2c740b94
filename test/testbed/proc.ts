// Process facts read from /proc. PID 1 on these machines reaps orphans late, so a
// killed process can linger as a zombie: everywhere here a zombie counts as dead.
import { accessSync, constants, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

export type ProcState = 'alive' | 'zombie' | 'gone';

function statFields(pid: number): string[] | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may itself contain spaces or ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  // fields[0] is the state (field 3 of proc(5)).
  return text.slice(close + 2).trim().split(' ');
}

export function procState(pid: number): ProcState {
  const fields = statFields(pid);
  if (fields === undefined) return 'gone';
  const state = fields[0];
  return state === 'Z' || state === 'X' || state === 'x' ? 'zombie' : 'alive';
}

export function isAlive(pid: number): boolean {
  return pid > 0 && procState(pid) === 'alive';
}

/** Start time in clock ticks since boot (proc(5) field 22): tells a reused PID apart. */
export function startTime(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

export function allPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^[0-9]+$/.test(name))
    .map(Number);
}

/** "net:[4026532283]" for a process's network namespace, or undefined if unreadable. */
export function netnsOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Blocks the thread: only for the synchronous cleanup paths (process 'exit', signals). */
export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Sends a signal, ignoring a process that is already gone. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Process group of a live process (proc(5) field 5). */
function processGroup(pid: number): number | undefined {
  const group = Number(statFields(pid)?.[2]);
  return Number.isInteger(group) && group > 0 ? group : undefined;
}

/**
 * SIGKILLs every pid (and the whole group of those that lead one: everything here is
 * started detached) and waits synchronously until none is alive. Returns the survivors.
 */
export function killAllSync(pids: Iterable<number>, timeoutMs = 5000): number[] {
  const ownGroup = processGroup(process.pid);
  const targets = [...new Set(pids)].filter((pid) => pid > 1 && pid !== process.pid);
  for (const pid of targets) {
    if (processGroup(pid) === pid && pid !== ownGroup) signal(-pid, 'SIGKILL');
    signal(pid, 'SIGKILL');
  }
  const deadline = Date.now() + timeoutMs;
  let alive = targets.filter(isAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    sleepSync(20);
    alive = alive.filter(isAlive);
  }
  return alive;
}

/** Waits until `pid` is no longer alive (gone or zombie). */
export async function waitDead(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(25);
  }
  return true;
}

/** Runs a command synchronously; returns its result without throwing. */
export function run(cmd: string, args: string[]): { ok: boolean; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

/** Runs a command synchronously; throws with its stderr if it fails. */
export function mustRun(cmd: string, args: string[]): string {
  const r = run(cmd, args);
  if (!r.ok) throw new Error(`testbed: ${cmd} ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Absolute path of an executable found on PATH (plus the sbin dirs root normally has). */
export function which(name: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin']);
  for (const dir of dirs) {
    if (dir.length === 0) continue;
    const candidate = `${dir}/${name}`;
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
