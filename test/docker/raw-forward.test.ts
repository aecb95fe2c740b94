// The forwarder against a scripted engine (a raw TCP server that answers exactly the bytes
// each test asks for), behind a real Node HTTP server, called by Node's HTTP client.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { createEngineClient, type EngineClient } from '../../src/docker/engine-client.js';
import { forward, type ForwardOptions } from '../../src/docker/proxy.js';

interface EngineRequest {
  method: string;
  target: string;
  headers: string[];
  body: string;
  /** Which connection (1, 2, ...) carried it. */
  connection: number;
}

type Script = (r: EngineRequest, socket: net.Socket) => void;

let engineServer: net.Server;
let front: http.Server;
let engine: EngineClient;
let frontPort = 0;
let connections = 0;
const seen: EngineRequest[] = [];
const scripts = new Map<string, Script>();
const frontOptions = new Map<string, ForwardOptions>();
const frontStatuses: number[] = [];

/** Reads requests off one connection (heads, and bodies by Content-Length) and runs the script for each. */
function serveConnection(socket: net.Socket): void {
  const connection = ++connections;
  let buf = Buffer.alloc(0);
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [line = '', ...headerLines] = buf.toString('latin1', 0, end).split('\r\n');
      const headers = headerLines.flatMap((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]);
      const lengthAt = headers.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === 'content-length');
      const length = lengthAt >= 0 ? Number(headers[lengthAt + 1]) : 0;
      if (buf.length < end + 4 + length) return;
      const [method = '', target = ''] = line.split(' ');
      const r = { method, target, headers, body: buf.toString('latin1', end + 4, end + 4 + length), connection };
      buf = buf.subarray(end + 4 + length);
      seen.push(r);
      const script = scripts.get(target.replace(/^\/v[\d.]+/, '').replace(/\?.*$/, ''));
      if (script) script(r, socket);
      else socket.write('HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 28\r\n\r\n{"message":"page not found"}');
    }
  });
}

before(async () => {
  engineServer = net.createServer(serveConnection);
  engineServer.listen(0, '127.0.0.1');
  await once(engineServer, 'listening');
  const addr = engineServer.address() as net.AddressInfo;
  engine = createEngineClient(`127.0.0.1:${addr.port}`, { timeoutMs: 5000 });
  front = http.createServer((req, res) => {
    const path = req.url ?? '/';
    void forward(req, res, engine, 'fake', path, frontOptions.get(path.replace(/^\/v[\d.]+/, '').replace(/\?.*$/, '')) ?? {}).then((s) => frontStatuses.push(s));
  });
  front.listen(0, '127.0.0.1');
  await once(front, 'listening');
  frontPort = (front.address() as net.AddressInfo).port;
});

