// Keep-alive connections to one engine, for the raw forwarder (raw-forward.ts): a
// connection whose last answer was read to its end goes back here and carries the next
// call, so a proxied call costs no connect (nor TLS handshake).
import type net from 'node:net';

/** Who reads a connection while it carries a call. */
export interface ConnectionUser {
  data(chunk: Buffer): void;
  /** The engine ended its side. */
  end(): void;
  error(err: Error): void;
  close(): void;
}

/**
 * One connection. Its socket listeners are set once and pass the events to the call it
 * carries; while it is idle, any event from the engine (bytes out of turn, an end, an
 * error) drops it. Nothing is added to or removed from the socket per call.
 */
export class PooledConnection {
  private user: ConnectionUser | undefined;
  private carried = 0;

  constructor(
    readonly socket: net.Socket,
    private readonly pool: { give(c: PooledConnection): void; drop(c: PooledConnection): void },
  ) {
    socket.on('data', (chunk: Buffer) => (this.user ? this.user.data(chunk) : pool.drop(this)));
    socket.on('end', () => (this.user ? this.user.end() : pool.drop(this)));
    socket.on('error', (err: Error) => (this.user ? this.user.error(err) : pool.drop(this)));
    socket.on('close', () => (this.user ? this.user.close() : pool.drop(this)));
  }

  /** It has carried a call before: the engine may have closed it since. */
  get reused(): boolean {
    return this.carried > 0;
  }

  use(user: ConnectionUser): void {
    this.user = user;
  }

  /** The call is over: a connection whose answer was read to its end goes back to the pool, any other is closed. */
  release(reusable: boolean): void {
    this.user = undefined;
    if (!reusable) {
      this.socket.destroy();
      return;
    }
    this.carried++;
    if (this.socket.isPaused()) this.socket.resume();
    this.pool.give(this);
  }
}

export interface SocketPool {
  /** The most recently used idle connection, or a new one (writes queue until it is up). */
  take(): PooledConnection;
  /** A new connection, never an idle one (to retry a call an idle connection failed). */
  open(): PooledConnection;
  /** Closes the idle connections; connections released later are closed too. */
  close(): void;
}

/** Node's http.Agent probes idle connections after the same delay. */
const keepAliveProbeMs = 1000;

export function createSocketPool(connect: () => net.Socket, maxIdle = 32): SocketPool {
  // Most recently used last: the hottest connection is taken first, the rest may age out.
  const idle: PooledConnection[] = [];
  let closed = false;

  const pool = {
    give(c: PooledConnection): void {
      if (closed || c.socket.destroyed || !c.socket.writable || idle.length >= maxIdle) {
        c.socket.destroy();
        return;
      }
      // An idle connection must not keep the process alive (as http.Agent's free sockets).
      c.socket.unref();
      idle.push(c);
    },
    drop(c: PooledConnection): void {
      const i = idle.lastIndexOf(c);
      if (i >= 0) idle.splice(i, 1);
      c.socket.destroy();
    },
  };

  function open(): PooledConnection {
    const socket = connect();
    socket.setNoDelay(true);
    socket.setKeepAlive(true, keepAliveProbeMs);
    return new PooledConnection(socket, pool);
  }

  return {
    take() {
      const c = idle.pop();
      if (c === undefined) return open();
      c.socket.ref();
      return c;
    },
    open,
    close() {
      closed = true;
      for (const c of idle.splice(0)) c.socket.destroy();
    },
  };
}
