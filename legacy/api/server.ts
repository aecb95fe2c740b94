// The classic Swarm HTTP front: the Docker Engine API over the engine pool. A route
// table maps each call to a handler; hijacked calls (attach, exec start) go through the
// server's 'upgrade' event to a raw pipe. No client input can crash the manager: every
// handler's failure becomes a Docker-style `{"message"}` answer.
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ApiError, notFound, toApiError } from '../../src/docker/errors.js';
import { sendError } from '../../src/docker/http.js';
import { debugging, log } from '../../src/log.js';
import { forward, forwardUpgrade } from '../../src/docker/proxy.js';
import type { EngineClient } from '../../src/docker/engine-client.js';
import { enginePath, type ApiContext, type Call, type UpgradeCall } from './context.js';
import { containerCall, containerUpgrade, createContainer, createExec, execCall, execUpgrade, listContainers, pruneContainers } from './containers.js';
import { anyEngine, build, createImage, imageCall, imageEverywhere, listImages, loadImages, saveImages } from './images.js';
import { createNetwork, createVolume, listNetworks, listVolumes, networkCall, pruneNetworks, pruneVolumes, volumeCall } from './networks.js';
import { apiRange, compareApi, events, info, ping, systemDf, version } from './system.js';
import { ManagerResponse } from './response.js';
import { parseUrl } from './url.js';

type Handler = (call: Call) => Promise<void> | void;
type UpgradeHandler = (call: UpgradeCall) => Promise<void>;

interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
}

const seg = '([^/]+)';
// A container may be named "node/name", slash unescaped by the CLI: the reference is
// everything before the action suffix.
const containerRef = '(.+?)';
const containerAction = '(/(?:json|top|logs|changes|export|stats|resize|start|stop|restart|kill|update|rename|pause|unpause|attach(?:/ws)?|wait|archive))?';
const refusedSwarmMode = /^\/(swarm|nodes|services|tasks|secrets|configs)(\/|$)/;

function route(method: string, path: string, handler: Handler): Route {
  return { method, pattern: new RegExp(`^${path}$`), handler };
}

const routes: Route[] = [
  route('GET', '/_ping', ping),
  route('HEAD', '/_ping', ping),
  route('GET', '/version', version),
  route('GET', '/info', info),
  route('GET', '/events', events),
  route('GET', '/system/df', systemDf),
  route('POST', '/auth', (c) => anyEngine(c, '/auth')),
  route('GET', '/containers/json', listContainers),
  route('POST', '/containers/create', createContainer),
  route('POST', '/containers/prune', pruneContainers),
  route('POST', `/containers/${containerRef}/exec`, createExec),
  route('*', `/containers/${containerRef}${containerAction}`, containerCall),
  route('POST', '/commit', async (c) => {
    const ref = c.query.get('container') ?? '';
    const found = await c.ctx.pool.resolveContainer(ref);
    c.query.set('container', found.id);
    await containerCallOn(c, found.engine.addr, '/commit');
  }),
  route('*', `/exec/${seg}(/.*)?`, execCall),
  route('GET', '/images/json', listImages),
  route('POST', '/images/create', createImage),
  route('POST', '/images/load', loadImages),
  route('GET', '/images/get', saveImages),
  route('GET', '/images/search', (c) => anyEngine(c, '/images/search')),
  route('POST', '/images/prune', async (c) => {
    const engines = c.ctx.pool.healthy();
    const results = await Promise.all(engines.map((e) => e.client.json<{ ImagesDeleted: unknown[] | null; SpaceReclaimed: number }>('POST', enginePath(c, '/images/prune'))));
    await Promise.all(engines.map((e) => e.refreshImages().catch(() => undefined)));
    c.res.writeHead(200, { 'Content-Type': 'application/json' });
    c.res.end(JSON.stringify({ ImagesDeleted: results.flatMap((r) => r.ImagesDeleted ?? []), SpaceReclaimed: results.reduce((n, r) => n + r.SpaceReclaimed, 0) }));
  }),
  route('POST', '/build', build),
  route('POST', `/images/(.+)(/tag)`, imageEverywhere),
  route('DELETE', `/images/(.+)()`, imageEverywhere),
  route('GET', `/images/(.+)(/json|/history|/get)`, imageCall),
  route('POST', `/images/(.+)(/push)`, imageCall),
  route('GET', '/networks', listNetworks),
  route('POST', '/networks/create', createNetwork),
  route('POST', '/networks/prune', pruneNetworks),
  route('*', `/networks/(.+?)(/connect|/disconnect)?`, networkCall),
  route('GET', '/volumes', listVolumes),
  route('POST', '/volumes/create', createVolume),
  route('POST', '/volumes/prune', pruneVolumes),
  route('*', `/volumes/(.+)`, volumeCall),
];

