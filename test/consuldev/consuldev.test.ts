// The Consul dev server, driven the way the discovery code drives Consul: through the
// real `consul` npm client. Raw HTTP only where the client hides what Consul promises
// (headers, status codes, error texts).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import Consul from 'consul';
import { startConsulDev, type ConsulDev } from '../../src/consuldev/index.js';

interface KvItem {
  CreateIndex: number;
  ModifyIndex: number;
  LockIndex: number;
  Key: string;
  Flags: number;
  Value: string | null;
  Session?: string;
}

function isKvItem(v: unknown): v is KvItem {
  return typeof v === 'object' && v !== null && 'Key' in v && 'ModifyIndex' in v;
}

function one(v: unknown): KvItem {
  assert.ok(isKvItem(v), `expected a KV entry, got ${JSON.stringify(v)}`);
  return v;
}

function many(v: unknown): KvItem[] {
  assert.ok(Array.isArray(v), `expected a list of KV entries, got ${JSON.stringify(v)}`);
  return v.map(one);
}

/**
 * The client (consul 2.0.1, through papi) resolves a `false` answer as undefined; the
 * server does send the literal `false` (checked over raw HTTP below).
 */
function refused(answer: boolean | undefined, why = 'the write was expected to be refused'): void {
  assert.notEqual(answer, true, why);
}

function statusOf(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'statusCode' in err && typeof err.statusCode === 'number') return err.statusCode;
  return undefined;
}

let dev: ConsulDev;
let consul: Consul;
let base: string;

async function http(method: string, path: string, body?: string | Buffer): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(base + path, { method, body });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function session(spec: Record<string, string | number | string[]>): Promise<string> {
  const res = await http('PUT', '/v1/session/create', JSON.stringify(spec));
  assert.equal(res.status, 200, res.text);
  const parsed: unknown = JSON.parse(res.text);
  assert.ok(typeof parsed === 'object' && parsed !== null && 'ID' in parsed && typeof parsed.ID === 'string');
  return parsed.ID;
}

before(async () => {
  dev = await startConsulDev({ port: 0, minSessionTtlMs: 200 });
  const [host = '', port = ''] = dev.address.split(':');
  consul = new Consul({ host, port: Number(port) });
  base = `http://${dev.address}`;
});

after(async () => {
  consul.destroy();
  await dev.close();
});

