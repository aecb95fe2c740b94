// jsonArrayInSlices: the same text as JSON.stringify, whatever the slice boundaries.

import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { jsonArrayInSlices } from '../../src/raft/driver/index.js';

test('jsonArrayInSlices: equals JSON.stringify for empty, exact and ragged slicing, and yields between slices', async () => {
  const items = Array.from({ length: 10 }, (_, i) => ({ i, s: `v"${i}\n`, nested: [i, null, { x: i % 2 === 0 }] }));
  for (const slice of [1, 3, 5, 10, 100]) {
    for (const list of [[], items.slice(0, 1), items]) assert.equal((await jsonArrayInSlices(list, slice)).toString('utf8'), JSON.stringify(list));
  }
  // Other work runs while a big array is serialised.
  let turns = 0;
  const timer = setInterval(() => turns++, 0);
  await jsonArrayInSlices(Array.from({ length: 200_000 }, (_, i) => [`key-${i}`, 'x'.repeat(50)]), 2_000);
  clearInterval(timer);
  assert.ok(turns > 5, `only ${turns} timer turns during the serialisation`);
});
