// The real docker CLI as the client in end-to-end tests.
import { execFile, spawn, type ChildProcess } from 'node:child_process';

export const modernDocker = '/usr/local/bin/docker';
export const debianDocker = '/usr/bin/docker';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the docker CLI against `host`; resolves with its exit code and output (never rejects on a non-zero exit). */
export function dockerRun(host: string, args: string[], opts: { bin?: string; input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      opts.bin ?? modernDocker,
      args,
      { env: { ...process.env, DOCKER_HOST: host, DOCKER_CLI_HINTS: 'false', DOCKER_BUILDKIT: '0', ...opts.env }, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** Runs the docker CLI and returns its trimmed stdout; throws with stderr when it fails. */
export async function docker(host: string, args: string[], opts: { bin?: string; input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await dockerRun(host, args, opts);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout.trim();
}

/** Starts a long-running docker command (logs -f, events) and collects its output. */
export function dockerSpawn(host: string, args: string[], bin = modernDocker): { child: ChildProcess; output: () => string; exited: Promise<number> } {
  const child = spawn(bin, args, { env: { ...process.env, DOCKER_HOST: host }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  return { child, output: () => out, exited };
}

export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000, intervalMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
