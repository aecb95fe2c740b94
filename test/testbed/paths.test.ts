// The guard every testbed write and delete goes through, and the names a slot derives.
// Unit tests: no root, no engines.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { engineLayout, bridgeName, slotPrefix } from './layout.js';
import { LOCK_ROOT, WORK_ROOT, childPath, guardPath, slotDir, slotLockPath } from './paths.js';
import { parseOwner } from './slots.js';

void test('guardPath accepts only normalised absolute paths strictly inside the work or lock root', () => {
  assert.equal(guardPath(`${WORK_ROOT}/slot-3/engine0`), `${WORK_ROOT}/slot-3/engine0`);
  assert.equal(guardPath(`${LOCK_ROOT}/slot-3.lock`), `${LOCK_ROOT}/slot-3.lock`);
  for (const bad of [
    '',
    'etc/resolv.conf',
    '/etc/resolv.conf',
    '/',
    WORK_ROOT,
    `${WORK_ROOT}/`,
    `${WORK_ROOT}-evil/x`,
    `${WORK_ROOT}/../../etc/hosts`,
    `${WORK_ROOT}//slot-1`,
    `${WORK_ROOT}/./slot-1`,
    `/var/tmp/swarmshift-testbe/x`,
  ]) {
    assert.throws(() => guardPath(bad), /refusing/, `accepted ${JSON.stringify(bad)}`);
  }
});

void test('childPath refuses empty, dotted and slash-bearing segments (an unset variable cannot widen a path)', () => {
  assert.equal(childPath(WORK_ROOT, 'cache', 'busybox.tar'), `${WORK_ROOT}/cache/busybox.tar`);
  for (const segment of ['', '.', '..', 'a/b', '/etc', 'x\0y']) {
    assert.throws(() => childPath(WORK_ROOT, segment), /refusing/, `accepted segment ${JSON.stringify(segment)}`);
  }
  assert.throws(() => childPath('/etc', 'resolv.conf'), /refusing/);
});

void test('slot names carry the slot, stay within 15 characters and do not prefix another slot', () => {
  assert.throws(() => slotDir(0));
  assert.throws(() => slotDir(255));
  assert.throws(() => slotLockPath(1.5));
  const last = engineLayout(254, 199);
  for (const name of [last.netns, last.hostVeth, last.peerVeth, bridgeName(254)]) assert.ok(name.length <= 15, name);
  assert.equal(last.address, '10.213.254.210');
  const first = engineLayout(3, 0);
  assert.deepEqual([first.name, first.address, first.netns], ['tb3-node1', '10.213.3.11', 'ss3-e0']);
  assert.ok(!engineLayout(30, 0).netns.startsWith(slotPrefix(3)));
  assert.throws(() => engineLayout(3, 200));
});

void test('a lock file is read as an owner only when it is complete', () => {
  assert.deepEqual(parseOwner('{"pid":42,"start":"1234"}'), { pid: 42, start: '1234' });
  for (const bad of ['', '{', 'null', '{"pid":"42","start":"1"}', '{"pid":0,"start":"1"}', '{"pid":42}']) {
    assert.equal(parseOwner(bad), undefined, bad);
  }
});
