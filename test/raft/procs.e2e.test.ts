// Real processes: raftkv members (one raft node per process, gRPC between them, fsync on)
// on loopback addresses. kill -9 the leader under a write load and restart it; add a
// learner, promote it, remove a member; partition one member and heal. After each: every
// acknowledged write is readable, and every replica holds the same data.
//
// The partition is made with the transport's drop hook (POST /partition on the cut-off
// member: its raft traffic to and from every peer is dropped both ways, while its HTTP
// API stays up so that we can watch it), not SIGSTOP, which would also freeze its clock
// and so never exercise what an isolated member does: campaign (pre-vote) on its own.

import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ProcCluster } from './proc/cluster.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function withProcs(net: number, ids: string[], fn: (c: ProcCluster) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'raft-procs-'));
  const c = new ProcCluster({ root, net, args: ['--snapshot-interval', '500', '--keep-entries', '200'] });
  try {
    for (const id of ids) c.define(id);
    await Promise.all(ids.map((id) => c.start(id)));
    await fn(c);
  } catch (err) {
    for (const id of c.ids()) process.stderr.write(`--- ${id} stderr:\n${c.logOf(id)}\n`);
    throw err;
  } finally {
    await c.stopAll();
    await rm(root, { recursive: true, force: true });
  }
}