after(() => {
  engine.close();
  front.close();
  front.closeAllConnections();
  engineServer.close();
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
after(() => agent.destroy());

function call(method: string, path: string, opts: { body?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: frontPort, method, path, agent, headers: opts.headers }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const sized = (body: string, extra = ''): string => `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body, 'latin1')}\r\n\r\n${body}`;
const chunk = (s: string): string => `${Buffer.byteLength(s, 'latin1').toString(16)}\r\n${s}\r\n`;
const chunkedHead = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';

test('a sized answer is relayed with its headers; the connection carries the next call', async () => {
  scripts.set('/containers/a/json', (_r, s) => s.write(sized('{"Id":"a"}', 'Api-Version: 1.41\r\nX-Twice: 1\r\nX-Twice: 2\r\n')));
  const before = connections;
  const first = await call('GET', '/v1.41/containers/a/json?size=1');
  assert.equal(first.status, 200);
  assert.equal(first.body, '{"Id":"a"}');
  assert.equal(first.headers['api-version'], '1.41');
  assert.equal(first.headers['x-twice'], '1, 2');
  assert.equal(first.headers['content-length'], '10');
  const second = await call('GET', '/v1.41/containers/a/json');
  assert.equal(second.body, '{"Id":"a"}');
  assert.equal(connections - before, 1, 'one engine connection for both calls');
});

test('the engine gets the path with its version prefix and query, our Host, the client headers but hop-by-hop ones', async () => {
  scripts.set('/containers/h/json', (_r, s) => s.write(sized('{}')));
  await call('GET', '/v1.41/containers/h/json?all=1&filters=%7B%7D', { headers: { 'User-Agent': 'Docker-Client/28.0', 'X-Registry-Auth': 'abc', 'X-Latin': 'caf\xe9', Connection: 'keep-alive', TE: 'trailers' } });
  const r = seen[seen.length - 1];
  assert.ok(r);
  assert.equal(r.method, 'GET');
  assert.equal(r.target, '/v1.41/containers/h/json?all=1&filters=%7B%7D');
  const names = r.headers.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  assert.equal(r.headers[names.indexOf('host') * 2 + 1], engine.addr);
  assert.equal(r.headers[names.indexOf('user-agent') * 2 + 1], 'Docker-Client/28.0');
  assert.equal(r.headers[names.indexOf('x-registry-auth') * 2 + 1], 'abc');
  assert.equal(r.headers[names.indexOf('x-latin') * 2 + 1], 'caf\xe9', 'a latin1 byte leaves as the one byte it came as');
  assert.ok(!names.includes('connection') && !names.includes('te'), names.join(','));
  assert.equal(names.filter((n) => n === 'host').length, 1);
});

test('a chunked answer complete at once leaves with a Content-Length; one split over reads streams', async () => {
  scripts.set('/containers/c/top', (_r, s) => s.write(chunkedHead + chunk('{"Titles":') + chunk('[]}') + '0\r\n\r\n'));
  const whole = await call('GET', '/containers/c/top');
  assert.equal(whole.body, '{"Titles":[]}');
  assert.equal(whole.headers['content-length'], '13');
  assert.equal(whole.headers['transfer-encoding'], undefined);

  scripts.set('/containers/c/changes', (_r, s) => {
    s.write(chunkedHead + chunk('[{"Path":'));
    setTimeout(() => s.write(chunk('"/tmp"}]') + '0\r\n\r\n'), 30);
  });
  const split = await call('GET', '/containers/c/changes');
  assert.equal(split.body, '[{"Path":"/tmp"}]');
  assert.equal(split.headers['transfer-encoding'], 'chunked');
  // The engine connection is still good for the next call.
  assert.equal((await call('GET', '/containers/c/top')).body, '{"Titles":[]}');
});

test('a stream (logs -f) shows its head and each piece at once, and ends when the engine ends it', async () => {
  let more: (() => void) | undefined;
  scripts.set('/containers/s/logs', (_r, s) => {
    s.write(chunkedHead);
    more = () => {
      s.write(chunk('line 1\n'));
      more = () => s.write(chunk('line 2\n') + '0\r\n\r\n');
    };
  });
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: frontPort, path: '/v1.41/containers/s/logs?follow=1', agent: false }, resolve).on('error', reject);
  });
  assert.equal(res.statusCode, 200, 'the head arrives before any log line');
  const lines: string[] = [];
  res.setEncoding('utf8');
  const ended = once(res, 'end');
  res.on('data', (d: string) => {
    lines.push(d);
    more?.();
  });
  more?.();
  await ended;
  assert.deepEqual(lines.join(''), 'line 1\nline 2\n');
});

test('a client that leaves a stream closes the engine call', async () => {
  let engineSocket: net.Socket | undefined;
  scripts.set('/containers/l/logs', (_r, s) => {
    engineSocket = s;
    s.write(chunkedHead + chunk('first\n'));
  });
  await new Promise<void>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: frontPort, path: '/containers/l/logs?follow=1', agent: false }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => undefined);
    setTimeout(() => reject(new Error('no data')), 5000);
  });
  assert.ok(engineSocket);
  await once(engineSocket, 'close');
});

