// A client for one Docker engine's HTTP API: keep-alive connections, JSON calls that turn
// engine errors into ApiErrors carrying the engine's own message, and raw streams.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { IncomingMessage } from 'node:http';
import { ApiError } from './errors.js';
import { createSocketPool, type SocketPool } from './socket-pool.js';

export interface EngineTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** false for `--tls` without `--tlsverify`. */
  verify: boolean;
}

export interface EngineClientOptions {
  /** Milliseconds a JSON call may take before it fails. */
  timeoutMs: number;
  tls?: EngineTls;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface EngineClient {
  /** "ip:port" */
  readonly addr: string;
  readonly host: string;
  readonly port: number;
  readonly secure: boolean;
  readonly agent: http.Agent;
  /** A new raw connection to the engine (TLS when the engine speaks it), for hijacked calls. */
  connect(): net.Socket;
  /** Idle keep-alive raw connections, for the raw forwarder. */
  readonly sockets: SocketPool;
  /** Options for http(s).request aimed at this engine (host, port, agent, TLS). */
  requestOptions(method: string, path: string, headers?: http.OutgoingHttpHeaders): http.RequestOptions;
  request(method: string, path: string, body?: Buffer | string, headers?: http.OutgoingHttpHeaders): Promise<RawResponse>;
  json<T>(method: string, path: string, body?: unknown): Promise<T>;
  /** Opens a streaming response (events, pull progress); rejects on a non-2xx status with the engine's message. */
  stream(method: string, path: string, signal?: AbortSignal, body?: Buffer, headers?: http.OutgoingHttpHeaders): Promise<IncomingMessage>;
  close(): void;
}

export function splitHostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  if (i <= 0) throw new Error(`engine address '${addr}' must be host:port`);
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(addr.slice(i + 1));
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`engine address '${addr}' has an invalid port`);
  return { host, port };
}

/** Extracts the message from an engine error body (`{"message": ...}`), or the raw text. */
export function engineMessage(body: Buffer): string {
  const text = body.toString('utf8').trim();
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && 'message' in parsed && typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not JSON: the text itself is the message
  }
  return text;
}

/** OpenSSL's verdicts on a peer's certificate chain, as Node names them. */
const certificateRejected = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_PURPOSE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * Node reports TLS failures in OpenSSL's words ("write EPROTO 80EC...:error:0A00010B:SSL
 * routines:ssl3_get_record:wrong version number:../deps/openssl/...c:350:\n"). Says
 * instead which side refused what and which flag to look at; other errors pass through.
 */
export function explainTlsError(err: Error, addr: string): Error {
  const code = 'code' in err && typeof err.code === 'string' ? err.code : '';
  const reason = 'reason' in err && typeof err.reason === 'string' ? err.reason : undefined;
  const detail = (reason ?? /SSL routines:[^:]*:([^:]+)/.exec(err.message)?.[1] ?? err.message).trim();
  let why: string | undefined;
  if (code === 'EPROTO' && /wrong version number|packet length too long|http request/i.test(err.message)) {
    why = `the engine ${addr} does not speak TLS: it answered in plain text. Start the engine with --tlsverify (TLS engines conventionally listen on port 2376), or the manager without --tls/--tlsverify`;
  } else if (/^ERR_SSL_(SSLV3_|TLSV1_|TLSV13_)?ALERT_(BAD_CERTIFICATE|CERTIFICATE_REQUIRED|UNKNOWN_CA|CERTIFICATE_UNKNOWN|HANDSHAKE_FAILURE)$/.test(code)) {
    why = `the engine ${addr} refused the manager's certificate: --tlscert must be signed by the CA the engine trusts (its --tlscacert)`;
  } else if (certificateRejected.has(code)) {
    why = `the certificate of the engine ${addr} does not verify against --tlscacert`;
  }
  return why === undefined ? err : new Error(`TLS handshake failed: ${why} (${detail})`, { cause: err });
}

