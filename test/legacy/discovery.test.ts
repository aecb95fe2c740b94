import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expandRanges, parseEntries } from '../../legacy/discovery/ranges.js';
import { createDiscovery } from '../../legacy/discovery/index.js';
import { parseDuration } from '../../legacy/cli/duration.js';
import { parseListen } from '../../legacy/cli/listen.js';
import { entryOf, renderEntry } from '../../legacy/cli/format.js';

const opts = { heartbeatMs: 20, ttlMs: 60, opts: {} };

test('ranges expand as classic wrote them', () => {
  assert.deepEqual(expandRanges('10.0.0.[10:12]:2375'), ['10.0.0.10:2375', '10.0.0.11:2375', '10.0.0.12:2375']);
  assert.deepEqual(expandRanges('10.0.[1:2].1:[2375:2376]'), ['10.0.1.1:2375', '10.0.1.1:2376', '10.0.2.1:2375', '10.0.2.1:2376']);
  assert.throws(() => expandRanges('10.0.0.[5:1]:2375'), /start is after end/);
});

test('entries: commas, lines, comments, duplicates, bad addresses', () => {
  assert.deepEqual(parseEntries('# engines\n10.0.0.1:2375, 10.0.0.2:2375\n\n10.0.0.1:2375\n'), ['10.0.0.1:2375', '10.0.0.2:2375']);
  assert.throws(() => parseEntries('10.0.0.1'), /expected host:port/);
  assert.throws(() => parseEntries('10.0.0.1:99999'), /expected host:port/);
});

test('nodes:// and a bare list are the same backend', async () => {
  for (const uri of ['nodes://10.0.0.1:2375,10.0.0.[2:3]:2375', '10.0.0.1:2375,10.0.0.[2:3]:2375']) {
    const d = createDiscovery(uri, opts);
    for await (const addrs of d.watch(new AbortController().signal)) {
      assert.deepEqual(addrs, ['10.0.0.1:2375', '10.0.0.2:2375', '10.0.0.3:2375']);
      break;
    }
  }
});

test('token:// is refused with the reason and what to use instead', () => {
  assert.throws(() => createDiscovery('token://0ac50ef75c9739f5bfeeaf00503d4e6e', opts), /shut down in 2019.*consul:\/\//);
  assert.throws(() => createDiscovery('bogus://x', opts), /unsupported discovery backend 'bogus:\/\/'; supported: .*file:\/\//);
});

test('file:// follows the file and keeps the last list while it is unreadable', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'swarmshift-file-'));
  const file = join(dir, 'cluster');
  try {
    writeFileSync(file, '10.0.0.1:2375\n');
    const d = createDiscovery(`file://${file}`, opts);
    const ac = new AbortController();
    const seen: string[][] = [];
    for await (const addrs of d.watch(ac.signal)) {
      seen.push(addrs);
      if (seen.length === 1) {
        rmSync(file);
        await new Promise((r) => setTimeout(r, 60));
        writeFileSync(file, '10.0.0.[1:2]:2375\n');
      } else {
        ac.abort();
      }
    }
    assert.deepEqual(seen, [['10.0.0.1:2375'], ['10.0.0.1:2375', '10.0.0.2:2375']]);
    assert.throws(() => createDiscovery('file://relative/path', opts), /absolute path/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('durations are Go-style', () => {
  assert.equal(parseDuration('30s', '--x'), 30_000);
  assert.equal(parseDuration('1m30s', '--x'), 90_000);
  assert.equal(parseDuration('500ms', '--x'), 500);
  assert.equal(parseDuration('20', '--x'), 20_000);
  assert.throws(() => parseDuration('fast', '--heartbeat'), /invalid duration 'fast' for --heartbeat/);
});

test('listen addresses as classic and dockerd accept them', () => {
  assert.deepEqual(parseListen(':4000'), { kind: 'tcp', host: '0.0.0.0', port: 4000 });
  assert.deepEqual(parseListen('tcp://127.0.0.1:3376'), { kind: 'tcp', host: '127.0.0.1', port: 3376 });
  assert.deepEqual(parseListen('unix:///var/run/swarm.sock'), { kind: 'unix', path: '/var/run/swarm.sock' });
  assert.throws(() => parseListen('unix://relative.sock'), /absolute path/);
  assert.throws(() => parseListen('tcp://0.0.0.0:http'), /invalid port/);
});

test('swarm list --format renders each engine as Docker formats list entries', () => {
  const e = entryOf('10.0.0.5:2375');
  assert.equal(renderEntry('{{.IP}} {{.Port}}', e), '10.0.0.5 2375');
  assert.equal(renderEntry('{{.Addr}}\\t{{ .IP }}', e), '10.0.0.5:2375\t10.0.0.5');
  assert.equal(renderEntry('{{json .}}', e), '{"Addr":"10.0.0.5:2375","IP":"10.0.0.5","Port":"2375"}');
  assert.throws(() => renderEntry('{{.Name}}', e), /can't evaluate field Name; fields are .Addr, .IP, .Port/);
});