void describe('KV through the consul client', () => {
  void test('set, get, recurse, keys with a separator, delete', async () => {
    assert.equal(await consul.kv.set('app/a', 'one'), true);
    assert.equal(await consul.kv.set({ key: 'app/b', value: 'two', flags: 42 }), true);
    assert.equal(await consul.kv.set('app/sub/c', ''), true);

    const a = one(await consul.kv.get('app/a'));
    assert.equal(a.Value, 'one');
    assert.equal(a.Flags, 0);
    assert.equal(a.LockIndex, 0);
    assert.equal(a.Session, undefined);
    assert.equal(a.CreateIndex, a.ModifyIndex);
    assert.equal(one(await consul.kv.get('app/b')).Flags, 42);
    assert.equal(one(await consul.kv.get('app/sub/c')).Value, null, 'an empty value reads as null');

    const all = many(await consul.kv.get({ key: 'app/', recurse: true }));
    assert.deepEqual(all.map((e) => e.Key), ['app/a', 'app/b', 'app/sub/c']);
    assert.deepEqual(await consul.kv.keys({ key: 'app/', separator: '/' }), ['app/a', 'app/b', 'app/sub/']);
    assert.deepEqual(await consul.kv.keys('app/'), ['app/a', 'app/b', 'app/sub/c']);

    assert.equal(await consul.kv.get('app/missing'), undefined);
    assert.equal(await consul.kv.del('app/a'), true);
    assert.equal(await consul.kv.get('app/a'), undefined);
    assert.equal(await consul.kv.del({ key: 'app/', recurse: true }), true);
    assert.equal(await consul.kv.get({ key: 'app/', recurse: true }), undefined);
    await assert.rejects(consul.kv.keys('app/'), (err) => statusOf(err) === 404);
  });

  void test('binary values round-trip byte for byte', async () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    assert.equal(await consul.kv.set('bin/all-bytes', bytes), true);
    const raw: unknown = await consul.kv.get({ key: 'bin/all-bytes', raw: true });
    assert.ok(Buffer.isBuffer(raw));
    assert.ok(raw.equals(bytes));
    const entry = one(await consul.kv.get('bin/all-bytes'));
    assert.equal(entry.Value, bytes.toString(), 'the client decodes the base64 Value');
  });

  void test('check-and-set: 0 means only if absent, otherwise the ModifyIndex must match', async () => {
    assert.equal(await consul.kv.set({ key: 'cas/k', value: 'v1', cas: 0 }), true);
    refused(await consul.kv.set({ key: 'cas/k', value: 'v2', cas: 0 }));
    const v1 = one(await consul.kv.get('cas/k'));
    assert.equal(v1.Value, 'v1');
    assert.equal(await consul.kv.set({ key: 'cas/k', value: 'v2', cas: v1.ModifyIndex }), true);
    refused(await consul.kv.set({ key: 'cas/k', value: 'v3', cas: v1.ModifyIndex }), 'a stale index loses');
    const v2 = one(await consul.kv.get('cas/k'));
    assert.equal(v2.Value, 'v2');
    assert.equal(v2.CreateIndex, v1.CreateIndex);
    refused(await consul.kv.set({ key: 'cas/absent', value: 'x', cas: 5 }));

    refused(await consul.kv.del({ key: 'cas/k', cas: v1.ModifyIndex }));
    assert.equal(one(await consul.kv.get('cas/k')).Value, 'v2');
    assert.equal(await consul.kv.del({ key: 'cas/k', cas: v2.ModifyIndex }), true);
    assert.equal(await consul.kv.get('cas/k'), undefined);
  });

  void test('the index only grows, and a prefix index does not slide back when its newest key goes', async () => {
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) {
      await consul.kv.set(`mono/k${i}`, String(i));
      seen.push(one(await consul.kv.get(`mono/k${i}`)).ModifyIndex);
    }
    for (let i = 1; i < seen.length; i++) assert.ok((seen[i] ?? 0) > (seen[i - 1] ?? 0), `indexes ${seen.join(',')}`);
    const before = Number((await http('GET', '/v1/kv/mono/?recurse')).headers.get('x-consul-index'));
    assert.equal(before, seen[4]);
    await consul.kv.del('mono/k4');
    const afterDelete = Number((await http('GET', '/v1/kv/mono/?recurse')).headers.get('x-consul-index'));
    assert.ok(afterDelete > before, `prefix index went from ${before} to ${afterDelete}`);
  });
});

