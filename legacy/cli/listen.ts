// Where `swarm manage -H` listens: "tcp://0.0.0.0:4000", ":4000", "127.0.0.1:4000" or
// "unix:///var/run/swarm.sock", as classic and dockerd accept them.
import { existsSync, unlinkSync } from 'node:fs';
import type { Server } from 'node:net';

export type ListenAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export function parseListen(spec: string): ListenAddress {
  if (spec.startsWith('unix://')) {
    const path = spec.slice('unix://'.length);
    if (!path.startsWith('/')) throw new Error(`-H ${spec}: a unix socket needs an absolute path, for example unix:///var/run/swarm.sock`);
    return { kind: 'unix', path };
  }
  const rest = spec.replace(/^tcp:\/\//, '');
  const i = rest.lastIndexOf(':');
  const host = i < 0 ? rest : rest.slice(0, i).replace(/^\[|\]$/g, '');
  const port = i < 0 ? 2375 : Number(rest.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`-H ${spec}: invalid port; expected for example tcp://0.0.0.0:4000 or :4000`);
  return { kind: 'tcp', host: host === '' ? '0.0.0.0' : host, port };
}

export function formatListen(a: ListenAddress, actualPort?: number): string {
  return a.kind === 'unix' ? `unix://${a.path}` : `tcp://${a.host}:${actualPort ?? a.port}`;
}

export function listen(server: Server, a: ListenAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (a.kind === 'unix') {
      // A socket file left by a manager that died is removed, as dockerd does.
      if (existsSync(a.path)) unlinkSync(a.path);
      server.listen(a.path, done);
    } else {
      server.listen(a.port, a.host, done);
    }
  });
}
