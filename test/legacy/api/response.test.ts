import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { ManagerResponse, serverHeader } from '../../../legacy/api/response.js';

const answers: Record<string, (res: http.ServerResponse) => void> = {
  '/object': (res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}'),
  '/object-own': (res) => res.writeHead(200, { server: 'Docker/20.10' }).end(),
  '/array': (res) => res.writeHead(200, ['Content-Type', 'text/plain', 'X-Twice', 'a', 'X-Twice', 'b']).end('ok'),
  '/array-own': (res) => res.writeHead(200, ['Server', 'Docker/20.10', 'Api-Version', '1.41']).end(),
  '/message': (res) => res.writeHead(404, 'Gone Fishing', { 'Content-Length': '0' }).end(),
  '/implicit': (res) => res.end('plain'),
  '/set': (res) => {
    res.setHeader('Server', 'set-before');
    res.writeHead(200, { 'Content-Length': '0' }).end();
  },
  '/bare': (res) => res.writeHead(204).end(),
};

let server: http.Server;
let port = 0;

before(async () => {
  server = http.createServer({ ServerResponse: ManagerResponse }, (req, res) => answers[req.url ?? '']?.(res));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

after(() => server.close());

function get(path: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res));
      })
      .on('error', reject);
  });
}

test('answers the manager writes name it in Server, however the head is written', async () => {
  for (const path of ['/object', '/array', '/message', '/implicit', '/bare']) {
    const res = await get(path);
    assert.equal(res.headers.server, serverHeader, path);
  }
  const array = await get('/array');
  assert.equal(array.headers['x-twice'], 'a, b', 'duplicate headers in a flat list survive');
  const message = await get('/message');
  assert.equal(message.statusCode, 404);
  assert.equal(message.statusMessage, 'Gone Fishing');
});

test("a relayed engine's Server, or one set before, is kept", async () => {
  assert.equal((await get('/object-own')).headers.server, 'Docker/20.10');
  const own = await get('/array-own');
  assert.equal(own.headers.server, 'Docker/20.10');
  assert.equal(own.headers['api-version'], '1.41');
  assert.equal((await get('/set')).headers.server, 'set-before');
});
