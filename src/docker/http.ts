// Small HTTP helpers shared by every server that speaks the Docker Engine API.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, badRequest } from './errors.js';

/** Headers about one connection, not the message: a proxy neither forwards nor relays them. */
export const hopByHopHeaders: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'te', 'trailer']);

/** Largest JSON body we accept for API calls that carry JSON (container create, network create...). */
export const maxJsonBody = 16 * 1024 * 1024;

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendError(res: ServerResponse, err: ApiError): void {
  if (res.headersSent) {
    // The status line is gone: all we can do is cut the stream so the client sees an error.
    res.destroy(err);
    return;
  }
  sendJson(res, err.status, { message: err.message });
}

export async function readBody(req: IncomingMessage, limit = maxJsonBody): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limit) throw new ApiError(413, `request body too large: ${declared} bytes (limit ${limit})`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) throw new ApiError(413, `request body too large (limit ${limit} bytes)`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** Parses a JSON request body; an empty body is `fallback`. Malformed JSON is a 400 naming the problem. */
export function parseJsonBody(buf: Buffer, fallback: JsonObject | null = null): JsonObject {
  const text = buf.toString('utf8').trim();
  if (text === '') {
    if (fallback) return fallback;
    throw badRequest('request body is empty: expected a JSON object');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw badRequest(`malformed JSON in request body: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest('request body must be a JSON object');
  }
  return value as JsonObject;
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Docker's boolean query parameters: 1/true/True are true, absent, 0, false are false. */
export function queryBool(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  return v !== null && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

/** Docker's `filters` query parameter: `{"key": ["v1"]}` or the older `{"key": {"v1": true}}`. */
export function parseFilters(q: URLSearchParams): Map<string, string[]> {
  const raw = q.get('filters');
  const out = new Map<string, string[]>();
  if (!raw) return out;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw badRequest(`invalid filter: ${(err as Error).message}`);
  }
  if (!isObject(value)) throw badRequest('invalid filter: expected a JSON object');
  for (const [key, v] of Object.entries(value)) {
    if (Array.isArray(v)) out.set(key, v.map(String));
    else if (isObject(v)) out.set(key, Object.keys(v).filter((k) => v[k] === true));
    else throw badRequest(`invalid filter '${key}'`);
  }
  return out;
}