const upgradeRoutes: Array<{ pattern: RegExp; handler: UpgradeHandler }> = [
  { pattern: new RegExp(`^/containers/${containerRef}(/attach(?:/ws)?)$`), handler: containerUpgrade },
  { pattern: new RegExp(`^/exec/${seg}(/start)$`), handler: execUpgrade },
];

async function containerCallOn(c: Call, addr: string, path: string): Promise<void> {
  const engine = c.ctx.pool.engines.get(addr);
  if (!engine) throw notFound(`engine ${addr} left the cluster`);
  await forward(c.req, c.res, engine.client, engine.name, enginePath(c, path));
  void engine.refreshImages().catch(() => undefined);
}

/** What a replica answers itself: the rest goes to the primary, as classic's replicas did. */
const replicaLocal = new Set(['/_ping', '/version', '/info']);

function servedByPrimary(ctx: ApiContext, path: string): boolean {
  return ctx.manager.role === 'replica' && !replicaLocal.has(path);
}

function primaryOf(ctx: ApiContext): { addr: string; client: EngineClient } {
  const addr = ctx.manager.primary;
  if (!addr || !ctx.primaryClient) throw new ApiError(503, 'this manager is a replica and no primary manager is elected yet; retry in a few seconds');
  return { addr, client: ctx.primaryClient(addr) };
}

/** Docker's answers to a client whose API version the cluster does not speak. */
function checkVersion(ctx: ApiContext, version: string | undefined): void {
  if (!version) return;
  const { max, min } = apiRange(ctx);
  if (compareApi(version, max) > 0) throw new ApiError(400, `client version ${version} is too new. Maximum supported API version is ${max}`);
  if (compareApi(version, min) < 0) throw new ApiError(400, `client version ${version} is too old. Minimum supported API version is ${min}, please upgrade your client to a newer version`);
}

function refusal(path: string): ApiError {
  if (refusedSwarmMode.test(path)) {
    return notFound(`${path.split('/')[1] ?? path} is a swarm-mode endpoint: classic Swarm (swarm manage) does not serve it. Use swarmd and 'docker swarm init' for swarm mode.`);
  }
  if (path.startsWith('/plugins')) return notFound('plugins are managed on each engine: classic Swarm does not serve /plugins');
  if (path === '/session' || path === '/grpc') return notFound('BuildKit sessions are not supported through classic Swarm: build with DOCKER_BUILDKIT=0');
  return notFound('page not found');
}

export interface ServerTls {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  /** --tlsverify: a client must present a certificate signed by the CA. */
  verify: boolean;
}

export function createApiServer(ctx: ApiContext, tls?: ServerTls): http.Server {
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    void handle(ctx, req, res);
  };
  const base = { keepAlive: true, requestTimeout: 0, headersTimeout: 60_000, ServerResponse: ManagerResponse };
  const server: http.Server = tls
    ? // allowHalfOpen: a hijacked client (docker run/attach/exec) half-closes its side when
      // it has no more stdin and keeps reading the output. http.Server's sockets allow
      // that by default; a TLS server's do not, and would end the output at once.
      https.createServer({ ...base, allowHalfOpen: true, cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: tls.verify, rejectUnauthorized: tls.verify }, onRequest)
    : http.createServer(base, onRequest);
  server.keepAliveTimeout = 60_000;
  if (tls) answerPlainHttp(server);
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    void handleUpgrade(ctx, req, socket, head);
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  });
  return server;
}