/** Writers putting unique keys until stopped; returns the keys whose write was acknowledged. */
function writeLoad(c: ProcCluster, writers: number): { stop: () => Promise<Map<string, string>> } {
  const acked = new Map<string, string>();
  let running = true;
  const loops = Array.from({ length: writers }, async (_, w) => {
    for (let seq = 0; running; seq++) {
      const key = `w${w}-${seq}`;
      try {
        await c.put(key, `v${seq}`, 15_000);
        acked.set(key, `v${seq}`);
      } catch {
        // Unacknowledged: it may or may not be applied; only acknowledged writes are checked.
      }
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return acked;
    },
  };
}

/** Every acknowledged write on every listed member, and the members identical. */
async function checkReplicas(c: ProcCluster, members: string[], acked: Map<string, string>): Promise<void> {
  const dumps = await Promise.all(members.map((id) => c.dump(id)));
  for (const [i, d] of dumps.entries()) {
    const missing = [...acked].filter(([k, v]) => d[k] !== v);
    assert.deepEqual(missing.slice(0, 5), [], `${members[i] ?? '?'} lacks ${missing.length} acknowledged writes`);
  }
  // Dumps are linearizable reads, but a follower may serve one from an older applied state
  // than another's: compare once they report the same content.
  const first = JSON.stringify(dumps[0]);
  for (let attempt = 0; ; attempt++) {
    const again = await Promise.all(members.map((id) => c.dump(id)));
    if (again.every((d) => JSON.stringify(d) === JSON.stringify(again[0]))) break;
    if (attempt > 50) assert.fail(`replicas differ (first had ${first.length} bytes)`);
    await sleep(100);
  }
}

async function killLeaderUnderLoad(c: ProcCluster, kills: number): Promise<void> {
  const load = writeLoad(c, 8);
  for (let k = 0; k < kills; k++) {
    await sleep(800);
    const leader = await c.leader();
    await c.kill(leader);
    await sleep(700);
    await c.start(leader);
  }
  await sleep(800);
  const acked = await load.stop();
  assert.ok(acked.size > 100, `only ${acked.size} writes acknowledged`);
  await checkReplicas(c, c.ids(), acked);
}

test('procs: 3 members, kill -9 the leader under load and restart it, twice: no acknowledged write lost, replicas identical', () =>
  withProcs(77, ['n1', 'n2', 'n3'], (c) => killLeaderUnderLoad(c, 2)));

test('procs: 5 members, kill -9 the leader under load and restart it, twice', () => withProcs(78, ['n1', 'n2', 'n3', 'n4', 'n5'], (c) => killLeaderUnderLoad(c, 2)));

test('procs: add a learner, promote it, remove a member, then partition one and heal', () =>
  withProcs(79, ['n1', 'n2', 'n3'], async (c) => {
    const load = writeLoad(c, 4);
    await sleep(500);
    c.define('n4');
    await c.start('n4', { join: true });
    let leader = await c.leader();
    const add = await c.call(leader, 'POST', '/members', { id: 'n4', address: c.raftAddress('n4'), role: 'learner' });
    assert.equal(add.status, 200, JSON.stringify(add.body));
    for (let i = 0; ; i++) {
      leader = await c.leader();
      const r = await c.call(leader, 'POST', '/members/n4/promote');
      if (r.status === 200) break;
      assert.ok(i < 100, `promote: ${JSON.stringify(r.body)}`);
      await sleep(100);
    }
    // Remove a member that is not the leader, and stop it.
    leader = await c.leader();
    const victim = ['n1', 'n2', 'n3'].find((id) => id !== leader) ?? 'n1';
    const rm = await c.call(leader, 'DELETE', `/members/${victim}`);
    assert.equal(rm.status, 200, JSON.stringify(rm.body));
    await c.stop(victim);
    const members = ['n1', 'n2', 'n3', 'n4'].filter((id) => id !== victim);
    const st = await c.status(leader);
    assert.deepEqual(st?.membership.voters, members);

    // Cut one follower off; the rest keep the same leader and term (pre-vote and the leader
    // lease keep the isolated one's campaigns from deposing anyone), and it catches up after.
    leader = await c.leader();
    const cut = members.find((id) => id !== leader) ?? 'n4';
    const before = await c.status(leader);
    await c.call(cut, 'POST', '/partition', { block: members.filter((id) => id !== cut) });
    await sleep(3000);
    const during = await c.status(leader);
    assert.equal(during?.role, 'leader');
    assert.equal(during?.term, before?.term, 'the isolated member deposed the leader');
    const cutStatus = await c.status(cut);
    assert.ok((cutStatus?.commit ?? 0) < (during?.commit ?? 0), 'the isolated member kept up: the partition did not hold');
    await c.call(cut, 'POST', '/partition', { block: [] });
    await sleep(1000);
    const acked = await load.stop();
    assert.ok(acked.size > 50, `only ${acked.size} writes acknowledged`);
    await checkReplicas(c, members, acked);
    const after = await c.status(leader);
    assert.equal(after?.term, before?.term, 'healing the partition caused an election');
  }));

test('procs: quorum lost for good — the survivor restarts with --force-new-cluster, keeps every acknowledged write, and grows a new cluster', () =>
  withProcs(84, ['n1', 'n2', 'n3'], async (c) => {
    const load = writeLoad(c, 4);
    await sleep(1500);
    const acked = await load.stop();
    assert.ok(acked.size > 20, `only ${acked.size} writes acknowledged`);
    // Two members die and never return; the third alone cannot elect anyone.
    const leader = await c.leader();
    const survivor = ['n1', 'n2', 'n3'].find((id) => id !== leader) ?? 'n1';
    for (const id of ['n1', 'n2', 'n3'].filter((id) => id !== survivor)) await c.kill(id);
    await c.stop(survivor);
    await c.start(survivor, { forceNewCluster: true, peers: [survivor] });
    assert.equal(await c.leader(10_000, [survivor]), survivor);
    await checkReplicas(c, [survivor], acked);
    const st = await c.status(survivor);
    assert.deepEqual(st?.membership, { voters: [survivor], learners: [] });
    // The new cluster takes writes and a new member, which receives everything.
    await c.put('after', 'force');
    c.define('n5');
    await c.start('n5', { join: true, peers: [survivor, 'n5'] });
    const add = await c.call(survivor, 'POST', '/members', { id: 'n5', address: c.raftAddress('n5'), role: 'voter' });
    assert.equal(add.status, 200, JSON.stringify(add.body));
    acked.set('after', 'force');
    await checkReplicas(c, [survivor, 'n5'], acked);
  }));
