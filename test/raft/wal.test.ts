// The on-disk WAL: round trips, and what a torn or corrupted tail does on reopen.

import { strict as assert } from 'node:assert';
import { mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import type { Entry } from '../../src/raft/core/index.js';
import { newDataKey, WalCipher, WalKeyError } from '../../src/raft/wal/cipher.js';
import { frame, frameInSlices, parse, Wal } from '../../src/raft/wal/wal.js';

const cmd = (index: number, term: number, text: string): Entry => ({ kind: 'command', index, term, data: new TextEncoder().encode(text) });

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'raft-wal-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('wal: records survive a reopen, later entries replace a conflicting suffix', () =>
  withDir(async (dir) => {
    const { wal, storage, truncatedBytes } = await Wal.open(dir);
    assert.equal(truncatedBytes, 0);
    assert.equal(storage.entries.length, 0);
    await wal.append([
      { kind: 'entries', entries: [cmd(1, 1, 'a'), cmd(2, 1, 'b'), cmd(3, 1, 'c')] },
      { kind: 'hardState', hardState: { term: 1, vote: 'n1', commit: 1 } },
    ]);
    await wal.append([{ kind: 'entries', entries: [cmd(3, 2, 'C'), cmd(4, 2, 'd')] }]);
    await wal.sync();
    await wal.close();
    const again = await Wal.open(dir);
    assert.deepEqual(
      again.storage.entries.map((e) => [e.index, e.term]),
      [
        [1, 1],
        [2, 1],
        [3, 2],
        [4, 2],
      ],
    );
    const e3 = again.storage.entries[2];
    assert.equal(e3?.kind === 'command' ? new TextDecoder().decode(e3.data) : null, 'C');
    assert.deepEqual(again.storage.hardState, { term: 1, vote: 'n1', commit: 1 });
    await again.wal.close();
  }));

test('wal: a torn last record is detected, cut off, and appending continues after the good prefix', () =>
  withDir(async (dir) => {
    const { wal } = await Wal.open(dir);
    await wal.append([{ kind: 'entries', entries: [cmd(1, 1, 'a')] }]);
    await wal.append([{ kind: 'hardState', hardState: { term: 1, vote: null, commit: 1 } }]);
    await wal.append([{ kind: 'entries', entries: [cmd(2, 1, 'b')] }]);
    await wal.sync();
    await wal.close();
    const full = (await stat(join(dir, 'wal'))).size;
    // The crash tore the last write three bytes short.
    await truncate(join(dir, 'wal'), full - 3);
    const torn = await Wal.open(dir);
    assert.ok(torn.truncatedBytes > 0);
    assert.deepEqual(
      torn.storage.entries.map((e) => e.index),
      [1],
    );
    assert.equal(torn.storage.hardState.commit, 1);
    await torn.wal.append([{ kind: 'entries', entries: [cmd(2, 2, 'b2')] }]);
    await torn.wal.sync();
    await torn.wal.close();
    const after = await Wal.open(dir);
    assert.equal(after.truncatedBytes, 0);
    assert.deepEqual(
      after.storage.entries.map((e) => [e.index, e.term]),
      [
        [1, 1],
        [2, 2],
      ],
    );
    await after.wal.close();
  }));

test('wal: a record whose bytes fail the checksum ends the log there', () =>
  withDir(async (dir) => {
    const { wal } = await Wal.open(dir);
    await wal.append([{ kind: 'entries', entries: [cmd(1, 1, 'a')] }]);
    await wal.append([{ kind: 'entries', entries: [cmd(2, 1, 'bbbbbbbb')] }]);
    await wal.sync();
    await wal.close();
    const path = join(dir, 'wal');
    const data = await readFile(path);
    // Flip one byte inside the last record's payload (a sector written half-way).
    const flipped = Buffer.from(data);
    const i = flipped.indexOf('YmJi'); // base64 of "bbb"
    assert.ok(i > 0);
    flipped[i] = flipped[i] === 0x41 ? 0x42 : 0x41;
    await writeFile(path, flipped);
    const opened = await Wal.open(dir);
    assert.deepEqual(
      opened.storage.entries.map((e) => e.index),
      [1],
    );
    assert.ok(opened.truncatedBytes > 0);
    assert.ok((await stat(path)).size < data.length);
    await opened.wal.close();
  }));

