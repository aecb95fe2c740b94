// Forwarding a client's Docker API call to one engine: plain HTTP calls (streamed both
// ways, never buffered unless asked) and hijacked connections (attach, exec start, the
// websocket attach), which become a raw byte pipe after the engine's 101 answer.
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { explainTlsError, type EngineClient } from './engine-client.js';
import { hopByHopHeaders, sendError } from './http.js';
import { ApiError } from './errors.js';
import { forwardRaw, rawForwardable } from './raw-forward.js';

function forwardHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !hopByHopHeaders.has(k)) out[k] = v;
  return out;
}

export interface ForwardOptions {
  /** The body, when the caller already read it (it is then sent instead of the client's stream). */
  body?: Buffer;
  /** Buffers a 2xx response and lets the caller rewrite it (for instance to add `Node`). */
  rewrite?: (body: Buffer) => Buffer;
  /** Called with the engine's status once the engine has answered. */
  onStatus?: (status: number) => void;
}

/**
 * Sends `req` to the engine at `path` and streams the answer back; resolves with the
 * engine's status when the answer is done. A bodiless call goes over a pooled raw
 * connection (raw-forward.ts); one with a body through Node's HTTP client, which streams it.
 */
export function forward(req: IncomingMessage, res: ServerResponse, engine: EngineClient, name: string, path: string, opts: ForwardOptions = {}): Promise<number> {
  if (opts.body === undefined && rawForwardable(req, path)) return forwardRaw(req, res, engine, name, path, opts);
  return new Promise((resolve) => {
    const headers = forwardHeaders(req.headers);
    if (opts.body !== undefined) {
      headers['content-length'] = opts.body.length;
    }
    const transport = engine.secure ? https : http;
    const upstream = transport.request(engine.requestOptions(req.method ?? 'GET', path, headers), (up) => {
      const status = up.statusCode ?? 502;
      opts.onStatus?.(status);
      const outHeaders = forwardHeaders(up.headers);
      if (opts.rewrite && status >= 200 && status < 300) {
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () => {
          const body = opts.rewrite ? opts.rewrite(Buffer.concat(chunks)) : Buffer.concat(chunks);
          outHeaders['content-length'] = body.length;
          res.writeHead(status, outHeaders);
          res.end(body);
          resolve(status);
        });
        up.on('error', () => {
          res.destroy();
          resolve(502);
        });
        return;
      }
      res.writeHead(status, outHeaders);
      // A streamed answer (logs -f, events, wait, attach-less hijack) must show its status
      // at once; a sized one goes out with its body in one write.
      if (up.headers['content-length'] === undefined) res.flushHeaders();
      up.pipe(res);
      // An engine that dies mid-stream (logs -f, events, wait) must end the client's
      // stream with an error, not a clean end: cut the connection.
      up.on('aborted', () => res.destroy());
      up.on('error', () => res.destroy());
      up.on('end', () => resolve(status));
      res.on('close', () => {
        if (!up.complete) up.destroy();
        resolve(status);
      });
    });
    upstream.on('error', (err) => {
      if (!res.headersSent) sendError(res, new ApiError(500, `Cannot connect to the Docker engine ${name} (${engine.addr}): ${(engine.secure ? explainTlsError(err, engine.addr) : err).message}`));
      else res.destroy();
      resolve(500);
    });
    // The client went away: stop the engine call too (for instance `docker logs -f` interrupted).
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    if (opts.body !== undefined) upstream.end(opts.body);
    else req.pipe(upstream);
  });
}

/**
 * Hijacked calls: writes the client's request to the engine verbatim (path rewritten),
 * then pipes bytes both ways until either side closes.
 */
export function forwardUpgrade(req: IncomingMessage, client: Duplex, head: Buffer, engine: EngineClient, name: string, path: string): void {
  const onError = (err: Error): void => {
    const body = JSON.stringify({ message: `Cannot connect to the Docker engine ${name} (${engine.addr}): ${(engine.secure ? explainTlsError(err, engine.addr) : err).message}` });
    if (client.writable) client.end(`HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  };
  const upstream: net.Socket = engine.connect();
  let connected = false;
  upstream.once(engine.secure ? 'secureConnect' : 'connect', () => {
    connected = true;
    upstream.setNoDelay(true);
    let head1 = `${req.method ?? 'POST'} ${path} HTTP/1.1\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const key = req.rawHeaders[i] ?? '';
      if (key.toLowerCase() === 'host') continue;
      head1 += `${key}: ${req.rawHeaders[i + 1] ?? ''}\r\n`;
    }
    head1 += `Host: ${engine.addr}\r\n\r\n`;
    upstream.write(head1);
    if (head.length > 0) upstream.write(head);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  upstream.on('error', (err) => {
    if (!connected) onError(err);
    else client.destroy();
  });
  client.on('error', () => upstream.destroy());
  // The engine ended cleanly: pipe() has called client.end() (so client.writable is
  // already false), and output may still be queued in the client's socket, encrypted and
  // flushed asynchronously under TLS: destroying it now drops the tail of the output. The
  // end flushes it; the client then closes its side. A client that never does is closed
  // after a grace period.
  upstream.on('close', () => {
    if (!upstream.readableEnded) {
      client.destroy();
      return;
    }
    if (!client.writableEnded) client.end();
    setTimeout(() => client.destroy(), 5000).unref();
  });
  client.on('close', () => upstream.destroy());
}
