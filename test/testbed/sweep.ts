// Removing everything a slot may hold, found from the slot number alone: what this
// process started, or what a process that died (or was SIGKILLed) left behind. It is
// synchronous on purpose: it also runs from process 'exit' and signal handlers.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readdirSync, rmSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { cgroupPrefix } from './layout.js';
import { netnsPath, removeSlotNetwork, slotLinks, slotNetnses, slotRules } from './network.js';
import { slotDir } from './paths.js';
import { allPids, cmdline, isAlive, killAllSync, netnsOf, run, sleepSync } from './proc.js';

const CGROUP_ROOT = '/sys/fs/cgroup';
/** Where containerd 1.6 puts every shim's socket, whichever containerd started it. */
const SHIM_SOCKET_DIR = '/run/containerd/s';

/** Mount points at or below `dir`, deepest first (mountinfo escapes spaces as \040). */
export function mountsUnder(dir: string): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const points = new Set<string>();
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4];
    if (field === undefined) continue;
    const point = field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
    if (point === dir || point.startsWith(`${dir}/`)) points.add(point);
  }
  return [...points].sort((a, b) => b.length - a.length);
}

/** The slot's cgroup directories in every hierarchy (v1 controllers and v2), deepest first. */
function slotCgroups(slot: number): string[] {
  const prefix = cgroupPrefix(slot);
  const tops: string[] = [];
  const hierarchies = [CGROUP_ROOT];
  try {
    for (const entry of readdirSync(CGROUP_ROOT, { withFileTypes: true })) {
      if (entry.isDirectory()) hierarchies.push(`${CGROUP_ROOT}/${entry.name}`);
    }
  } catch {
    return [];
  }
  for (const hierarchy of hierarchies) {
    let names: string[];
    try {
      names = readdirSync(hierarchy);
    } catch {
      continue;
    }
    for (const name of names) if (name.startsWith(prefix)) tops.push(`${hierarchy}/${name}`);
  }
  const all: string[] = [];
  const walk = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) if (entry.isDirectory()) walk(`${dir}/${entry.name}`);
    all.push(dir);
  };
  for (const top of tops) walk(top);
  return all;
}

function cgroupPids(dirs: string[]): number[] {
  const pids: number[] = [];
  for (const dir of dirs) {
    try {
      for (const line of readFileSync(`${dir}/cgroup.procs`, 'utf8').split('\n')) {
        if (/^[0-9]+$/.test(line)) pids.push(Number(line));
      }
    } catch {
      // removed meanwhile
    }
  }
  return pids;
}

/**
 * Live processes that belong to the slot: anything whose command line names the slot's
 * directory (dockerd, its containerd, shims, the registry), anything inside one of its
 * network namespaces, and every container process in its cgroups.
 */
export function slotProcesses(slot: number): number[] {
  const dir = `${slotDir(slot)}/`;
  const namespaces = new Set<string>();
  for (const ns of slotNetnses(slot)) {
    try {
      namespaces.add(`net:[${statSync(netnsPath(ns)).ino}]`);
    } catch {
      // deleted meanwhile
    }
  }
  const found = new Set<number>(cgroupPids(slotCgroups(slot)));
  for (const pid of allPids()) {
    if (pid === process.pid || pid === process.ppid) continue;
    if (cmdline(pid).includes(dir)) found.add(pid);
    else if (namespaces.size > 0) {
      const ns = netnsOf(pid);
      if (ns !== undefined && namespaces.has(ns)) found.add(pid);
    }
  }
  found.delete(process.pid);
  found.delete(process.ppid);
  return [...found].filter(isAlive);
}

/**
 * A SIGKILLed shim leaves its socket in /run/containerd/s, named by
 * sha256(<containerd address>/<namespace>/<container id>). Recompute those names from the
 * slot's engines and containers and remove them (dockerd's containerd namespace is "moby").
 */
function removeShimSockets(slot: number): void {
  const dir = slotDir(slot);
  let engines: string[];
  try {
    engines = readdirSync(dir).filter((name) => /^engine[0-9]+$/.test(name));
  } catch {
    return;
  }
  for (const engine of engines) {
    const address = `${dir}/${engine}/exec/containerd/containerd.sock`;
    let ids: string[];
    try {
      ids = readdirSync(`${dir}/${engine}/data/containers`).filter((name) => /^[0-9a-f]{64}$/.test(name));
    } catch {
      continue;
    }
    for (const id of ids) {
      const socket = `${SHIM_SOCKET_DIR}/${createHash('sha256').update(`${address}/moby/${id}`).digest('hex')}`;
      try {
        if (lstatSync(socket).isSocket()) unlinkSync(socket);
      } catch {
        // the shim removed it itself
      }
    }
  }
}

/**
 * Kills the slot's processes, unmounts and deletes its directory, removes its network
 * namespaces, links, iptables rules and cgroups. Idempotent. Throws if something stays.
 */
export function sweepSlot(slot: number, knownPids: number[] = []): void {
  const problems: string[] = [];
  let survivors = killAllSync(knownPids);
  // Repeat: a dockerd killed in the same pass may have been forking a containerd.
  for (let pass = 0; pass < 4; pass++) {
    const pids = slotProcesses(slot);
    if (pids.length === 0) break;
    survivors = killAllSync(pids);
  }
  if (survivors.length > 0) problems.push(`processes still alive: ${survivors.join(', ')}`);

  removeShimSockets(slot);
  const dir = slotDir(slot);
  for (const point of mountsUnder(dir)) {
    const r = run('umount', [point]);
    if (!r.ok) run('umount', ['-l', point]);
  }
  problems.push(...removeSlotNetwork(slot));

  for (const cgroup of slotCgroups(slot)) {
    if (!/^\/sys\/fs\/cgroup\/([^/]+\/)?swarmshift-tb[0-9]+-/.test(cgroup)) continue;
    for (let attempt = 0; ; attempt++) {
      try {
        rmdirSync(cgroup);
        break;
      } catch (err) {
        // A cgroup stays busy for a moment after its last process is reaped.
        if (attempt >= 20 || (err as NodeJS.ErrnoException).code === 'ENOENT') {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') problems.push(`cgroup ${cgroup}: ${String(err)}`);
          break;
        }
        sleepSync(25);
      }
    }
  }

  const stillMounted = mountsUnder(dir);
  if (stillMounted.length > 0) {
    // Never recurse into a mount: it could be a bind of anything on the host.
    problems.push(`still mounted, directory left in place: ${stillMounted.join(', ')}`);
  } else if (existsSync(dir)) {
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  }
  if (problems.length > 0) throw new Error(`testbed: cleanup of slot ${slot} incomplete:\n  ${problems.join('\n  ')}`);
}

/** Human-readable list of whatever of the slot still exists (empty when clean). */
export function slotLeftovers(slot: number): string[] {
  const left: string[] = [];
  for (const ns of slotNetnses(slot)) left.push(`netns ${ns}`);
  for (const link of slotLinks(slot)) left.push(`link ${link}`);
  for (const rule of slotRules(slot)) left.push(`iptables ${rule}`);
  for (const pid of slotProcesses(slot)) left.push(`process ${pid} ${cmdline(pid)}`);
  for (const cgroup of slotCgroups(slot)) left.push(`cgroup ${cgroup}`);
  const dir = slotDir(slot);
  for (const point of mountsUnder(dir)) left.push(`mount ${point}`);
  if (existsSync(dir)) left.push(`directory ${dir}`);
  return left;
}
