// Go duration text, as Consul reads ?wait=, TTL and LockDelay and prints them in errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatGoDuration, parseGoDuration } from '../../src/consuldev/duration.js';

void test('parses what time.ParseDuration accepts', () => {
  const cases: Array<[string, bigint]> = [
    ['0', 0n],
    ['10s', 10_000_000_000n],
    ['1m30s', 90_000_000_000n],
    ['1.5h', 5_400_000_000_000n],
    ['300ms', 300_000_000n],
    ['1000ms', 1_000_000_000n],
    ['5m0s', 300_000_000_000n],
    ['1us', 1_000n],
    ['1µs', 1_000n],
    ['.5s', 500_000_000n],
    ['-1s', -1_000_000_000n],
    ['2h45m', 9_900_000_000_000n],
  ];
  for (const [text, ns] of cases) assert.deepEqual(parseGoDuration(text), { ok: true, ns }, text);
});

void test('rejects what it rejects, with its words', () => {
  assert.deepEqual(parseGoDuration(''), { ok: false, error: 'time: invalid duration ""' });
  assert.deepEqual(parseGoDuration('soon'), { ok: false, error: 'time: invalid duration "soon"' });
  assert.deepEqual(parseGoDuration('10'), { ok: false, error: 'time: missing unit in duration "10"' });
  assert.deepEqual(parseGoDuration('5x'), { ok: false, error: 'time: unknown unit "x" in duration "5x"' });
  assert.equal(parseGoDuration('.s').ok, false);
});

void test('prints as Duration.String does', () => {
  const cases: Array<[bigint, string]> = [
    [0n, '0s'],
    [10_000_000_000n, '10s'],
    [86_400_000_000_000n, '24h0m0s'],
    [90_000_000_000n, '1m30s'],
    [1_500_000_000n, '1.5s'],
    [200_000_000n, '200ms'],
    [1_500_000n, '1.5ms'],
    [1_000n, '1µs'],
    [15n, '15ns'],
    [-2_000_000_000n, '-2s'],
  ];
  for (const [ns, text] of cases) assert.equal(formatGoDuration(ns), text);
});
