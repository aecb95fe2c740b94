import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bodyDecoder, ChunkedDecoder, HttpParseError, maxHeadSize, parseResponseHead, type BodyDecoder, type ResponseHead } from '../../src/docker/response-parser.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

function head(text: string, method = 'GET'): ResponseHead {
  const h = parseResponseHead(b(text), method);
  assert.ok(h, `head of ${JSON.stringify(text)} parsed`);
  return h;
}

/** Feeds `wire` to a decoder in pieces cut at `cuts`; returns the body and whether it ended. */
function decode(decoder: BodyDecoder, wire: string, cuts: number[] = []): { body: string; done: boolean; excess: number } {
  const bounds = [0, ...cuts, wire.length];
  let body = '';
  let done = false;
  let excess = 0;
  for (let i = 0; i + 1 < bounds.length; i++) {
    const p = decoder.push(b(wire.slice(bounds[i], bounds[i + 1])));
    body += p.data.map((d) => d.toString('latin1')).join('');
    excess += p.excess;
    if (p.done) {
      done = true;
      // What follows the body is excess, whatever the cut.
      excess += wire.length - (bounds[i + 1] ?? wire.length);
      break;
    }
  }
  return { body, done, excess };
}

test('a head is read once complete: status, headers in order and case, its size', () => {
  const text = 'HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nX-Two: a\r\nX-Two: b\r\nContent-Length: 2\r\n\r\n{}';
  for (let cut = 0; cut < text.length - 2; cut++) {
    assert.equal(parseResponseHead(b(text.slice(0, cut)), 'GET'), undefined, `incomplete at ${cut}`);
  }
  const h = head(text);
  assert.equal(h.status, 200);
  assert.deepEqual(h.rawHeaders, ['Api-Version', '1.41', 'Content-Type', 'application/json', 'X-Two', 'a', 'X-Two', 'b', 'Content-Length', '2']);
  assert.deepEqual(h.framing, { kind: 'sized', length: 2 });
  assert.equal(h.keepAlive, true);
  assert.equal(h.size, text.length - 2);
});

test('values lose surrounding spaces and tabs only; an empty value and a status without reason are fine', () => {
  const h = head('HTTP/1.1 404\r\nX-A: \t v w \t\r\nX-Empty:\r\nX-Latin: \xa0x\xa0\r\nContent-Length: 0\r\n\r\n');
  assert.equal(h.status, 404);
  assert.deepEqual(h.rawHeaders.slice(0, 6), ['X-A', 'v w', 'X-Empty', '', 'X-Latin', '\xa0x\xa0']);
  assert.deepEqual(h.framing, { kind: 'empty' });
});

test('framing: chunked wins over a length and forbids reuse; no length runs until close; HEAD, 204 and 304 have no body', () => {
  assert.deepEqual(head('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n').framing, { kind: 'chunked' });
  const both = head('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n');
  assert.deepEqual(both.framing, { kind: 'chunked' });
  assert.equal(both.keepAlive, false);
  assert.deepEqual(head('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n').framing, { kind: 'until-close' });
  assert.deepEqual(head('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n').framing, { kind: 'chunked' });
  const open = head('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n');
  assert.deepEqual(open.framing, { kind: 'until-close' });
  assert.equal(open.keepAlive, false);
  assert.deepEqual(head('HTTP/1.1 200 OK\r\nContent-Length: 4781\r\n\r\n', 'HEAD').framing, { kind: 'empty' });
  assert.deepEqual(head('HTTP/1.1 204 No Content\r\n\r\n').framing, { kind: 'empty' });
  assert.deepEqual(head('HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n').framing, { kind: 'empty' });
  assert.deepEqual(head('HTTP/1.1 100 Continue\r\n\r\n').framing, { kind: 'empty' });
  assert.deepEqual(head('HTTP/1.1 200 OK\r\nContent-Length: 007\r\nContent-Length: 7\r\n\r\n').framing, { kind: 'sized', length: 7 });
});

test('keep-alive: HTTP/1.1 unless Connection: close; HTTP/1.0 only with Connection: keep-alive', () => {
  assert.equal(head('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n').keepAlive, false);
  assert.equal(head('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: Upgrade, Close\r\n\r\n').keepAlive, false);
  assert.equal(head('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').keepAlive, false);
  assert.equal(head('HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: Keep-Alive\r\n\r\n').keepAlive, true);
});

test('malformed heads are refused with HttpParseError', () => {
  const bad = [
    'HTTP/2 200 OK\r\n\r\n',
    'HTTP/1.1 20 OK\r\n\r\n',
    'HTTP/1.1 099 Low\r\n\r\n',
    'ICY 200 OK\r\n\r\n',
    'HTTP/1.1 200 OK\r\nNo-Colon\r\n\r\n',
    'HTTP/1.1 200 OK\r\n: empty-name\r\n\r\n',
    'HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX-A: bare\nX-B: lf\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX-A: nul\0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999\r\n\r\n',
  ];
  for (const text of bad) assert.throws(() => parseResponseHead(b(text), 'GET'), HttpParseError, JSON.stringify(text));
});