void describe('sessions and locks', () => {
  void test('acquire and release: one holder at a time, LockIndex counts acquisitions', async () => {
    const s1 = (await consul.session.create({ name: 's1', lockdelay: '0s' })).ID;
    const s2 = (await consul.session.create({ name: 's2', lockdelay: '0s' })).ID;
    assert.equal(await consul.kv.set({ key: 'lock/leader', value: 'node-1', acquire: s1 }), true);
    let held = one(await consul.kv.get('lock/leader'));
    assert.equal(held.Session, s1);
    assert.equal(held.LockIndex, 1);

    refused(await consul.kv.set({ key: 'lock/leader', value: 'node-2', acquire: s2 }));
    assert.equal(await consul.kv.set({ key: 'lock/leader', value: 'node-1b', acquire: s1 }), true, 'the holder may update');
    held = one(await consul.kv.get('lock/leader'));
    assert.equal(held.LockIndex, 1, 're-acquiring a held lock does not count');
    assert.equal(held.Value, 'node-1b');

    // A plain write goes through even on a locked key, and keeps the lock.
    assert.equal(await consul.kv.set('lock/leader', 'plain'), true);
    assert.equal(one(await consul.kv.get('lock/leader')).Session, s1);

    refused(await consul.kv.set({ key: 'lock/leader', value: 'x', release: s2 }), 'only the holder releases');
    assert.equal(await consul.kv.set({ key: 'lock/leader', value: 'free', release: s1 }), true);
    held = one(await consul.kv.get('lock/leader'));
    assert.equal(held.Session, undefined);
    assert.equal(held.LockIndex, 1);

    assert.equal(await consul.kv.set({ key: 'lock/leader', value: 'node-2', acquire: s2 }), true);
    assert.equal(one(await consul.kv.get('lock/leader')).LockIndex, 2);

    await assert.rejects(
      consul.kv.set({ key: 'lock/other', value: 'x', acquire: '00000000-0000-0000-0000-000000000000' }),
      (err) => statusOf(err) === 500 && /invalid session "00000000-0000-0000-0000-000000000000"/.test(String(err)),
    );
    await consul.session.destroy(s1);
    await consul.session.destroy(s2);
  });

  void test('session info, list, node listing and renew', async () => {
    const id = (await consul.session.create({ name: 'listed', ttl: '30s', behavior: 'delete' })).ID;
    const info = await consul.session.info(id);
    assert.equal(info.ID, id);
    assert.equal(info.Name, 'listed');
    assert.equal(info.TTL, '30s');
    assert.equal(info.Behavior, 'delete');
    assert.equal(info.LockDelay, 15_000_000_000, 'LockDelay defaults to 15s, reported in nanoseconds');
    assert.deepEqual(info.NodeChecks, ['serfHealth']);
    assert.ok((await consul.session.list()).some((s) => s.ID === id));
    assert.ok((await consul.session.node(info.Node)).some((s) => s.ID === id));
    assert.deepEqual(await consul.session.node('some-other-node'), []);
    const renewed = await consul.session.renew(id);
    assert.equal(renewed.length, 1);
    assert.equal(renewed[0]?.ID, id);
    await consul.session.destroy(id);
    assert.equal(await consul.session.info(id), undefined);
    await assert.rejects(consul.session.renew(id), (err) => statusOf(err) === 404 && String(err).includes(`Session id '${id}' not found`));
  });

  void test('TTL expiry releases or deletes the locks, per Behavior', async () => {
    // minSessionTtlMs is 200 here; Consul invalidates after twice the TTL, so about 1s.
    const releasing = (await consul.session.create({ ttl: '500ms', behavior: 'release', lockdelay: '0s' })).ID;
    const deleting = (await consul.session.create({ ttl: '500ms', behavior: 'delete', lockdelay: '0s' })).ID;
    assert.equal(await consul.kv.set({ key: 'ttl/release', value: 'r', acquire: releasing }), true);
    assert.equal(await consul.kv.set({ key: 'ttl/delete', value: 'd', acquire: deleting }), true);
    assert.equal((await consul.session.renew(releasing)).length, 1);

    // Block on the prefix until both locks have gone (bounded, not timed).
    let index = Number((await http('GET', '/v1/kv/ttl/?recurse')).headers.get('x-consul-index'));
    const deadline = Date.now() + 15_000;
    let entries: KvItem[];
    for (;;) {
      const res = await fetch(`${base}/v1/kv/ttl/?recurse&index=${index}&wait=5s`);
      index = Number(res.headers.get('x-consul-index'));
      entries = res.status === 404 ? [] : many(await res.json());
      if (entries.every((e) => e.Session === undefined) && !entries.some((e) => e.Key === 'ttl/delete')) break;
      assert.ok(Date.now() < deadline, `locks still held: ${JSON.stringify(entries)}`);
    }
    assert.deepEqual(entries.map((e) => [e.Key, e.Value, e.Session]), [['ttl/release', Buffer.from('r').toString('base64'), undefined]]);
    assert.equal(await consul.session.info(releasing), undefined);
    assert.equal(await consul.session.info(deleting), undefined);
    await assert.rejects(consul.session.renew(deleting), (err) => statusOf(err) === 404);
  });

  void test('lock-delay: an invalidated session\'s locks cannot be re-acquired until it passes', async () => {
    const first = (await consul.session.create({ lockdelay: '700ms' })).ID;
    assert.equal(await consul.kv.set({ key: 'delay/k', value: 'a', acquire: first }), true);
    await consul.session.destroy(first);
    assert.equal(one(await consul.kv.get('delay/k')).Session, undefined, 'destroy releases (default Behavior)');

    const second = (await consul.session.create({ lockdelay: '0s' })).ID;
    refused(await consul.kv.set({ key: 'delay/k', value: 'b', acquire: second }), 'within the lock-delay');
    // A key the old session never held is not delayed.
    assert.equal(await consul.kv.set({ key: 'delay/other', value: 'b', acquire: second }), true);
    const deadline = Date.now() + 10_000;
    while (!(await consul.kv.set({ key: 'delay/k', value: 'b', acquire: second }))) {
      assert.ok(Date.now() < deadline, 'lock-delay never ended');
      await sleep(100);
    }
    assert.equal(one(await consul.kv.get('delay/k')).Session, second);
    await consul.session.destroy(second);
  });

  void test('a numeric LockDelay under 1000 means seconds, a larger one nanoseconds', async () => {
    const small = await session({ LockDelay: 2 });
    const large = await session({ lockdelay: 5_000_000 });
    assert.equal((await consul.session.info(small)).LockDelay, 2_000_000_000);
    assert.equal((await consul.session.info(large)).LockDelay, 5_000_000);
    const unchecked = await session({ Checks: [] });
    assert.equal((await consul.session.info(unchecked)).NodeChecks, null, 'an explicit empty Checks drops serfHealth');
    await consul.session.destroy(unchecked);
    await consul.session.destroy(small);
    await consul.session.destroy(large);
  });
});

