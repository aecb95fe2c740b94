// Starts the real `swarm manage` binary (dist/legacy/cli/swarm.js) as a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const swarmBin = fileURLToPath(new URL('../../legacy/cli/swarm.js', import.meta.url));

export interface ManagerProcess {
  /** "tcp://127.0.0.1:PORT" */
  host: string;
  child: ChildProcess;
  log: () => string;
  stop(): Promise<void>;
}

export async function startManager(args: string[]): Promise<ManagerProcess> {
  const listen = args.includes('-H') ? [] : ['-H', '127.0.0.1:0'];
  const child = spawn(process.execPath, [swarmBin, 'manage', ...listen, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const host = await new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      log += d.toString();
      const m = /msg="Listening for HTTP" addr=(tcp:\/\/[\d.]+:\d+)/.exec(log);
      if (m?.[1]) resolve(m[1]);
    };
    child.stderr.on('data', onData);
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.on('exit', (code) => reject(new Error(`swarm manage exited with ${code} before listening:\n${log}`)));
    setTimeout(() => reject(new Error(`swarm manage did not listen within 15 s:\n${log}`)), 15_000);
  });
  return {
    host,
    child,
    log: () => log,
    async stop() {
      // A child killed by a signal has no exit code, only a signal code.
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise<void>((r) => child.on('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
    },
  };
}

export interface SwarmProcess {
  child: ChildProcess;
  log: () => string;
  /** SIGTERM (a clean leave), waiting for the exit. */
  stop(): Promise<void>;
  /** SIGKILL (a crash), waiting for the exit. */
  kill(): Promise<void>;
}

/** Any other `swarm` command (join, list) as a child process. */
export function spawnSwarm(args: string[]): SwarmProcess {
  const child = spawn(process.execPath, [swarmBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const end = async (sig: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(sig);
    await exited;
  };
  return { child, log: () => log, stop: () => end('SIGTERM'), kill: () => end('SIGKILL') };
}
