import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  createScheduler,
  filterNames,
  normaliseCreate,
  registerFilter,
  registerStrategy,
  strategyNames,
} from '../../../legacy/scheduler/index.js';
import type { ContainerSpec, ScheduleResult, SchedNode } from '../../../legacy/scheduler/index.js';
import { GiB, container, names, node, sequence, spec, withEnv } from './fixtures.js';

const allFilters = ['health', 'port', 'containerslots', 'dependency', 'affinity', 'constraint', 'whitelist'];

function chosen(result: ScheduleResult): string[] {
  assert.ok(result.ok, result.ok ? '' : result.message);
  return names(result.nodes);
}

function failure(result: ScheduleResult): string {
  assert.ok(!result.ok, 'expected scheduling to fail');
  return result.message;
}

void describe('registry', () => {
  void it("lists classic's filters and strategies in classic's order", () => {
    assert.deepEqual(filterNames.slice(0, 7), allFilters);
    assert.deepEqual(strategyNames.slice(0, 3), ['spread', 'binpack', 'random']);
  });

  void it('throws for an unknown filter or strategy, naming the valid ones', () => {
    assert.throws(() => createScheduler({ filters: ['health', 'nope'], strategy: 'spread' }), {
      message: /unknown scheduler filter "nope" \(valid filters: health, port, containerslots, dependency, affinity, constraint, whitelist/,
    });
    assert.throws(() => createScheduler({ filters: [], strategy: 'pack' }), {
      message: /unknown scheduler strategy "pack" \(valid strategies: spread, binpack, random/,
    });
  });

  void it("accepts classic's old strategy name binpacking", () => {
    assert.equal(createScheduler({ filters: [], strategy: 'binpacking' }).strategy, 'binpack');
  });

  void it('reports its filters and strategy for docker info', () => {
    const scheduler = createScheduler({ filters: ['health', 'port'], strategy: 'random' });
    assert.deepEqual(scheduler.filters, ['health', 'port']);
    assert.equal(scheduler.strategy, 'random');
  });

  void it('runs registered filters and strategies by name, and refuses duplicates', () => {
    registerFilter('even-cpus', {
      filter: (_spec, nodes) => {
        const kept = nodes.filter((n) => n.totalCpus % 2 === 0);
        return kept.length > 0 ? { ok: true, nodes: kept } : { ok: false, reason: 'no even node' };
      },
      conditions: () => ({ ok: true, items: ['even cpus'] }),
    });
    registerStrategy('by-name', {
      rank: (_spec, nodes) => ({ ok: true, nodes: [...nodes].sort((a, b) => b.name.localeCompare(a.name)) }),
    });
    assert.ok(filterNames.includes('even-cpus'));
    assert.ok(strategyNames.includes('by-name'));
    const scheduler = createScheduler({ filters: ['even-cpus'], strategy: 'by-name' });
    const nodes = [node('a1', { totalCpus: 2 }), node('b1', { totalCpus: 3 }), node('c1', { totalCpus: 4 })];
    assert.deepEqual(chosen(scheduler.select(spec(), nodes)), ['c1', 'a1']);
    assert.equal(
      failure(scheduler.select(spec(), [node('b1', { totalCpus: 3 })])),
      'Unable to find a node that satisfies the following conditions \n[even cpus]',
    );
    assert.throws(() => registerFilter('health', { filter: () => ({ ok: true, nodes: [] }), conditions: () => ({ ok: true, items: [] }) }), {
      message: /already registered/,
    });
  });
});

void describe('select', () => {
  const scheduler = createScheduler({ filters: allFilters, strategy: 'spread' });

  void it('returns the fitting nodes best first', () => {
    const nodes = [node('node-0', { containers: [container('a1', { memory: GiB })] }), node('node-1'), node('node-2', { healthy: false })];
    assert.deepEqual(chosen(scheduler.select(spec({ HostConfig: { Memory: GiB } }), nodes)), ['node-1', 'node-0']);
  });

  void it("lists each filter's conditions up to the one that failed", () => {
    const web = container('web', { publishedPorts: [{ hostIp: '0.0.0.0', hostPort: 80, protocol: 'tcp' }] });
    const nodes = [node('swarm-node-28', { containers: [web] }), node('swarm-node-29')];
    const request = spec({
      Env: ['constraint:node==swarm-node-28', 'affinity:container!=~nothing'],
      HostConfig: { PortBindings: { '443/tcp': [{ HostPort: '443' }], '80/tcp': [{ HostPort: '80' }] } },
    });
    assert.equal(
      failure(scheduler.select(request, nodes)),
      'Unable to find a node that satisfies the following conditions \n' +
        '[port 443 (Bridge mode) port 80 (Bridge mode)]\n' +
        '[available container slots]\n' +
        '[container!=nothing (soft=true)]\n' +
        '[node==swarm-node-28]',
    );
  });

  void it('stops the list at the failing filter', () => {
    const nodes = [node('node-0', { labels: { containerslots: '1' }, containers: [container('a1')] })];
    const result = scheduler.select(withEnv('constraint:node==node-0', 'affinity:image==redis'), nodes);
    assert.equal(failure(result), 'Unable to find a node that satisfies the following conditions \n[available container slots]');
    assert.ok(!result.ok);
    assert.equal(result.detail, 'No node with enough open slots available in the cluster');
  });

  void it('reports a malformed expression as classic did', () => {
    assert.equal(
      failure(scheduler.select(withEnv('constraint:node=node-0'), [node('node-0')])),
      'Unable to find a node that satisfies the following conditions \n[available container slots]\nerror from constraint filter: One of operator ==, != is expected',
    );
  });

  void it('reports unhealthy clusters on their own', () => {
    assert.equal(failure(scheduler.select(spec(), [node('n0', { healthy: false })])), 'No healthy node available in the cluster');
    assert.equal(failure(scheduler.select(spec(), [])), 'No healthy node available in the cluster');
  });

  void it('reports an empty cluster when no filter speaks for it', () => {
    const bare = createScheduler({ filters: ['port'], strategy: 'spread' });
    assert.equal(failure(bare.select(spec(), [])), 'No nodes available in the cluster');
  });

  void it('reports when no node has the resources', () => {
    assert.equal(
      failure(scheduler.select(spec({ HostConfig: { CpuShares: 10240 } }), [node('n0'), node('n1')])),
      'no resources available to schedule container',
    );
  });

  void it('honours soft rules when it can', () => {
    const nodes = [node('node-0', { labels: { storage: 'ssd' } }), node('node-1')];
    assert.deepEqual(chosen(scheduler.select(withEnv('constraint:storage==~ssd'), nodes)), ['node-0']);
  });

  void it('drops soft rules when nothing satisfies them', () => {
    const nodes = [node('node-0'), node('node-1', { containers: [container('a1')] })];
    assert.deepEqual(chosen(scheduler.select(withEnv('constraint:storage==~not_exist'), nodes)), ['node-0', 'node-1']);
    assert.deepEqual(
      chosen(scheduler.select(withEnv('constraint:storagedriver==~not_exist', 'constraint:node==node-1'), nodes)),
      ['node-1'],
    );
  });

  void it('drops soft rules when the matching node lacks resources', () => {
    const nodes = [
      node('node-0', { labels: { storage: 'ssd' }, containers: [container('big', { memory: 2 * GiB })] }),
      node('node-1'),
    ];
    assert.deepEqual(chosen(scheduler.select(spec({ Env: ['constraint:storage==~ssd'], HostConfig: { Memory: GiB } }), nodes)), [
      'node-1',
    ]);
  });

  void it('does not drop hard rules', () => {
    const nodes = [node('node-0'), node('node-1')];
    assert.equal(
      failure(scheduler.select(withEnv('constraint:storage==~ssd', 'constraint:region==eu'), nodes)),
      'Unable to find a node that satisfies the following conditions \n[available container slots]\n[storage==ssd region==eu]',
    );
  });

  void it('keeps a second create for the same port off the node a pending one was placed on', () => {
    const nodes: SchedNode[] = [node('node-0'), node('node-1')];
    const request = normaliseCreate(
      spec({ HostConfig: { PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '80' }] } } }),
      () => 'a'.repeat(64),
    );
    const first = chosen(scheduler.select(request, nodes));
    assert.equal(first[0], 'node-0');
    // The pool records the create as pending on the chosen node before the engine answers.
    const pending = container('', {
      id: '',
      names: [],
      state: 'pending',
      publishedPorts: [{ hostIp: '', hostPort: 80, protocol: 'tcp' }],
    });
    const withPending = nodes.map((n) => (n.name === 'node-0' ? { ...n, containers: [pending] } : n));
    assert.deepEqual(chosen(scheduler.select(request, withPending)), ['node-1']);
    const bothTaken = withPending.map((n) => ({ ...n, containers: [pending] }));
    assert.equal(
      failure(scheduler.select(request, bothTaken)),
      'Unable to find a node that satisfies the following conditions \n[port 80 (Bridge mode)]',
    );
  });

  void it('co-locates dependencies across the whole pipeline', () => {
    const nodes = [node('node-0'), node('node-1', { containers: [container('b1')] })];
    const request: ContainerSpec = spec({ HostConfig: { VolumesFrom: ['/b1:ro'], Links: ['/b1:foo'] } });
    assert.deepEqual(chosen(scheduler.select(request, nodes)), ['node-1']);
    assert.equal(
      failure(scheduler.select(spec({ HostConfig: { NetworkMode: 'container:missing' } }), nodes)),
      'Unable to find a node that satisfies the following conditions \n[available container slots]\n[--net=container:missing]',
    );
  });

  void it('uses the injected random source with the random strategy', () => {
    const random = createScheduler({ filters: ['health'], strategy: 'random' });
    const nodes = [node('a1'), node('b1'), node('c1')];
    assert.deepEqual(chosen(random.select(spec(), nodes, sequence(0))), ['b1', 'c1', 'a1']);
    assert.deepEqual(chosen(random.select(spec(), nodes, sequence(0.99))), ['a1', 'b1', 'c1']);
  });

  void it('honours the configured overcommit', () => {
    const strict = createScheduler({ filters: [], strategy: 'spread', overcommit: 0 });
    const generous = createScheduler({ filters: [], strategy: 'spread', overcommit: 0.5 });
    const n = node('n0', { totalMemory: 1000, containers: [container('a1', { memory: 900 })] });
    const request = spec({ HostConfig: { Memory: 200 } });
    assert.equal(failure(strict.select(request, [n])), 'no resources available to schedule container');
    assert.deepEqual(chosen(generous.select(request, [n])), ['n0']);
  });
});