void describe('blocking queries', () => {
  void test('a write wakes a query blocked on its key', async () => {
    await consul.kv.set('block/k', 'before');
    const index = one(await consul.kv.get('block/k')).ModifyIndex;
    const opts = { key: 'block/k', index: String(index), wait: '20s' };
    const blocked = consul.kv.get(opts);
    await sleep(100);
    await consul.kv.set('block/k', 'after');
    const woken = one(await blocked);
    assert.equal(woken.Value, 'after');
    assert.ok(woken.ModifyIndex > index);
  });

  void test('a query times out after its wait with the state unchanged', async () => {
    await consul.kv.set('block/quiet', 'still');
    const index = one(await consul.kv.get('block/quiet')).ModifyIndex;
    const started = Date.now();
    const res = await fetch(`${base}/v1/kv/block/quiet?index=${index}&wait=300ms`);
    const elapsed = Date.now() - started;
    assert.equal(res.status, 200);
    assert.equal(Number(res.headers.get('x-consul-index')), index);
    assert.ok(elapsed >= 250, `returned after ${elapsed}ms, before its wait`);
  });

  void test('a write elsewhere does not wake it; a recursive watch sees writes under its prefix', async () => {
    await consul.kv.set('watch/a', '1');
    const index = Number((await http('GET', '/v1/kv/watch/?recurse')).headers.get('x-consul-index'));
    const onPrefix = fetch(`${base}/v1/kv/watch/?recurse&index=${index}&wait=20s`);
    const onKey = fetch(`${base}/v1/kv/watch/a?index=${index}&wait=20s`);
    await sleep(50);
    const waitingBefore = dev.blockedQueries();
    await consul.kv.set('elsewhere/x', 'y');
    await sleep(50);
    assert.equal(dev.blockedQueries(), waitingBefore, 'an unrelated write woke a watcher');
    await consul.kv.set('watch/b', '2');
    const prefix = await onPrefix;
    assert.deepEqual(many(await prefix.json()).map((e) => e.Key), ['watch/a', 'watch/b']);
    await consul.kv.set('watch/a', '3');
    assert.equal(many(await (await onKey).json())[0]?.Value, Buffer.from('3').toString('base64'));
  });

  void test('consul.watch follows a key through changes', async () => {
    await consul.kv.set('watched/k', 'v0');
    const values: string[] = [];
    const watch = consul.watch({ method: consul.kv.get, options: { key: 'watched/k', wait: '5s' } });
    const done = new Promise<void>((resolve, reject) => {
      watch.on('change', (data: unknown) => {
        values.push(one(data).Value ?? '');
        if (values.includes('v2')) resolve();
      });
      watch.on('error', reject);
    });
    await sleep(100);
    await consul.kv.set('watched/k', 'v1');
    await sleep(100);
    await consul.kv.set('watched/k', 'v2');
    await done;
    watch.end();
    assert.equal(values[0], 'v0');
    assert.equal(values.at(-1), 'v2');
  });

  void test('hundreds of watchers are held at once and released as soon as their clients go', async () => {
    const baseline = dev.blockedQueries();
    const aborts: AbortController[] = [];
    const settled: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      const abort = new AbortController();
      aborts.push(abort);
      // An index far ahead of the store: nothing answers these before their clients leave.
      settled.push(fetch(`${base}/v1/kv/many/k${i}?index=1000000000&wait=60s`, { signal: abort.signal }).catch(() => undefined));
    }
    const deadline = Date.now() + 10_000;
    while (dev.blockedQueries() < baseline + 200) {
      assert.ok(Date.now() < deadline, `only ${dev.blockedQueries()} held`);
      await sleep(20);
    }
    for (const abort of aborts) abort.abort();
    await Promise.all(settled);
    while (dev.blockedQueries() > baseline) {
      assert.ok(Date.now() < deadline, `${dev.blockedQueries() - baseline} watchers outlived their clients`);
      await sleep(20);
    }
  });

  void test('session list blocks until the session table changes', async () => {
    const index = Number((await http('GET', '/v1/session/list')).headers.get('x-consul-index'));
    const blocked = fetch(`${base}/v1/session/list?index=${index}&wait=20s`);
    await sleep(50);
    const id = await session({ Name: 'wakes-list' });
    const res = await blocked;
    assert.ok(Number(res.headers.get('x-consul-index')) > index);
    const list: unknown = await res.json();
    assert.ok(Array.isArray(list) && list.some((s: unknown) => typeof s === 'object' && s !== null && 'ID' in s && s.ID === id));
    await consul.session.destroy(id);
  });
});

