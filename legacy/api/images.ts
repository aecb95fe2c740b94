// Images: the list merged across engines; pull, import and load on every healthy engine
// (so the scheduler may place a container anywhere); image-scoped calls on the engines
// that hold the image; build placed on one engine.
import type { ImageSummary } from '../../src/docker/types.js';
import { ApiError, noSuchImage } from '../../src/docker/errors.js';
import { readBody, sendJson } from '../../src/docker/http.js';
import { forward } from '../../src/docker/proxy.js';
import { engineMessage } from '../../src/docker/engine-client.js';
import type { Engine } from '../cluster/engine.js';
import { schedNodeOf } from '../cluster/sched-view.js';
import { enginePath, type Call } from './context.js';

/** Largest body we copy to every engine (docker load / import). */
const maxImageBody = 4 * 1024 * 1024 * 1024;

function normaliseRef(ref: string): string[] {
  const r = ref.replace(/^docker\.io\/(library\/)?/, '');
  const lastSlash = r.lastIndexOf('/');
  const hasTag = r.lastIndexOf(':') > lastSlash;
  return r.includes('@') || hasTag ? [r] : [r, `${r}:latest`];
}

export function imageMatches(img: ImageSummary, ref: string): boolean {
  const id = img.Id.replace(/^sha256:/, '');
  const bare = ref.replace(/^sha256:/, '');
  if (/^[0-9a-f]{4,64}$/.test(bare) && id.startsWith(bare)) return true;
  const forms = normaliseRef(ref);
  return (img.RepoTags ?? []).some((t) => forms.includes(t)) || (img.RepoDigests ?? []).some((d) => forms.includes(d));
}

function enginesWithImage(call: Call, ref: string): Engine[] {
  return call.ctx.pool.healthy().filter((e) => e.images.some((i) => imageMatches(i, ref)));
}

export async function listImages(call: Call): Promise<void> {
  const engines = call.ctx.pool.healthy();
  // The cache holds the default listing; anything else (filters, all layers, digests) is asked of the engines.
  const simple = [...call.query.keys()].every((k) => k === 'all' && call.query.get(k) !== '1' && call.query.get(k) !== 'true');
  const lists = simple
    ? engines.map((e) => e.images)
    : await Promise.all(engines.map((e) => e.client.json<ImageSummary[]>('GET', enginePath(call, '/images/json'))));
  const merged = new Map<string, ImageSummary>();
  for (const list of lists) {
    for (const img of list) {
      const seen = merged.get(img.Id);
      if (!seen) {
        merged.set(img.Id, { ...img, RepoTags: [...(img.RepoTags ?? [])], RepoDigests: [...(img.RepoDigests ?? [])] });
        continue;
      }
      for (const t of img.RepoTags ?? []) if (!seen.RepoTags?.includes(t)) seen.RepoTags?.push(t);
      for (const d of img.RepoDigests ?? []) if (!seen.RepoDigests?.includes(d)) seen.RepoDigests?.push(d);
    }
  }
  sendJson(call.res, 200, [...merged.values()].sort((a, b) => b.Created - a.Created));
}

/**
 * Sends one call to several engines and streams their JSON progress messages to the
 * client as one stream, each message naming its node. The client stops at the first
 * error message, so an engine's failure is reported as status text unless every engine failed.
 */
async function fanOutProgress(call: Call, engines: Engine[], path: string, body?: Buffer): Promise<void> {
  if (engines.length === 0) throw new ApiError(500, 'No healthy node available in the cluster');
  const { res } = call;
  res.writeHead(200, { 'Content-Type': 'application/json' });
  const write = (msg: Record<string, unknown>): void => {
    res.write(JSON.stringify(msg) + '\r\n');
  };
  const headers: Record<string, string> = {};
  const auth = call.req.headers['x-registry-auth'];
  if (typeof auth === 'string') headers['X-Registry-Auth'] = auth;
  if (body) headers['Content-Type'] = String(call.req.headers['content-type'] ?? 'application/x-tar');
  const failures: string[] = [];
  await Promise.all(
    engines.map(async (engine) => {
      try {
        const stream = await engine.client.stream('POST', path, undefined, body, headers);
        let buf = '';
        let failed = '';
        for await (const chunk of stream) {
          buf += (chunk as Buffer).toString('utf8');
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line === '') continue;
            const msg = JSON.parse(line) as Record<string, unknown>;
            if (msg.error || msg.errorDetail) {
              failed = String(msg.error ?? JSON.stringify(msg.errorDetail));
              continue;
            }
            if (typeof msg.id === 'string') msg.id = `${engine.name}: ${msg.id}`;
            else if (typeof msg.status === 'string') msg.status = `${engine.name}: ${msg.status}`;
            write(msg);
          }
        }
        if (failed) throw new Error(failed);
        void engine.refreshImages().catch(() => undefined);
      } catch (err) {
        const message = err instanceof ApiError ? err.message : (err as Error).message;
        failures.push(`${engine.name}: ${message}`);
        write({ status: `${engine.name}: ${message}` });
      }
    }),
  );
  await Promise.all(engines.map((e) => e.refreshImages().catch(() => undefined)));
  if (failures.length === engines.length) {
    const error = failures.join('; ');
    write({ errorDetail: { message: error }, error });
  }
  res.end();
}

