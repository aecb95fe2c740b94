import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { binpackStrategy } from '../../../legacy/scheduler/strategies/binpack.js';
import { randomStrategy } from '../../../legacy/scheduler/strategies/random.js';
import { spreadStrategy } from '../../../legacy/scheduler/strategies/spread.js';
import { withOvercommit } from '../../../legacy/scheduler/strategies/weigh.js';
import type { ContainerSpec, SchedNode, Strategy } from '../../../legacy/scheduler/index.js';
import { GiB, container, names, node, sequence, spec } from './fixtures.js';

const context = { overcommit: 0.05, rand: Math.random };

function ranked(strategy: Strategy, request: ContainerSpec, nodes: SchedNode[], overcommit = 0.05): string[] {
  const outcome = strategy.rank(request, nodes, { ...context, overcommit });
  assert.ok(outcome.ok, outcome.ok ? '' : outcome.message);
  return names(outcome.nodes);
}

const memory = (bytes: number) => spec({ HostConfig: { Memory: bytes } });
const cpus = (n: number) => spec({ HostConfig: { CpuShares: n } });

void describe('spread', () => {
  void it('puts the least loaded node first', () => {
    const nodes = [
      node('busy', { containers: [container('db', { memory: GiB })] }),
      node('idle'),
    ];
    assert.deepEqual(ranked(spreadStrategy, memory(GiB), nodes), ['idle', 'busy']);
  });

  void it('follows the docs example: a second 1G container goes to the other 2G node', () => {
    const nodes = [node('node-1', { containers: [container('db', { memory: GiB })] }), node('node-2')];
    assert.deepEqual(ranked(spreadStrategy, memory(GiB), nodes)[0], 'node-2');
  });

  void it('breaks equal weights by fewest containers', () => {
    const nodes = [
      node('two', { containers: [container('a1'), container('a2')] }),
      node('one', { containers: [container('b1')] }),
    ];
    assert.deepEqual(ranked(spreadStrategy, spec(), nodes), ['one', 'two']);
  });

  void it('prefers a node with a better health indicator', () => {
    const nodes = [node('flaky', { healthIndicator: 50 }), node('busy-but-sound', { containers: [container('c1', { memory: GiB })] })];
    assert.deepEqual(ranked(spreadStrategy, memory(GiB / 2), nodes), ['busy-but-sound', 'flaky']);
  });
});

void describe('binpack', () => {
  void it('puts the most loaded node that still fits first', () => {
    const nodes = [node('idle'), node('busy', { containers: [container('db', { memory: GiB })] })];
    assert.deepEqual(ranked(binpackStrategy, memory(GiB), nodes), ['busy', 'idle']);
  });

  void it('skips a node the container no longer fits on', () => {
    const nodes = [node('idle'), node('full', { containers: [container('db', { memory: 2 * GiB })] })];
    assert.deepEqual(ranked(binpackStrategy, memory(GiB), nodes), ['idle']);
  });

  void it('breaks equal weights by most containers', () => {
    const nodes = [
      node('one', { containers: [container('b1')] }),
      node('two', { containers: [container('a1'), container('a2')] }),
    ];
    assert.deepEqual(ranked(binpackStrategy, spec(), nodes), ['two', 'one']);
  });

  void it('prefers a healthy node over a fuller flaky one', () => {
    const nodes = [node('flaky', { healthIndicator: 50, containers: [container('c1', { memory: GiB })] }), node('sound')];
    assert.deepEqual(ranked(binpackStrategy, memory(GiB / 2), nodes), ['sound', 'flaky']);
  });
});

void describe('resource accounting', () => {
  void it('counts CpuShares as CPUs and sums every container, stopped and pending too', () => {
    const nodes = [
      node('n', {
        totalCpus: 4,
        containers: [
          container('a1', { cpuShares: 1, state: 'exited' }),
          container('a2', { cpuShares: 1, state: 'pending' }),
          container('a3', { cpuShares: 1 }),
        ],
      }),
    ];
    assert.deepEqual(ranked(spreadStrategy, cpus(1), nodes, 0), ['n']);
    const outcome = spreadStrategy.rank(cpus(2), nodes, { ...context, overcommit: 0 });
    assert.deepEqual(outcome, { ok: false, message: 'no resources available to schedule container' });
  });

  void it('allows the overcommit ratio on top of the node size', () => {
    const n = node('n', { totalMemory: 1000, containers: [container('a1', { memory: 1000 })] });
    assert.deepEqual(ranked(spreadStrategy, memory(50), [n], 0.05), ['n']);
    assert.equal(spreadStrategy.rank(memory(51), [n], context).ok, false);
    assert.equal(spreadStrategy.rank(memory(50), [n], { ...context, overcommit: 0 }).ok, false);
    assert.deepEqual(ranked(spreadStrategy, memory(200), [n], 0.2), ['n']);
  });

  void it('applies overcommit in whole percent with truncation, as classic did', () => {
    assert.equal(withOvercommit(2, 0.05), 2);
    assert.equal(withOvercommit(20, 0.05), 21);
    assert.equal(withOvercommit(1000, 0.055), 1050);
    assert.equal(withOvercommit(1000, 0.29), 1290);
    assert.equal(withOvercommit(1000, 0), 1000);
    assert.equal(withOvercommit(1000, -0.1), 900);
  });

  void it('rejects a request larger than any node', () => {
    const outcome = binpackStrategy.rank(memory(1000 * GiB), [node('a1'), node('b1')], context);
    assert.deepEqual(outcome, { ok: false, message: 'no resources available to schedule container' });
  });

  void it('does not check a resource the container does not ask for', () => {
    const overloaded = node('n', { totalCpus: 1, containers: [container('a1', { cpuShares: 8 })] });
    assert.deepEqual(ranked(spreadStrategy, memory(GiB), [overloaded]), ['n']);
  });
});

void describe('random', () => {
  void it('shuffles with the injected source', () => {
    const nodes = [node('a1'), node('b1'), node('c1')];
    const first = randomStrategy.rank(spec(), nodes, { overcommit: 0.05, rand: sequence(0) });
    assert.ok(first.ok);
    assert.deepEqual(names(first.nodes), ['b1', 'c1', 'a1']);
    const identity = randomStrategy.rank(spec(), nodes, { overcommit: 0.05, rand: sequence(0.99) });
    assert.ok(identity.ok);
    assert.deepEqual(names(identity.nodes), ['a1', 'b1', 'c1']);
    assert.deepEqual(names(nodes), ['a1', 'b1', 'c1'], 'the input order is left alone');
  });

  void it('ignores CPU and memory, as classic did', () => {
    const outcome = randomStrategy.rank(memory(1000 * GiB), [node('a1')], { overcommit: 0.05, rand: sequence(0.5) });
    assert.ok(outcome.ok);
    assert.deepEqual(names(outcome.nodes), ['a1']);
  });
});