test('wal: rewrite after a snapshot keeps only the snapshot and the entries after it', () =>
  withDir(async (dir) => {
    const { wal } = await Wal.open(dir);
    const entries = Array.from({ length: 50 }, (_, i) => cmd(i + 1, 1, `v${i + 1}`));
    await wal.append([{ kind: 'entries', entries }]);
    const snapshot = { meta: { index: 40, term: 1, membership: { voters: ['n1'], learners: [] } }, data: new TextEncoder().encode('state@40') };
    await wal.append([{ kind: 'snapshot', snapshot }]);
    await wal.sync();
    const before = (await stat(join(dir, 'wal'))).size;
    await wal.rewrite({ hardState: { term: 1, vote: 'n1', commit: 50 }, snapshot, entries: entries.slice(40) });
    await wal.append([{ kind: 'entries', entries: [cmd(51, 1, 'v51')] }]);
    await wal.sync();
    await wal.close();
    assert.ok((await stat(join(dir, 'wal'))).size < before);
    const again = await Wal.open(dir);
    assert.equal(again.storage.snapshot?.meta.index, 40);
    assert.equal(new TextDecoder().decode(again.storage.snapshot?.data), 'state@40');
    assert.deepEqual(
      again.storage.entries.map((e) => e.index),
      Array.from({ length: 11 }, (_, i) => 41 + i),
    );
    assert.equal(again.storage.hardState.commit, 50);
    await again.wal.close();
  }));

test('wal: sealed with a data key, no record is readable on disk; it reopens with the key, and a torn sealed tail is still cut off', () =>
  withDir(async (dir) => {
    const key = newDataKey('k1');
    const { wal } = await Wal.open(dir, { cipher: new WalCipher(key) });
    await wal.append([{ kind: 'entries', entries: [cmd(1, 1, 'top-secret-alpha'), cmd(2, 1, 'top-secret-beta')] }]);
    await wal.append([{ kind: 'snapshot', snapshot: { meta: { index: 1, term: 1, membership: { voters: ['n1'], learners: [] } }, data: new TextEncoder().encode('snapshot-secret-gamma') } }]);
    await wal.append([{ kind: 'hardState', hardState: { term: 1, vote: 'n1', commit: 2 } }]);
    await wal.sync();
    await wal.close();
    const raw = await readFile(join(dir, 'wal'));
    for (const secret of ['top-secret', 'snapshot-secret', 'dG9wLXNlY3JldC1hbHBoYQ', 'entries', 'hardState']) assert.equal(raw.includes(secret), false, `${secret} readable on disk`);
    const again = await Wal.open(dir, { cipher: new WalCipher(key) });
    assert.equal(again.truncatedBytes, 0);
    assert.deepEqual(again.storage.hardState, { term: 1, vote: 'n1', commit: 2 });
    assert.deepEqual(
      again.storage.entries.map((e) => e.index),
      [2],
    );
    assert.equal(new TextDecoder().decode(again.storage.snapshot?.data), 'snapshot-secret-gamma');
    await again.wal.close();
    await truncate(join(dir, 'wal'), raw.length - 5);
    const torn = await Wal.open(dir, { cipher: new WalCipher(key) });
    assert.ok(torn.truncatedBytes > 0);
    assert.equal(torn.storage.hardState.commit, 0);
    assert.deepEqual(
      torn.storage.entries.map((e) => e.index),
      [2],
    );
    await torn.wal.close();
  }));

test('wal: a sealed log refuses to open without its key or with the wrong one, and is left intact', () =>
  withDir(async (dir) => {
    const { wal } = await Wal.open(dir, { cipher: new WalCipher(newDataKey('k1')) });
    await wal.append([{ kind: 'entries', entries: [cmd(1, 1, 'a')] }]);
    await wal.sync();
    await wal.close();
    const before = await readFile(join(dir, 'wal'));
    await assert.rejects(Wal.open(dir), (err: Error) => err instanceof WalKeyError && /encrypted at rest; start the node with its data key/.test(err.message));
    await assert.rejects(Wal.open(dir, { cipher: new WalCipher(newDataKey('k2')) }), /sealed with data key "k1", which this node was not given/);
    await assert.rejects(Wal.open(dir, { cipher: new WalCipher(newDataKey('k1')) }), /does not authenticate/);
    assert.deepEqual(await readFile(join(dir, 'wal')), before);
  }));