test('an answer running until the engine closes is relayed whole, and that connection is not reused', async () => {
  scripts.set('/containers/u/export', (_r, s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\n\r\npart1-');
    setTimeout(() => s.end('part2'), 20);
  });
  const a = await call('GET', '/containers/u/export');
  assert.equal(a.body, 'part1-part2');
  scripts.set('/containers/u/json', (r, s) => s.write(sized(String(r.connection))));
  const b1 = await call('GET', '/containers/u/json');
  const b2 = await call('GET', '/containers/u/json');
  assert.equal(b1.body, b2.body, 'calls after it share a fresh connection');
});

test('a large sized answer arrives whole', async () => {
  const big = 'x'.repeat(8 * 1024 * 1024);
  scripts.set('/containers/big/archive', (_r, s) => s.write(`HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nContent-Length: ${big.length}\r\n\r\n${big}`));
  const a = await call('GET', '/containers/big/archive?path=/');
  assert.equal(a.body.length, big.length);
  assert.equal(a.body, big);
});

test('rewrite sees the whole 2xx body and its result goes out with its own length; errors are relayed untouched', async () => {
  frontOptions.set('/containers/r/json', { rewrite: (body) => Buffer.from(body.toString().replace('{', '{"Node":{},')) });
  scripts.set('/containers/r/json', (_r, s) => {
    s.write(chunkedHead + chunk('{"Id":'));
    setTimeout(() => s.write(chunk('"r"}') + '0\r\n\r\n'), 20);
  });
  const ok = await call('GET', '/v1.41/containers/r/json');
  assert.equal(ok.body, '{"Node":{},"Id":"r"}');
  assert.equal(ok.headers['content-length'], String(ok.body.length));

  frontOptions.set('/containers/r404/json', { rewrite: () => Buffer.from('rewritten') });
  scripts.set('/containers/r404/json', (_r, s) => s.write('HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n' + chunk('{"message":"No such container: r404"}') + '0\r\n\r\n'));
  const missing = await call('GET', '/containers/r404/json');
  assert.equal(missing.status, 404);
  assert.equal(missing.body, '{"message":"No such container: r404"}');

  frontOptions.set('/containers/rbad/json', {
    rewrite: () => {
      throw new Error('not JSON');
    },
  });
  scripts.set('/containers/rbad/json', (_r, s) => s.write(sized('<html>')));
  const bad = await call('GET', '/containers/rbad/json');
  assert.equal(bad.status, 500);
  assert.match(bad.body, /could not be read: not JSON/);
});

test('HEAD keeps the engine Content-Length and has no body; 204 has none either', async () => {
  scripts.set('/containers/hd/archive', (_r, s) => s.write('HTTP/1.1 200 OK\r\nX-Docker-Container-Path-Stat: e30=\r\nContent-Length: 1234\r\n\r\n'));
  const h = await call('HEAD', '/containers/hd/archive?path=/etc');
  assert.equal(h.status, 200);
  assert.equal(h.headers['content-length'], '1234');
  assert.equal(h.headers['x-docker-container-path-stat'], 'e30=');
  assert.equal(h.body, '');
  scripts.set('/containers/hd/start', (_r, s) => s.write('HTTP/1.1 204 No Content\r\nApi-Version: 1.41\r\n\r\n'));
  const started = await call('POST', '/containers/hd/start');
  assert.equal(started.status, 204);
  assert.equal(started.body, '');
  // And the connection still serves.
  assert.equal((await call('HEAD', '/containers/hd/archive?path=/etc')).status, 200);
});

test('an interim 100 Continue is skipped', async () => {
  scripts.set('/containers/ic/json', (_r, s) => s.write('HTTP/1.1 100 Continue\r\n\r\n' + sized('{"after":"continue"}')));
  assert.equal((await call('GET', '/containers/ic/json')).body, '{"after":"continue"}');
});