export function createEngineClient(addr: string, opts: EngineClientOptions): EngineClient {
  const { host, port } = splitHostPort(addr);
  const secure = opts.tls !== undefined;
  const agent = secure
    ? new https.Agent({
        keepAlive: true,
        maxSockets: 256,
        ca: opts.tls?.ca,
        cert: opts.tls?.cert,
        key: opts.tls?.key,
        rejectUnauthorized: opts.tls?.verify ?? true,
      })
    : new http.Agent({ keepAlive: true, maxSockets: 256 });
  const transport = secure ? https : http;
  const tlsOptions: tls.ConnectionOptions = {
    host,
    port,
    ca: opts.tls?.ca,
    cert: opts.tls?.cert,
    key: opts.tls?.key,
    rejectUnauthorized: opts.tls?.verify ?? true,
    servername: net.isIP(host) ? undefined : host,
  };
  const connect = (): net.Socket => (secure ? tls.connect(tlsOptions) : net.connect({ host, port }));
  const sockets = createSocketPool(connect);

  function requestOptions(method: string, path: string, headers: http.OutgoingHttpHeaders = {}): http.RequestOptions {
    return { host, port, method, path, agent, headers };
  }

  function request(method: string, path: string, body?: Buffer | string, headers: http.OutgoingHttpHeaders = {}): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      const h: http.OutgoingHttpHeaders = { ...headers };
      if (body !== undefined) {
        h['Content-Length'] = Buffer.byteLength(body);
        h['Content-Type'] ??= 'application/json';
      }
      const req = transport.request(requestOptions(method, path, h), (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.setTimeout(opts.timeoutMs, () => req.destroy(new Error(`engine ${addr} did not answer ${method} ${path} within ${opts.timeoutMs} ms`)));
      req.on('error', (err) => reject(secure ? explainTlsError(err, addr) : err));
      req.end(body);
    });
  }

  async function json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await request(method, path, body === undefined ? undefined : JSON.stringify(body));
    if (res.status < 200 || res.status >= 300) {
      const message = engineMessage(res.body);
      // Go's answer to plain HTTP on a TLS listener (dockerd --tlsverify): say what to do.
      if (!secure && res.status === 400 && message.startsWith('Client sent an HTTP request to an HTTPS server')) {
        throw new ApiError(400, `the engine ${addr} speaks only TLS (${message.trim()}): start the manager with --tlsverify --tlscacert --tlscert --tlskey`);
      }
      throw new ApiError(res.status, message);
    }
    if (res.body.length === 0) return undefined as T;
    return JSON.parse(res.body.toString('utf8')) as T;
  }

  function stream(method: string, path: string, signal?: AbortSignal, body?: Buffer, headers: http.OutgoingHttpHeaders = {}): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const h: http.OutgoingHttpHeaders = { ...headers };
      if (body !== undefined) h['Content-Length'] = body.length;
      const req = transport.request({ ...requestOptions(method, path, h), signal }, (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          resolve(res);
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => reject(new ApiError(status, engineMessage(Buffer.concat(chunks)))));
        res.on('error', reject);
      });
      req.on('error', (err) => reject(secure ? explainTlsError(err, addr) : err));
      req.end(body);
    });
  }

  return {
    addr,
    host,
    port,
    secure,
    agent,
    connect,
    sockets,
    requestOptions,
    request,
    json,
    stream,
    close: () => {
      agent.destroy();
      sockets.close();
    },
  };
}

/** Splits a stream of concatenated JSON objects (Docker's events and progress streams) into values. */
export async function* jsonStream(source: AsyncIterable<Buffer | string>): AsyncGenerator<unknown> {
  let buf = '';
  for await (const chunk of source) {
    buf += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line !== '') yield JSON.parse(line) as unknown;
    }
  }
  const rest = buf.trim();
  if (rest !== '') yield JSON.parse(rest) as unknown;
}
