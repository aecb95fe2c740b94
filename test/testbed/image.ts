// The only image engines have offline: a busybox rootfs built from Debian's
// busybox-static, cached as a tar and `docker import`ed as busybox:latest (CMD ["sh"]).
// busybox's wget segfaults on these machines; use nc inside containers.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, createReadStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { cacheDir, childPath, guardPath } from './paths.js';
import { which } from './proc.js';

const execFileAsync = promisify(execFile);

/** Bump when the rootfs layout changes, so cached tars are rebuilt. */
const ROOTFS_VERSION = 1;

function busyboxBinary(): string {
  for (const candidate of ['/bin/busybox', '/usr/bin/busybox']) {
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('testbed: /bin/busybox not found; install Debian\'s busybox-static (apt-get install busybox-static)');
}

/** Applet paths relative to the rootfs root, e.g. "bin/sh", "usr/bin/nc". */
async function appletPaths(busybox: string): Promise<string[]> {
  let lines: string[];
  try {
    lines = (await execFileAsync(busybox, ['--list-full'])).stdout.split('\n');
  } catch {
    lines = (await execFileAsync(busybox, ['--list'])).stdout.split('\n').map((name) => `bin/${name}`);
  }
  return lines.map((line) => line.trim()).filter((path) => {
    const parts = path.split('/');
    return path.length > 0 && !path.startsWith('/') && !parts.includes('..') && !parts.includes('.') && !parts.includes('') && path !== 'bin/busybox';
  });
}

let building: Promise<string> | undefined;

/**
 * Path of a cached rootfs tar (`docker import`-able): /bin/busybox, a symlink per applet,
 * a minimal /etc/passwd and /etc/group, /tmp and /root. Rebuilt when missing or when the
 * busybox binary changes.
 */
export function busyboxImageTar(): Promise<string> {
  building ??= buildTar().finally(() => {
    building = undefined;
  });
  return building;
}

async function buildTar(): Promise<string> {
  const busybox = busyboxBinary();
  const digest = createHash('sha256').update(readFileSync(busybox)).digest('hex').slice(0, 16);
  const cache = cacheDir();
  const tar = childPath(cache, `busybox-${digest}-v${ROOTFS_VERSION}.tar`);
  if (existsSync(tar) && statSync(tar).size > 0) return tar;
  if (which('tar') === undefined) throw new Error('testbed: tar not found (apt-get install tar)');

  mkdirSync(cache, { recursive: true });
  const build = childPath(cache, `build-${process.pid}-${Date.now()}`);
  const rootfs = childPath(build, 'rootfs');
  try {
    for (const dir of ['bin', 'etc', 'tmp', 'root']) mkdirSync(childPath(rootfs, dir), { recursive: true });
    chmodSync(childPath(rootfs, 'tmp'), 0o1777);
    chmodSync(childPath(rootfs, 'root'), 0o700);
    copyFileSync(busybox, childPath(rootfs, 'bin', 'busybox'));
    chmodSync(childPath(rootfs, 'bin', 'busybox'), 0o755);
    for (const applet of await appletPaths(busybox)) {
      const link = guardPath(`${rootfs}/${applet}`);
      mkdirSync(dirname(link), { recursive: true });
      if (!existsSync(link)) symlinkSync('/bin/busybox', link);
    }
    writeFileSync(childPath(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
    writeFileSync(childPath(rootfs, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
    const partial = childPath(build, 'rootfs.tar');
    await execFileAsync('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', partial, '.']);
    // rename() is atomic: a concurrent builder in another process just wins or loses.
    renameSync(partial, tar);
    return tar;
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
}

/** Imports the tar on an engine as busybox:latest with CMD ["sh"] (POST /images/create). */
export function importBusybox(socketPath: string, tar: string): Promise<void> {
  const query = new URLSearchParams({ fromSrc: '-', repo: 'busybox', tag: 'latest', changes: 'CMD ["sh"]' });
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, method: 'POST', path: `/images/create?${query.toString()}`, headers: { 'Content-Type': 'application/x-tar' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          // A 200 can still carry {"errorDetail": ...} lines in its progress stream.
          const failed = res.statusCode !== 200 || /"error(Detail)?"\s*:/.test(body);
          if (failed) reject(new Error(`testbed: importing busybox on ${socketPath} failed (${res.statusCode ?? '?'}): ${body.trim()}`));
          else resolve();
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    const stream = createReadStream(tar);
    stream.on('error', (err) => req.destroy(err));
    stream.pipe(req);
  });
}