/** A TLS record starts with its content type; a ClientHello's is 22 (handshake). */
const tlsHandshakeRecord = 0x16;

/**
 * A plain-HTTP client on the TLS port gets what Go's servers (dockerd, classic Swarm)
 * answer: a 400 that says why. Without this the TLS layer just drops the connection and
 * the docker CLI reports a bare "EOF". The first byte is peeked and put back before the
 * TLS server's own connection listener sees the socket.
 */
function answerPlainHttp(server: http.Server): void {
  const tlsListeners = server.listeners('connection');
  server.removeAllListeners('connection');
  server.on('connection', (socket: net.Socket) => {
    socket.setTimeout(60_000, () => socket.destroy());
    socket.once('readable', () => {
      socket.setTimeout(0);
      const first: unknown = socket.read(1);
      if (!Buffer.isBuffer(first)) {
        socket.destroy();
        return;
      }
      socket.unshift(first);
      if (first[0] !== tlsHandshakeRecord) {
        socket.on('error', () => socket.destroy());
        socket.end('HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n');
        return;
      }
      for (const listener of tlsListeners) Reflect.apply(listener, server, [socket]);
    });
  });
}

async function handle(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = process.hrtime.bigint();
  if (ctx.manager.cors) {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Allow-Headers', 'Origin, X-Requested-With, Content-Type, Accept, X-Registry-Auth');
    res.setHeader('Access-Control-Allow-Methods', 'HEAD, GET, POST, DELETE, PUT, OPTIONS');
  }
  try {
    const { path, version, query } = parseUrl(req.url ?? '/');
    checkVersion(ctx, version);
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS' && ctx.manager.cors) {
      res.writeHead(200);
      res.end();
      return;
    }
    if (servedByPrimary(ctx, path)) {
      const { addr, client } = primaryOf(ctx);
      await forward(req, res, client, `primary manager ${addr}`, req.url ?? '/');
      return;
    }
    for (const r of routes) {
      if (r.method !== '*' && r.method !== method) continue;
      const m = r.pattern.exec(path);
      if (!m) continue;
      const params = m.slice(1).map((p) => p ?? '');
      await r.handler({ req, res, ctx, params, query, version });
      return;
    }
    throw refusal(path);
  } catch (err) {
    const apiErr = toApiError(err);
    if (apiErr.status >= 500) log.error('request failed', { method: req.method, url: req.url, error: apiErr.message });
    sendError(res, apiErr);
  } finally {
    if (debugging()) log.debug('request', { method: req.method, url: req.url, ms: Number(process.hrtime.bigint() - started) / 1e6 });
  }
}

async function handleUpgrade(ctx: ApiContext, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  socket.on('error', () => socket.destroy());
  try {
    const { path, version, query } = parseUrl(req.url ?? '/');
    checkVersion(ctx, version);
    if (servedByPrimary(ctx, path)) {
      const { addr, client } = primaryOf(ctx);
      forwardUpgrade(req, socket, head, client, `primary manager ${addr}`, req.url ?? '/');
      return;
    }
    for (const r of upgradeRoutes) {
      const m = r.pattern.exec(path);
      if (!m) continue;
      await r.handler({ req, socket, head, ctx, params: m.slice(1).map((p) => p ?? ''), query, version });
      return;
    }
    throw refusal(path);
  } catch (err) {
    const e = toApiError(err);
    const body = JSON.stringify({ message: e.message });
    socket.end(`HTTP/1.1 ${e.status} ${http.STATUS_CODES[e.status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
}
