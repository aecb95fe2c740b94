// The CI batch of the deterministic raft simulation, plus the checkers' own tests: a
// checker that cannot fail proves nothing.
//
// RAFT_SIM_SEEDS and RAFT_SIM_FROM move the batch (e.g. a nightly run from a fresh offset).

import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { FakeDisk } from './sim/disk.js';
import { registerModel } from './sim/kv.js';
import type { KvInput } from './sim/kv.js';
import { checkLinearizable } from './sim/linearizability.js';
import type { Operation } from './sim/linearizability.js';
import { Prng } from './sim/prng.js';
import { runSeed } from './sim/sim.js';

const SEEDS = Number(process.env.RAFT_SIM_SEEDS ?? 10000);
const FROM = Number(process.env.RAFT_SIM_FROM ?? 1);

test(`simulation: ${SEEDS} seeds from ${FROM} keep every safety property and a linearizable history`, () => {
  const failures: string[] = [];
  let ops = 0;
  let leaders = 0;
  let crashes = 0;
  for (let seed = FROM; seed < FROM + SEEDS; seed++) {
    const r = runSeed(seed);
    ops += r.stats.opsOk;
    leaders += r.stats.leaders;
    crashes += r.stats.crashes;
    if (r.violations.length > 0) {
      failures.push(`seed ${seed} (${r.scenario}):\n    ${r.violations.join('\n    ')}\n    replay: npm run test:sim -- --seeds 1 --from ${seed} --trace`);
    }
  }
  assert.deepEqual(failures, []);
  // The runs must have done something worth checking.
  assert.ok(ops > SEEDS * 20, `only ${ops} client operations completed`);
  assert.ok(leaders > SEEDS * 2, `only ${leaders} leaders elected`);
  assert.ok(crashes > SEEDS, `only ${crashes} crashes`);
});

test('simulation: a seed replays identically', () => {
  const a = runSeed(4242, { trace: true });
  const b = runSeed(4242, { trace: true });
  assert.deepEqual(a.stats, b.stats);
  assert.deepEqual(a.trace, b.trace);
});

const put = (value: string, call: number, ret: number): Operation<KvInput, string | null> => ({ input: { op: 'put', value }, output: null, call, ret });
const append = (value: string, call: number, ret: number): Operation<KvInput, string | null> => ({ input: { op: 'append', value }, output: null, call, ret });
const get = (output: string, call: number, ret: number): Operation<KvInput, string | null> => ({ input: { op: 'get' }, output, call, ret });

test('linearizability checker accepts concurrent operations in some legal order', () => {
  // The first get overlaps both writes, so it may see either, neither or both...
  assert.equal(checkLinearizable(registerModel, [put('x', 0, 10), append('y', 1, 12), get('x', 2, 5), get('xy', 13, 14)]).result, 'ok');
  // ...but not 'y': that needs append before put, and then the final value would be 'x'.
  assert.equal(checkLinearizable(registerModel, [put('x', 0, 10), append('y', 1, 12), get('y', 2, 5), get('xy', 13, 14)]).result, 'illegal');
});

test('linearizability checker rejects a stale read after a completed write', () => {
  const ops = [put('a', 0, 1), put('b', 2, 3), get('a', 4, 5)];
  assert.equal(checkLinearizable(registerModel, ops).result, 'illegal');
});

test('linearizability checker lets an unacknowledged write take effect late or never', () => {
  const late = [put('a', 0, 1), put('b', 2, Infinity), get('a', 3, 4), get('b', 5, 6)];
  assert.equal(checkLinearizable(registerModel, late).result, 'ok');
  const never = [put('a', 0, 1), put('b', 2, Infinity), get('a', 3, 4), get('a', 5, 6)];
  assert.equal(checkLinearizable(registerModel, never).result, 'ok');
  const flipFlop = [put('a', 0, 1), put('b', 2, Infinity), get('b', 3, 4), get('a', 5, 6)];
  assert.equal(checkLinearizable(registerModel, flipFlop).result, 'illegal');
});

test('fake disk: a crash keeps what was fsynced and at most a prefix of the rest', () => {
  const rng = new Prng(7);
  for (let trial = 0; trial < 50; trial++) {
    const disk = new FakeDisk();
    disk.write({ kind: 'hardState', hardState: { term: 1, vote: 'a', commit: 0 } });
    disk.write({ kind: 'entries', entries: [{ kind: 'noop', index: 1, term: 1 }] });
    disk.fsync();
    disk.write({ kind: 'entries', entries: [{ kind: 'noop', index: 2, term: 1 }] });
    disk.write({ kind: 'hardState', hardState: { term: 2, vote: null, commit: 2 } });
    disk.crash(rng);
    const s = disk.recover();
    assert.ok(s.entries.length >= 1);
    // The commit record survives only if the entry written before it did.
    if (s.hardState.term === 2) assert.equal(s.entries.length, 2);
  }
});
