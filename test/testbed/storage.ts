// Which storage driver engines use: overlay2 where the work root's filesystem can carry
// an overlay mount (ext4 here: yes), vfs otherwise (e.g. when the work root is itself on
// overlayfs). Probed once per process with a real mount; TESTBED_STORAGE_DRIVER overrides.
import { mkdirSync, rmSync } from 'node:fs';
import { WORK_ROOT, childPath } from './paths.js';
import { run } from './proc.js';

let probed: string | undefined;

export function storageDriver(log: (line: string) => void): string {
  const forced = process.env.TESTBED_STORAGE_DRIVER;
  if (forced !== undefined && forced.length > 0) return forced;
  if (probed !== undefined) return probed;
  const dir = childPath(WORK_ROOT, `probe-${process.pid}-${Date.now()}`);
  const lower = childPath(dir, 'lower');
  const upper = childPath(dir, 'upper');
  const work = childPath(dir, 'work');
  const merged = childPath(dir, 'merged');
  try {
    for (const d of [lower, upper, work, merged]) mkdirSync(d, { recursive: true });
    const mounted = run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged]);
    if (mounted.ok) run('umount', [merged]);
    probed = mounted.ok ? 'overlay2' : 'vfs';
    log(`storage driver: ${probed}${mounted.ok ? '' : ` (overlay mount failed: ${mounted.stderr.trim()})`}`);
  } finally {
    // Only remove the probe once nothing is mounted in it.
    if (!run('mountpoint', ['-q', merged]).ok) rmSync(dir, { recursive: true, force: true });
  }
  return probed;
}