test('an engine that dies mid-answer cuts the client off; the front serves on', async () => {
  scripts.set('/containers/d/json', (_r, s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part');
    setTimeout(() => s.destroy(), 20);
  });
  await assert.rejects(call('GET', '/containers/d/json'));
  scripts.set('/containers/d/logs', (_r, s) => {
    s.write(chunkedHead + chunk('line\n'));
    setTimeout(() => s.destroy(), 20);
  });
  await assert.rejects(call('GET', '/containers/d/logs?follow=1'));
  scripts.set('/containers/d/top', (_r, s) => s.write(sized('{"Titles":[]}')));
  assert.equal((await call('GET', '/containers/d/top')).status, 200);
});

test('an engine that closes without answering, or answers garbage: a 500 naming the engine', async () => {
  scripts.set('/containers/g/json', (_r, s) => s.end());
  frontStatuses.length = 0;
  const closed = await call('POST', '/containers/g/json');
  assert.equal(closed.status, 500);
  assert.match(JSON.parse(closed.body).message as string, /Cannot connect to the Docker engine fake \(127\.0\.0\.1:\d+\): the engine closed the connection without answering/);
  scripts.set('/containers/g/top', (_r, s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n'));
  const garbage = await call('GET', '/containers/g/top');
  assert.equal(garbage.status, 500);
  assert.match(garbage.body, /invalid Content-Length/);
  scripts.set('/containers/g/changes', (_r, s) => s.write(chunkedHead + 'zz\r\n'));
  const badChunk = await call('GET', '/containers/g/changes');
  assert.equal(badChunk.status, 500);
  assert.match(badChunk.body, /broke off its answer: malformed chunk size/);
});

test('an idle connection the engine dropped: a GET is retried on a new one, a POST is not', async () => {
  scripts.set('/containers/k/json', (_r, s) => s.write(sized('{"ok":true}')));
  await call('GET', '/containers/k/json');
  // The next call on that connection finds it dead, as when the engine restarted between calls.
  scripts.set('/containers/k/json', (r, s) => {
    scripts.set('/containers/k/json', (_r2, s2) => s2.write(sized('{"retried":true}')));
    void r;
    s.destroy();
  });
  const retried = await call('GET', '/containers/k/json');
  assert.equal(retried.status, 200);
  assert.equal(retried.body, '{"retried":true}');

  scripts.set('/containers/k/kill', (_r, s) => s.write('HTTP/1.1 204 No Content\r\n\r\n'));
  await call('POST', '/containers/k/kill');
  let kills = 0;
  scripts.set('/containers/k/kill', (_r, s) => {
    kills++;
    s.destroy();
  });
  const killed = await call('POST', '/containers/k/kill');
  assert.equal(killed.status, 500);
  assert.equal(kills, 1, 'a POST is sent once');
});

test('an engine that does not listen: a 500 that says so', async () => {
  const gone = createEngineClient('127.0.0.1:1', { timeoutMs: 1000 });
  const server = http.createServer((req, res) => void forward(req, res, gone, 'gone', req.url ?? '/'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const answer = await new Promise<Answer>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/containers/x/json', agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    }).on('error', reject);
  });
  server.close();
  gone.close();
  assert.equal(answer.status, 500);
  assert.match(answer.body, /Cannot connect to the Docker engine gone \(127\.0\.0\.1:1\): connect ECONNREFUSED/);
});

test('a call with a body goes through the streaming client and reaches the engine whole', async () => {
  scripts.set('/containers/b/update', (r, s) => s.write(sized(JSON.stringify({ got: r.body }))));
  const a = await call('POST', '/containers/b/update', { body: '{"Memory":1024}', headers: { 'Content-Type': 'application/json' } });
  assert.equal(a.status, 200);
  assert.deepEqual(JSON.parse(a.body), { got: '{"Memory":1024}' });
});