void describe('the HTTP surface the client hides', () => {
  void test('read meta headers, 404 with an index, raw values, PUT answers', async () => {
    const put = await http('PUT', '/v1/kv/hdr/k', 'value');
    assert.equal(put.status, 200);
    assert.equal(put.text, 'true');
    assert.match(put.headers.get('content-type') ?? '', /^application\/json/);

    const got = await http('GET', '/v1/kv/hdr/k');
    assert.equal(got.status, 200);
    const [entry] = many(JSON.parse(got.text));
    assert.equal(got.headers.get('x-consul-index'), String(entry?.ModifyIndex));
    assert.equal(got.headers.get('x-consul-knownleader'), 'true');
    assert.equal(got.headers.get('x-consul-lastcontact'), '0');
    assert.equal(entry?.Value, Buffer.from('value').toString('base64'));
    assert.deepEqual(Object.keys(JSON.parse(got.text)[0] as object), ['LockIndex', 'Key', 'Flags', 'Value', 'CreateIndex', 'ModifyIndex']);

    const missing = await http('GET', '/v1/kv/hdr/missing');
    assert.equal(missing.status, 404);
    assert.equal(missing.text, '');
    assert.ok(Number(missing.headers.get('x-consul-index')) >= 1);

    const raw = await http('GET', '/v1/kv/hdr/k?raw');
    assert.equal(raw.text, 'value');
    assert.equal(raw.headers.get('content-type'), 'text/plain');
    assert.equal(raw.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(raw.headers.get('content-security-policy'), 'sandbox');

    const lost = await http('PUT', '/v1/kv/hdr/k?cas=0', 'again');
    assert.equal(lost.status, 200);
    assert.equal(lost.text, 'false');

    const flags = await http('PUT', '/v1/kv/hdr/flags?flags=18446744073709551615', 'x');
    assert.equal(flags.text, 'true');
    assert.match((await http('GET', '/v1/kv/hdr/flags')).text, /"Flags":18446744073709551615,/, 'uint64 flags stay exact');

    const root = await http('GET', '/v1/kv/?keys&separator=/');
    assert.equal(root.status, 200);
    assert.ok((JSON.parse(root.text) as string[]).includes('hdr/'));
  });

  void test('bad input gets Consul\'s status codes and texts, never a crash', async () => {
    const cases: Array<[string, string, number, string | RegExp, (string | Buffer)?]> = [
      ['GET', '/v1/kv/x?index=abc', 400, 'Invalid index'],
      ['GET', '/v1/kv/x?wait=soon', 400, 'Invalid wait time'],
      ['GET', '/v1/kv/x?stale&consistent', 400, 'Cannot specify ?stale with ?consistent, conflicting semantics.'],
      ['GET', '/v1/kv/x?dc=elsewhere', 500, 'No path to datacenter'],
      ['GET', '/v1/kv/', 400, 'Missing key name'],
      ['PUT', '/v1/kv/', 400, 'Missing key name', 'v'],
      ['DELETE', '/v1/kv/', 400, 'Missing key name'],
      ['POST', '/v1/kv/x', 405, 'method POST not allowed'],
      ['GET', '/v1/session/create', 405, 'method GET not allowed'],
      ['PUT', '/v1/kv/x?cas=0&acquire=abc', 400, 'Conflicting flags: acquire=abc&cas=0\n', 'v'],
      ['DELETE', '/v1/kv/x?recurse&cas=1', 400, /^Conflicting flags: /],
      ['PUT', '/v1/kv/x?flags=abc', 500, 'strconv.ParseUint: parsing "abc": invalid syntax', 'v'],
      ['PUT', '/v1/kv/x?cas=-1', 500, 'strconv.ParseUint: parsing "-1": invalid syntax', 'v'],
      ['PUT', '/v1/kv/x?acquire=', 500, 'missing session', 'v'],
      ['PUT', '/v1/kv/x?acquire=not-a-uuid', 500, 'failed session lookup: UUID must be 36 characters', 'v'],
      ['PUT', '/v1/session/create', 400, /^Request decode failed: /, '{"TTL": '],
      ['PUT', '/v1/session/create', 400, /^Request decode failed: '' expected a map/, '[1,2]'],
      ['PUT', '/v1/session/create', 400, /^Request decode failed: 'Name' expected type 'string'/, '{"Name": 5}'],
      ['PUT', '/v1/session/create', 500, "Invalid Session TTL '100000000', must be between [200ms=24h0m0s]", '{"TTL":"100ms"}'],
      ['PUT', '/v1/session/create', 500, "Invalid Session TTL '90000000000000', must be between [200ms=24h0m0s]", '{"TTL":"25h"}'],
      ['PUT', '/v1/session/create', 500, `Session TTL 'soon' invalid: time: invalid duration "soon"`, '{"TTL":"soon"}'],
      ['PUT', '/v1/session/create', 500, "Invalid Behavior setting 'linger'", '{"Behavior":"linger"}'],
      ['PUT', '/v1/session/create', 500, 'Missing node registration', '{"Node":"not-this-node"}'],
      ['GET', '/v1/session/info/', 400, 'Missing session'],
      ['GET', '/v1/session/info/short', 500, 'failed session lookup: UUID must be 36 characters'],
      ['PUT', '/v1/session/renew/00000000-0000-0000-0000-000000000000', 404, "Session id '00000000-0000-0000-0000-000000000000' not found"],
      ['PUT', '/v1/session/destroy/00000000-0000-0000-0000-000000000000', 200, 'true'],
      ['GET', '/v1/session/node/', 400, 'Missing node name'],
      ['GET', '/v1/kv/%zz', 400, /invalid URL escape/],
      ['GET', '/v1/nothing-here', 404, ''],
    ];
    for (const [method, path, status, body, payload] of cases) {
      const res = await http(method, path, payload);
      assert.equal(res.status, status, `${method} ${path}: ${res.text}`);
      if (typeof body === 'string') assert.equal(res.text, body, `${method} ${path}`);
      else assert.match(res.text, body, `${method} ${path}`);
    }
    const allow = await http('POST', '/v1/kv/x');
    assert.equal(allow.headers.get('allow'), 'GET,PUT,DELETE');

    const huge = await http('PUT', '/v1/kv/too/big', Buffer.alloc(512 * 1024 + 1, 0x61));
    assert.equal(huge.status, 413);
    assert.equal(huge.text, 'Request body(524289 bytes) too large, max size: 524288 bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.');
    assert.equal(await consul.kv.get('too/big'), undefined);
    const limit = await http('PUT', '/v1/kv/too/limit', Buffer.alloc(512 * 1024, 0x61));
    assert.equal(limit.status, 200);

    // The client surfaces the same errors, and the server is still answering.
    await assert.rejects(consul.kv.get({ key: 'x', index: 'abc' } as { key: string }), (err) => statusOf(err) === 400 && /Invalid index/.test(String(err)));
    assert.equal(await consul.kv.set('still/alive', 'yes'), true);
  });

  void test('status, agent and catalog answer like a single-server dev agent', async () => {
    assert.equal(await consul.status.leader(), '127.0.0.1:8300');
    assert.deepEqual(await consul.status.peers(), ['127.0.0.1:8300']);
    const self: unknown = await consul.agent.self();
    assert.ok(typeof self === 'object' && self !== null && 'Config' in self && 'Member' in self);
    const config = self.Config;
    assert.ok(typeof config === 'object' && config !== null && 'Datacenter' in config && 'NodeName' in config);
    assert.equal(config.Datacenter, 'dc1');
    assert.equal(typeof config.NodeName, 'string');
    assert.deepEqual(await consul.catalog.datacenters(), ['dc1']);
  });
});

void test('close() answers nothing more and releases held queries', async () => {
  const other = await startConsulDev({ port: 0 });
  const held = fetch(`http://${other.address}/v1/kv/k?index=5&wait=60s`).then(
    (res) => res.status,
    () => 'closed',
  );
  const deadline = Date.now() + 5_000;
  while (other.blockedQueries() === 0) {
    assert.ok(Date.now() < deadline);
    await sleep(10);
  }
  await other.close();
  assert.equal(other.blockedQueries(), 0);
  assert.equal(await held, 'closed');
  await assert.rejects(fetch(`http://${other.address}/v1/status/leader`));
});

void test('the CLI prints its address, serves, and stops cleanly on SIGTERM', async () => {
  const cli = fileURLToPath(new URL('../../src/consuldev/cli.js', import.meta.url));
  const child = spawn(process.execPath, [cli, '--client', '127.0.0.1', '--http-port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    let printed = '';
    child.stdout.setEncoding('utf8');
    for await (const chunk of child.stdout) {
      printed += String(chunk);
      if (printed.includes('\n')) break;
    }
    const address = printed.trim();
    assert.match(address, /^127\.0\.0\.1:\d+$/);
    const leader = await fetch(`http://${address}/v1/status/leader`);
    assert.equal(await leader.json(), '127.0.0.1:8300');
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