test('wal: a plain log opens with a key (encryption turned on later), and after rotation old records open with the previous key', () =>
  withDir(async (dir) => {
    const plain = await Wal.open(dir);
    await plain.wal.append([{ kind: 'entries', entries: [cmd(1, 1, 'a')] }]);
    await plain.wal.sync();
    await plain.wal.close();
    const k1 = newDataKey('k1');
    const cipher = new WalCipher(k1);
    const sealed = await Wal.open(dir, { cipher });
    assert.equal(sealed.storage.entries.length, 1);
    await sealed.wal.append([{ kind: 'entries', entries: [cmd(2, 1, 'b')] }]);
    const k2 = newDataKey('k2');
    cipher.rotate(k2);
    await sealed.wal.append([{ kind: 'entries', entries: [cmd(3, 1, 'c')] }]);
    await sealed.wal.sync();
    await sealed.wal.close();
    const both = await Wal.open(dir, { cipher: new WalCipher(k2, [k1]) });
    assert.deepEqual(
      both.storage.entries.map((e) => e.index),
      [1, 2, 3],
    );
    // A rewrite seals everything with the current key: the old one is no longer needed.
    await both.wal.rewrite(both.storage);
    await both.wal.close();
    const onlyNew = await Wal.open(dir, { cipher: new WalCipher(k2) });
    assert.equal(onlyNew.storage.entries.length, 3);
    await onlyNew.wal.close();
  }));

test('wal: a snapshot is stored as raw bytes (no base64 or JSON pass over the state), sealed or not, and old JSON snapshot records still open', () =>
  withDir(async (dir) => {
    const data = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
    const snapshot = { meta: { index: 5, term: 2, membership: { voters: ['n1'], learners: [] } }, data };
    for (const cipher of [null, new WalCipher(newDataKey('k1'))]) {
      const sub = join(dir, cipher === null ? 'plain' : 'sealed');
      const { wal } = await Wal.open(sub, { cipher });
      await wal.rewrite({ hardState: { term: 2, vote: null, commit: 5 }, snapshot, entries: [] });
      await wal.close();
      const size = (await stat(join(sub, 'wal'))).size;
      assert.ok(size < data.length + 400, `${size} bytes on disk for a ${data.length} byte state`);
      const again = await Wal.open(sub, { cipher });
      assert.deepEqual(again.storage.snapshot, snapshot);
      await again.wal.close();
    }
    // A log written before the binary form: the snapshot record as JSON with base64.
    const legacy = join(dir, 'legacy');
    const payload = Buffer.from(JSON.stringify({ kind: 'snapshot', snapshot: { meta: snapshot.meta, data: { $b64: Buffer.from(data).toString('base64') } } }));
    const header = Buffer.alloc(8);
    header.writeUInt32LE(payload.length, 0);
    header.writeUInt32LE(crc32(payload), 4);
    await mkdir(legacy, { recursive: true });
    await writeFile(join(legacy, 'wal'), Buffer.concat([header, payload]));
    const old = await Wal.open(legacy);
    assert.deepEqual(old.storage.snapshot, snapshot);
    await old.wal.close();
  }));

test('wal: a large snapshot framed in slices is the same record (plain: byte for byte; sealed: opens to the same snapshot)', async () => {
  const data = new Uint8Array(3 * (1 << 20) + 12345).map((_, i) => (i * 13) & 0xff);
  const record = { kind: 'snapshot' as const, snapshot: { meta: { index: 9, term: 3, membership: { voters: ['n1', 'n2'], learners: [] } }, data } };
  assert.deepEqual(await frameInSlices(record), frame(record));
  const cipher = new WalCipher(newDataKey('k1'));
  const sealed = await frameInSlices(record, cipher);
  const { records, validBytes } = parse(sealed, cipher);
  assert.equal(validBytes, sealed.length);
  assert.deepEqual(records, [record]);
});
