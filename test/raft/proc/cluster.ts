// Runs raftkv processes on loopback addresses for the process tests and the benchmark:
// start, kill -9, restart, and talk to them over HTTP. Every child is tracked by pid and
// stopped by pid (also if the parent exits early).

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./raftkv.js', import.meta.url));
const RAFT_PORT = 17000;
const HTTP_PORT = 18000;

const agent = new Agent({ keepAlive: true, maxSockets: 512 });

export interface HttpReply {
  readonly status: number;
  readonly body: unknown;
}

/** One HTTP call; rejects only when the node cannot be reached at all. */
export function http(ip: string, method: string, path: string, payload?: string | object, timeoutMs = 10_000): Promise<HttpReply> {
  const data = payload === undefined ? undefined : typeof payload === 'string' ? payload : JSON.stringify(payload);
  return new Promise((resolve, reject) => {
    const req = request({ host: ip, port: HTTP_PORT, method, path, agent, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${ip}${path}: timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

export interface ProcStatus {
  readonly id: string;
  readonly role: string;
  readonly term: number;
  readonly leader: string | null;
  readonly commit: number;
  readonly appliedLocally: number;
  readonly snapshotIndex: number;
  readonly eventLoopMaxStallMs: number;
  readonly membership: { readonly voters: string[]; readonly learners: string[] };
}

interface Member {
  readonly id: string;
  readonly ip: string;
  readonly dir: string;
  proc: ChildProcess | null;
  log: string;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) if (p.pid !== undefined && p.exitCode === null) process.kill(p.pid, 'SIGKILL');
});

export interface ProcClusterOptions {
  readonly root: string;
  /** Third octet of the members' addresses: 127.0.NET.1, .2, ... (distinct per concurrent cluster). */
  readonly net: number;
  /** Extra raftkv flags (tunables). */
  readonly args?: readonly string[];
}

export class ProcCluster {
  private readonly members = new Map<string, Member>();
  /** Where writes went last: asking every member for its status per write would cost more than the write. */
  private leaderHint: string | null = null;

  constructor(private readonly opts: ProcClusterOptions) {}

  ipOf(id: string): string {
    const m = this.members.get(id);
    if (m === undefined) throw new Error(`no member ${id}`);
    return m.ip;
  }

  /** Declares a member (n1 -> 127.0.NET.1); start() runs it. */
  define(id: string): void {
    if (this.members.has(id)) return;
    const n = Number(id.replace(/^\D+/, ''));
    this.members.set(id, { id, ip: `127.0.${this.opts.net}.${n}`, dir: join(this.opts.root, id), proc: null, log: '' });
  }

  raftAddress(id: string): string {
    return `${this.ipOf(id)}:${RAFT_PORT}`;
  }

  ids(): string[] {
    return [...this.members.keys()];
  }

  running(): string[] {
    return [...this.members.values()].filter((m) => m.proc !== null).map((m) => m.id);
  }

  /** Starts a member; peers are the given ids (default: every defined member). */
  async start(id: string, flags: { join?: boolean; forceNewCluster?: boolean; peers?: string[] } = {}): Promise<void> {
    this.define(id);
    const m = this.members.get(id);
    if (m === undefined || m.proc !== null) throw new Error(`${id} is already running`);
    const peers = (flags.peers ?? this.ids()).map((p) => `${p}=${this.raftAddress(p)}`).join(',');
    const args = [SCRIPT, '--id', id, '--ip', m.ip, '--dir', m.dir, '--peers', peers, '--raft-port', String(RAFT_PORT), '--http-port', String(HTTP_PORT), ...(this.opts.args ?? [])];
    if (flags.join === true) args.push('--join');
    if (flags.forceNewCluster === true) args.push('--force-new-cluster');
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    m.proc = proc;
    proc.stderr?.on('data', (c: Buffer) => {
      m.log = (m.log + c.toString()).slice(-4000);
    });
    proc.once('exit', () => {
      live.delete(proc);
      if (m.proc === proc) m.proc = null;
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${id} did not start within 15 s: ${m.log}`)), 15_000);
      let out = '';
      proc.stdout?.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes(`ready ${id}`)) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${id} exited with ${String(code)} while starting: ${m.log}`));
      });
    });
  }

  /** kill -9: no shutdown, no flush. Resolves when the process is gone. */
  async kill(id: string): Promise<void> {
    await this.signalAndWait(id, 'SIGKILL');
  }

  async stop(id: string): Promise<void> {
    await this.signalAndWait(id, 'SIGTERM');
  }

  signal(id: string, sig: NodeJS.Signals): void {
    const pid = this.members.get(id)?.proc?.pid;
    if (pid !== undefined) process.kill(pid, sig);
  }

  private async signalAndWait(id: string, sig: NodeJS.Signals): Promise<void> {
    const proc = this.members.get(id)?.proc;
    if (proc === null || proc === undefined || proc.pid === undefined) return;
    const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    if (proc.exitCode !== null) return;
    process.kill(proc.pid, sig);
    const force = setTimeout(() => {
      if (proc.pid !== undefined && proc.exitCode === null) process.kill(proc.pid, 'SIGKILL');
    }, 5000);
    await gone;
    clearTimeout(force);
  }

  async stopAll(): Promise<void> {
    for (const id of this.running()) {
      // A stopped (SIGSTOP) process must be continued to act on SIGTERM.
      this.signal(id, 'SIGCONT');
      await this.stop(id);
    }
  }

  call(id: string, method: string, path: string, payload?: string | object, timeoutMs?: number): Promise<HttpReply> {
    return http(this.ipOf(id), method, path, payload, timeoutMs);
  }

  async status(id: string): Promise<ProcStatus | null> {
    try {
      const r = await this.call(id, 'GET', '/status', undefined, 2000);
      return r.status === 200 ? (r.body as ProcStatus) : null;
    } catch {
      return null;
    }
  }

  /** The member that leads, as seen by the running members (the newest term wins). */
  async leader(timeoutMs = 20_000, among: string[] = this.running()): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const all = await Promise.all(among.map((id) => this.status(id)));
      let best: ProcStatus | null = null;
      for (const s of all) if (s !== null && s.role === 'leader' && (best === null || s.term > best.term)) best = s;
      if (best !== null) return best.id;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('no leader among the running members');
  }

  /** PUT through the leader, retrying on another member when it changes; resolves when acknowledged. */
  async put(key: string, value: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError = '';
    while (Date.now() < deadline) {
      const target = this.leaderHint !== null && this.running().includes(this.leaderHint) ? this.leaderHint : await this.leader(Math.max(1, deadline - Date.now()));
      this.leaderHint = target;
      try {
        const r = await this.call(target, 'PUT', `/kv/${encodeURIComponent(key)}`, value);
        if (r.status === 200) return;
        lastError = JSON.stringify(r.body);
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
      }
      if (this.leaderHint === target) this.leaderHint = null;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`put ${key}: no success within ${timeoutMs} ms (${lastError})`);
  }

  /** Every key on one member, read linearizably. */
  async dump(id: string, timeoutMs = 20_000): Promise<Record<string, string>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // A member that just restarted has no leader yet: its read waits for one.
      const r = await this.call(id, 'GET', '/dump');
      if (r.status === 200) return (r.body as { data: Record<string, string> }).data;
      if (Date.now() > deadline) throw new Error(`dump ${id}: ${r.status} ${JSON.stringify(r.body)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  logOf(id: string): string {
    return this.members.get(id)?.log ?? '';
  }
}