test('a head that never ends is refused once it passes the limit, not buffered forever', () => {
  const start = 'HTTP/1.1 200 OK\r\nX-Long: ';
  assert.equal(parseResponseHead(b(start + 'a'.repeat(maxHeadSize - start.length)), 'GET'), undefined);
  assert.throws(() => parseResponseHead(b(start + 'a'.repeat(maxHeadSize)), 'GET'), HttpParseError);
  assert.throws(() => parseResponseHead(b(start + 'a'.repeat(maxHeadSize) + '\r\n\r\n'), 'GET'), HttpParseError);
});

test('a sized body ends at its length, in any pieces; what follows is excess', () => {
  assert.deepEqual(decode(bodyDecoder({ kind: 'sized', length: 5 }), 'hello'), { body: 'hello', done: true, excess: 0 });
  assert.deepEqual(decode(bodyDecoder({ kind: 'sized', length: 5 }), 'hello', [1, 3]), { body: 'hello', done: true, excess: 0 });
  assert.deepEqual(decode(bodyDecoder({ kind: 'sized', length: 5 }), 'hel'), { body: 'hel', done: false, excess: 0 });
  assert.deepEqual(decode(bodyDecoder({ kind: 'sized', length: 5 }), 'helloHTTP'), { body: 'hello', done: true, excess: 4 });
  const d = bodyDecoder({ kind: 'sized', length: 2 });
  d.push(b('x'));
  assert.equal(d.ended(), false, 'a connection closing early leaves a sized body short');
});

test('empty and until-close bodies', () => {
  assert.deepEqual(decode(bodyDecoder({ kind: 'empty' }), ''), { body: '', done: true, excess: 0 });
  assert.deepEqual(decode(bodyDecoder({ kind: 'empty' }), 'xy'), { body: '', done: true, excess: 2 });
  const open = bodyDecoder({ kind: 'until-close' });
  assert.deepEqual(decode(open, 'log line 1\nlog line 2\n', [5]), { body: 'log line 1\nlog line 2\n', done: false, excess: 0 });
  assert.equal(open.ended(), true, 'the close ends it');
});

const chunkedWire = '4\r\nWiki\r\n5;name=value\r\npedia\r\nE  \r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: t\r\n\r\n';

test('chunked: sizes in hex with extensions, trailers, the end; cut at every byte', () => {
  const whole = decode(new ChunkedDecoder(), chunkedWire);
  assert.deepEqual(whole, { body: 'Wikipedia in\r\n\r\nchunks.', done: true, excess: 0 });
  for (let cut = 1; cut < chunkedWire.length; cut++) {
    assert.deepEqual(decode(new ChunkedDecoder(), chunkedWire, [cut]), whole, `cut at ${cut}`);
  }
  const byteByByte = Array.from({ length: chunkedWire.length - 1 }, (_, i) => i + 1);
  assert.deepEqual(decode(new ChunkedDecoder(), chunkedWire, byteByByte), whole);
});

test('chunked: not done until the last chunk and the blank line; uppercase hex, leading zeros; excess after the end', () => {
  const d = new ChunkedDecoder();
  assert.deepEqual(decode(d, '1A\r\n' + 'x'.repeat(26) + '\r\n'), { body: 'x'.repeat(26), done: false, excess: 0 });
  assert.deepEqual(decode(d, '0\r\n'), { body: '', done: false, excess: 0 });
  assert.equal(d.ended(), false);
  assert.deepEqual(decode(d, '\r\n'), { body: '', done: true, excess: 0 });
  assert.equal(d.ended(), true);
  assert.deepEqual(decode(new ChunkedDecoder(), '0003\r\nabc\r\n0\r\n\r\nHTTP/1.1'), { body: 'abc', done: true, excess: 8 });
  assert.deepEqual(decode(new ChunkedDecoder(), '000\r\n\r\n'), { body: '', done: true, excess: 0 });
});

test('chunked: a stream that never ends (logs -f) yields its pieces as they come', () => {
  const d = new ChunkedDecoder();
  const p1 = d.push(b('6\r\nline1\n\r\n'));
  assert.deepEqual(p1.data.map(String), ['line1\n']);
  assert.equal(p1.done, false);
  const p2 = d.push(b('6\r\nline2\n\r\n6\r\nline3\n\r\n'));
  assert.deepEqual(p2.data.map(String), ['line2\n', 'line3\n']);
  assert.equal(d.ended(), false, 'a close here is a broken stream');
});

test('malformed chunked framing is refused with HttpParseError', () => {
  const bad = [
    'g\r\n',
    '-1\r\n',
    ' 1\r\nx\r\n',
    '\r\n',
    '1\nx\r\n',
    '1\r\nxy\r\n',
    '1\r\nx\n',
    '1\r\nx\rz',
    '1\rx\r\n',
    '12345678901234\r\n',
    `${'1'.padEnd(5000, ' ')}\r\n`,
    '0\r\nX-Bad: a\nb\r\n\r\n',
  ];
  for (const wire of bad) {
    assert.throws(() => new ChunkedDecoder().push(b(wire)), HttpParseError, JSON.stringify(wire));
  }
  // A bare CR that ends one buffer is caught when the next one does not start with LF.
  const d = new ChunkedDecoder();
  d.push(b('1\r'));
  assert.throws(() => d.push(b('x')), HttpParseError);
  // Trailers without end are refused once past their limit.
  const t = new ChunkedDecoder();
  t.push(b('0\r\n'));
  assert.throws(() => {
    for (let i = 0; i < 100; i++) t.push(b(`X-Trailer-${i}: ${'v'.repeat(1000)}\r\n`));
  }, HttpParseError);
});
