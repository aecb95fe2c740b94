// Forwarding a bodiless call over a pooled raw connection to the engine: the request head
// is written as bytes and the answer is read with response-parser.ts, skipping Node's HTTP
// client (request object, agent queue, header objects, a readable stream per answer).
// That is most of what a proxied call costs the manager. The answer still goes out through
// the client's ServerResponse, so Node's server keeps owning the client's connection.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { explainTlsError, type EngineClient } from './engine-client.js';
import { ApiError } from './errors.js';
import { hopByHopHeaders, sendError } from './http.js';
import { bodyDecoder, HttpParseError, parseResponseHead, type BodyDecoder, type ResponseHead } from './response-parser.js';
import type { ConnectionUser, PooledConnection } from './socket-pool.js';

export interface RawForwardOptions {
  /** Buffers a 2xx answer and lets the caller rewrite it (for instance to add `Node`). */
  rewrite?: (body: Buffer) => Buffer;
  /** Called with the engine's status once the engine has answered. */
  onStatus?: (status: number) => void;
}

/** A request target we can write verbatim: printable ASCII, no spaces. */
const plainTarget = /^\/[\x21-\x7e]*$/;

/**
 * Whether `req` can go over a raw connection: it carries no body (so it can be retried
 * and nothing needs streaming upwards) and expects no 100-continue.
 */
export function rawForwardable(req: IncomingMessage, path: string): boolean {
  const h = req.headers;
  if (h['transfer-encoding'] !== undefined || h.expect !== undefined) return false;
  const length = h['content-length'];
  return (length === undefined || length === '0') && plainTarget.test(path);
}

/** The request head as the engine gets it: the client's headers but the hop-by-hop ones, our Host. */
export function requestHead(method: string, path: string, host: string, rawHeaders: string[]): string {
  let head = `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\n`;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] ?? '';
    if (hopByHopHeaders.has(name.toLowerCase())) continue;
    head += `${name}: ${rawHeaders[i + 1] ?? ''}\r\n`;
  }
  return `${head}\r\n`;
}

/** The engine's headers for the client: the hop-by-hop ones (and, when we re-frame the body, Content-Length) left out. */
function answerHeaders(head: ResponseHead, contentLength: number | undefined): string[] {
  const out: string[] = [];
  const raw = head.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? '';
    const lower = name.toLowerCase();
    if (hopByHopHeaders.has(lower) || (contentLength !== undefined && lower === 'content-length')) continue;
    out.push(name, raw[i + 1] ?? '');
  }
  if (contentLength !== undefined) out.push('Content-Length', String(contentLength));
  return out;
}

/**
 * How an answer goes to the client. `whole`: buffered to its end (to be rewritten), then
 * sent with a Content-Length. `first-read`: a chunked answer complete in the read that
 * brought its head goes the same way, one write; otherwise it streams. `stream`: the head
 * at once, then each piece as it comes (sized answers keep the engine's Content-Length).
 * `none`: no body (HEAD, 204, 304).
 */
type Delivery = 'whole' | 'first-read' | 'stream' | 'none';

function deliveryOf(head: ResponseHead, rewrite: boolean): Delivery {
  if (rewrite && head.status >= 200 && head.status < 300) return 'whole';
  switch (head.framing.kind) {
    case 'empty':
      return 'none';
    case 'chunked':
      return 'first-read';
    case 'sized':
    case 'until-close':
      return 'stream';
    default: {
      const unknown: never = head.framing;
      throw new Error(`unknown framing ${JSON.stringify(unknown)}`);
    }
  }
}

/** What every attempt of one forwarded call shares. */
interface Call {
  res: ServerResponse;
  engine: EngineClient;
  name: string;
  method: string;
  requestBytes: string;
  opts: RawForwardOptions;
  resolve: (status: number) => void;
}

/**
 * Sends the bodiless call `req` to the engine at `path` over a pooled connection and
 * answers the client; resolves with the engine's status when the answer is done (500 when
 * the engine could not be reached). A GET or HEAD that an idle connection fails before any
 * byte of answer is retried once on a new connection: the engine may have closed it.
 */
export function forwardRaw(req: IncomingMessage, res: ServerResponse, engine: EngineClient, name: string, path: string, opts: RawForwardOptions = {}): Promise<number> {
  const method = req.method ?? 'GET';
  return new Promise((resolve) => {
    const call: Call = { res, engine, name, method, requestBytes: requestHead(method, path, engine.addr, req.rawHeaders), opts, resolve };
    new Attempt(call, engine.sockets.take(), method === 'GET' || method === 'HEAD').start();
  });
}

/** One try of a call on one connection: reads the engine's answer and relays it. */
class Attempt implements ConnectionUser {
  /** Bytes of an incomplete head. */
  private pending: Buffer | undefined;
  private head: ResponseHead | undefined;
  private decoder: BodyDecoder | undefined;
  private delivery: Delivery = 'none';
  private readonly held: Buffer[] = [];
  private received = false;
  private over = false;
  private readonly reused: boolean;

  constructor(
    private readonly call: Call,
    private readonly conn: PooledConnection,
    private readonly mayRetry: boolean,
  ) {
    this.reused = conn.reused;
  }

  start(): void {
    this.conn.use(this);
    this.call.res.on('close', this.onClientClose);
    // Header values arrive as latin1 text, one character per byte: they leave as such.
    this.conn.socket.write(this.call.requestBytes, 'latin1');
  }