/** POST /images/create: pull (fromImage) or import (fromSrc) on every healthy engine. */
export async function createImage(call: Call): Promise<void> {
  const engines = call.ctx.pool.healthy();
  const fromSrc = call.query.get('fromSrc');
  const body = fromSrc === '-' ? await readBody(call.req, maxImageBody) : undefined;
  await fanOutProgress(call, engines, enginePath(call, '/images/create'), body);
}

/** POST /images/load: the archive loaded on every healthy engine. */
export async function loadImages(call: Call): Promise<void> {
  const body = await readBody(call.req, maxImageBody);
  const engines = call.ctx.pool.healthy();
  const q = new URLSearchParams(call.query);
  await fanOutProgress(call, engines, enginePath(call, '/images/load', q), body);
}

/** Image-scoped calls answered by one engine that holds the image (inspect, history, push, get). */
export async function imageCall(call: Call): Promise<void> {
  const [ref = '', rest = ''] = call.params;
  const name = decodeURIComponent(ref);
  const engine = enginesWithImage(call, name)[0] ?? (rest === '/push' ? undefined : call.ctx.pool.healthy()[0]);
  if (!engine) throw noSuchImage(name);
  await forward(call.req, call.res, engine.client, engine.name, enginePath(call, `/images/${ref}${rest}`));
}

/** Calls that change the image on every engine that holds it: tag, delete. */
export async function imageEverywhere(call: Call): Promise<void> {
  const [ref = '', rest = ''] = call.params;
  const name = decodeURIComponent(ref);
  const engines = enginesWithImage(call, name);
  if (engines.length === 0) throw noSuchImage(name);
  const method = call.req.method ?? 'POST';
  const results = await Promise.all(engines.map((e) => e.client.request(method, enginePath(call, `/images/${ref}${rest}`))));
  await Promise.all(engines.map((e) => e.refreshImages().catch(() => undefined)));
  const failed = results.find((r) => r.status >= 300);
  if (failed) throw new ApiError(failed.status, engineMessage(failed.body));
  if (method === 'DELETE') {
    const merged: unknown[] = [];
    for (const r of results) merged.push(...(JSON.parse(r.body.toString('utf8')) as unknown[]));
    sendJson(call.res, 200, merged);
    return;
  }
  call.res.writeHead(results[0]?.status ?? 201);
  call.res.end();
}

/** GET /images/get?names=...: from one engine that holds every named image. */
export async function saveImages(call: Call): Promise<void> {
  const names = call.query.getAll('names');
  const engine = call.ctx.pool.healthy().find((e) => names.every((n) => e.images.some((i) => imageMatches(i, n))));
  if (!engine) throw noSuchImage(names.join(', '));
  await forward(call.req, call.res, engine.client, engine.name, enginePath(call, '/images/get'));
}

/** POST /build: placed on one engine by the strategy (constraints may come as build args, as classic allowed). */
export async function build(call: Call): Promise<void> {
  const buildArgs = (() => {
    try {
      return JSON.parse(call.query.get('buildargs') ?? '{}') as Record<string, string>;
    } catch {
      return {};
    }
  })();
  const env = Object.entries(buildArgs).filter(([k]) => k.startsWith('constraint:') || k.startsWith('affinity:')).map(([k, v]) => `${k}${v}`);
  const result = call.ctx.scheduler.select({ config: { Image: '', Env: env } }, call.ctx.pool.known().map(schedNodeOf));
  if (!result.ok) throw new ApiError(500, result.message);
  const engine = call.ctx.pool.engines.get(result.nodes[0]?.addr ?? '');
  if (!engine) throw new ApiError(500, 'No healthy node available in the cluster');
  await forward(call.req, call.res, engine.client, engine.name, enginePath(call, '/build'));
  await engine.refreshImages().catch(() => undefined);
}

/** Answered by any healthy engine (search, auth). */
export async function anyEngine(call: Call, path: string): Promise<void> {
  const engine = call.ctx.pool.healthy()[0];
  if (!engine) throw new ApiError(500, 'No healthy node available in the cluster');
  await forward(call.req, call.res, engine.client, engine.name, enginePath(call, path));
}
