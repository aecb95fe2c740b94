// A TCP proxy that can be switched off and on: an outage of the server behind it that
// keeps the server's data (closing every connection, refusing new ones), then recovery.
import net from 'node:net';

export interface TcpProxy {
  /** "127.0.0.1:PORT", stable across outages. */
  readonly address: string;
  outage(): Promise<void>;
  recover(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  const listen = async (): Promise<void> => {
    const s = net.createServer((client) => {
      const upstream = net.connect(targetPort, targetHost);
      sockets.add(client);
      sockets.add(upstream);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => s.listen(port, '127.0.0.1', () => resolve()));
    const a = s.address();
    port = typeof a === 'object' && a ? a.port : port;
    server = s;
  };
  const stop = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    sockets.clear();
    const s = server;
    server = undefined;
    if (s) await new Promise((r) => s.close(r));
  };
  await listen();
  return { address: `127.0.0.1:${port}`, outage: stop, recover: listen, close: stop };
}
