// Debian's docker-registry (distribution v2) on the bridge address, port 5000. Every
// engine of the testbed was started with --insecure-registry for it.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { httpStatus, logTail } from './engine.js';
import { REGISTRY_PORT } from './layout.js';
import { childPath } from './paths.js';
import { signal, sleep, waitDead, which } from './proc.js';

export interface Registry {
  /** "10.213.3.1:5000": tag images as `${address}/name`. */
  readonly address: string;
  stop(): Promise<void>;
}

export class RegistryProcess implements Registry {
  readonly address: string;
  private readonly host: string;
  private readonly dir: string;
  private child: ChildProcess | undefined;

  constructor(host: string, dir: string) {
    this.host = host;
    this.address = `${host}:${REGISTRY_PORT}`;
    this.dir = dir;
  }

  get pid(): number | undefined {
    const child = this.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
  }

  async start(log: (line: string) => void): Promise<void> {
    const binary = which('docker-registry');
    if (binary === undefined) throw new Error('testbed: docker-registry not found (apt-get install docker-registry)');
    const storage = childPath(this.dir, 'storage');
    mkdirSync(storage, { recursive: true });
    const config = childPath(this.dir, 'config.yml');
    writeFileSync(
      config,
      [
        'version: 0.1',
        'log:',
        '  level: warn',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${storage}`,
        '  delete:',
        '    enabled: true',
        'http:',
        `  addr: ${this.address}`,
        '',
      ].join('\n'),
    );
    const logFile = childPath(this.dir, 'registry.log');
    const fd = openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(binary, ['serve', config], { detached: true, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    child.unref();
    child.once('error', () => undefined);
    this.child = child;
    const started = Date.now();
    while ((await httpStatus({ host: this.host, port: REGISTRY_PORT }, '/v2/', 1000)) !== 200) {
      if (child.exitCode !== null || child.signalCode !== null || Date.now() - started > 30_000) {
        await this.stop();
        throw new Error(`testbed: docker-registry did not answer on http://${this.address}/v2/; last lines of ${logFile}:\n${logTail(logFile)}`);
      }
      await sleep(40);
    }
    log(`registry: up at ${this.address} in ${Date.now() - started} ms`);
  }

  async stop(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) return;
    signal(pid, 'SIGTERM');
    if (!(await waitDead(pid, 5000))) {
      signal(pid, 'SIGKILL');
      await waitDead(pid, 5000);
    }
  }
}