  data(chunk: Buffer): void {
    this.received = true;
    if (this.head !== undefined && this.decoder !== undefined) {
      this.onBody(this.head, this.decoder, chunk, false);
      return;
    }
    let buf = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
    for (;;) {
      let parsed: ResponseHead | undefined;
      try {
        parsed = parseResponseHead(buf, this.call.method);
      } catch (err) {
        this.failed(err as Error);
        return;
      }
      if (parsed === undefined) {
        this.pending = buf;
        return;
      }
      buf = buf.subarray(parsed.size);
      // 100 Continue, 103 Early Hints: the answer follows. 101 is for hijacked calls only.
      if (parsed.status < 200) {
        if (parsed.status === 101) {
          this.failed(new HttpParseError('the engine switched protocols on a plain call'));
          return;
        }
        continue;
      }
      this.pending = undefined;
      const h = parsed;
      const d = bodyDecoder(h.framing);
      this.head = h;
      this.decoder = d;
      this.call.opts.onStatus?.(h.status);
      this.delivery = deliveryOf(h, this.call.opts.rewrite !== undefined);
      if (this.delivery === 'stream') this.startStreaming(h);
      if (!this.over) this.onBody(h, d, buf, true);
      return;
    }
  }

  end(): void {
    if (this.head !== undefined && this.head.framing.kind === 'until-close') this.completed(this.head, false);
    else this.failed(new Error(this.head === undefined ? 'the engine closed the connection without answering' : 'the engine closed the connection mid-answer'));
  }

  error(err: Error): void {
    this.failed(err);
  }

  close(): void {
    this.failed(new Error('the connection to the engine closed'));
  }

  /** The client went away (for instance `docker logs -f` interrupted): stop the engine call too. */
  private readonly onClientClose = (): void => {
    if (this.over) return;
    this.finish(false);
    this.call.resolve(this.head?.status ?? 500);
  };

  private readonly onDrain = (): void => {
    this.conn.socket.resume();
  };

  /** Ends this attempt; the connection goes back to the pool only if it is reusable. */
  private finish(reusable: boolean): void {
    this.over = true;
    this.call.res.off('close', this.onClientClose);
    this.call.res.off('drain', this.onDrain);
    this.conn.release(reusable);
  }

  private failed(err: Error): void {
    if (this.over) return;
    this.finish(false);
    const { res, engine, name } = this.call;
    if (!this.received && this.reused && this.mayRetry) {
      new Attempt(this.call, engine.sockets.open(), false).start();
      return;
    }
    if (res.headersSent) {
      // The status line is gone: cut the client's connection so it sees an error, not a clean end.
      res.destroy();
    } else if (this.head === undefined) {
      sendError(res, new ApiError(500, `Cannot connect to the Docker engine ${name} (${engine.addr}): ${(engine.secure ? explainTlsError(err, engine.addr) : err).message}`));
    } else {
      sendError(res, new ApiError(500, `The Docker engine ${name} (${engine.addr}) broke off its answer: ${err.message}`));
    }
    this.call.resolve(this.head?.status ?? 500);
  }

  /**
   * Node refuses some bytes in header values that an engine could send: that answer is
   * broken, and the client gets a 500 saying so.
   */
  private relayHead(status: number, headers: string[]): boolean {
    const { res, engine, name } = this.call;
    try {
      res.writeHead(status, headers);
      return true;
    } catch (err) {
      if (!this.over) this.finish(false);
      sendError(res, new ApiError(500, `The Docker engine ${name} (${engine.addr}) sent a header Node cannot relay: ${(err as Error).message}`));
      this.call.resolve(status);
      return false;
    }
  }

  private startStreaming(h: ResponseHead): void {
    this.delivery = 'stream';
    if (!this.relayHead(h.status, answerHeaders(h, undefined))) return;
    // A streamed answer (logs -f, stats, wait) must show its status at once; a sized
    // one leaves with its first piece.
    if (h.framing.kind !== 'sized') this.call.res.flushHeaders();
    for (const piece of this.held.splice(0)) this.send(piece);
  }

  private send(piece: Buffer): void {
    const socket = this.conn.socket;
    if (!this.call.res.write(piece) && !socket.isPaused()) {
      socket.pause();
      this.call.res.once('drain', this.onDrain);
    }
  }

  private completed(h: ResponseHead, reusable: boolean): void {
    this.finish(reusable);
    const { res, engine, name, opts } = this.call;
    if (this.delivery === 'whole' || this.delivery === 'first-read') {
      let body = this.held.length === 1 ? (this.held[0] ?? Buffer.alloc(0)) : Buffer.concat(this.held);
      if (this.delivery === 'whole' && opts.rewrite !== undefined) {
        try {
          body = opts.rewrite(body);
        } catch (err) {
          sendError(res, new ApiError(500, `The answer of the Docker engine ${name} (${engine.addr}) could not be read: ${(err as Error).message}`));
          this.call.resolve(h.status);
          return;
        }
      }
      // The head and the body leave in one write.
      if (this.relayHead(h.status, answerHeaders(h, body.length))) res.end(body);
    } else if (this.delivery === 'none') {
      if (this.relayHead(h.status, answerHeaders(h, undefined))) res.end();
    } else {
      res.end();
    }
    this.call.resolve(h.status);
  }

  /** Body bytes of the answer whose head is `h`; `firstRead` when they came with the head. */
  private onBody(h: ResponseHead, d: BodyDecoder, buf: Buffer, firstRead: boolean): void {
    let progress;
    try {
      progress = d.push(buf);
    } catch (err) {
      this.failed(err as Error);
      return;
    }
    for (const piece of progress.data) {
      if (this.delivery === 'stream') this.send(piece);
      else this.held.push(piece);
      if (this.over) return;
    }
    if (progress.done) this.completed(h, progress.excess === 0 && h.keepAlive);
    else if (firstRead && this.delivery === 'first-read') this.startStreaming(h);
  }
}
