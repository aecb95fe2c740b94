import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  affinitiesOf,
  constraintsOf,
  hasNodeConstraint,
  normaliseCreate,
  requestedResources,
  reschedulePolicies,
  validateCreate,
  whitelistsOf,
  withHint,
} from '../../../legacy/scheduler/index.js';
import { spec } from './fixtures.js';

const fixedId = () => 'f'.repeat(64);

void describe('normaliseCreate', () => {
  void it('moves scheduling hints out of Env into labels and adds a Swarm ID', () => {
    const out = normaliseCreate(
      spec({
        Env: [
          'PATH=/bin',
          'constraint:node==node-1',
          'affinity:container==web',
          'constraint:storage==~ssd',
          'reschedule:on-node-failure',
          'whitelist:node==node-1|node-2',
          'URL=http://x:80',
        ],
      }),
      fixedId,
    );
    assert.deepEqual(out.config.Env, ['PATH=/bin', 'URL=http://x:80']);
    assert.deepEqual(out.config.Labels, {
      'com.docker.swarm.affinities': '["container==web"]',
      'com.docker.swarm.constraints': '["node==node-1","storage==~ssd"]',
      'com.docker.swarm.reschedule-policies': '["on-node-failure"]',
      'com.docker.swarm.whitelists': '["node==node-1|node-2"]',
      'com.docker.swarm.id': fixedId(),
    });
  });

  void it('appends Env hints after those already in labels', () => {
    const out = normaliseCreate(
      spec({
        Env: ['constraint:zone==b'],
        Labels: { 'com.docker.swarm.constraints': '["zone!=c"]', app: 'web' },
      }),
      fixedId,
    );
    assert.equal(out.config.Labels?.['com.docker.swarm.constraints'], '["zone!=c","zone==b"]');
    assert.equal(out.config.Labels?.app, 'web');
    assert.deepEqual(constraintsOf(out), ['zone!=c', 'zone==b']);
  });

  void it('keeps an existing Swarm ID (a rescheduled container keeps its identity)', () => {
    const out = normaliseCreate(spec({ Labels: { 'com.docker.swarm.id': 'abc' } }), () => {
      throw new Error('must not be called');
    });
    assert.equal(out.config.Labels?.['com.docker.swarm.id'], 'abc');
  });

  void it('leaves unknown fields and a missing Env alone, and does not modify its input', () => {
    const input = spec({ Cmd: ['sh'], HostConfig: { Privileged: true, Memory: 5 }, Env: ['constraint:node==a1'] });
    const snapshot = structuredClone(input);
    const out = normaliseCreate(input, fixedId);
    assert.deepEqual(input, snapshot);
    assert.deepEqual(out.config.Cmd, ['sh']);
    assert.deepEqual(out.config.HostConfig, { Privileged: true, Memory: 5 });
    const noEnv = normaliseCreate(spec({}), fixedId);
    assert.equal(noEnv.config.Env, undefined);
  });

  void it('ignores a hint label that is not a JSON array of strings', () => {
    const out = normaliseCreate(
      spec({ Labels: { 'com.docker.swarm.affinities': 'not json' }, Env: ['affinity:image==redis'] }),
      fixedId,
    );
    assert.deepEqual(affinitiesOf(out), ['image==redis']);
  });

  void it('leaves Env entries with other prefixes, and without colons, untouched', () => {
    const out = normaliseCreate(spec({ Env: ['constraints:x==y', 'affinity', 'A=affinity:x==y'] }), fixedId);
    assert.deepEqual(out.config.Env, ['constraints:x==y', 'affinity', 'A=affinity:x==y']);
    assert.deepEqual(affinitiesOf(out), []);
  });
});

void describe('hint readers', () => {
  void it('read hints still in Env, so an un-normalised spec schedules the same', () => {
    const raw = spec({ Env: ['constraint:node==a1', 'affinity:image==redis', 'whitelist:node==n1'] });
    assert.deepEqual(constraintsOf(raw), ['node==a1']);
    assert.deepEqual(affinitiesOf(raw), ['image==redis']);
    assert.deepEqual(whitelistsOf(raw), ['node==n1']);
    const normalised = normaliseCreate(raw, fixedId);
    assert.deepEqual(constraintsOf(normalised), ['node==a1']);
  });

  void it('reschedulePolicies reads the label', () => {
    assert.deepEqual(reschedulePolicies({ 'com.docker.swarm.reschedule-policies': '["on-node-failure"]' }), [
      'on-node-failure',
    ]);
    assert.deepEqual(reschedulePolicies({}), []);
  });

  void it('hasNodeConstraint is true only for a hard node== constraint', () => {
    assert.equal(hasNodeConstraint(spec({ Env: ['constraint:node==n1'] })), true);
    assert.equal(hasNodeConstraint(spec({ Env: ['constraint:node==~n1'] })), false);
    assert.equal(hasNodeConstraint(spec({ Env: ['constraint:node!=n1'] })), false);
  });

  void it('withHint adds an expression without touching the input', () => {
    const base = spec({ Labels: { 'com.docker.swarm.affinities': '["container==a1"]' } });
    const added = withHint(base, 'affinity', 'image==busybox');
    assert.deepEqual(affinitiesOf(added), ['container==a1', 'image==busybox']);
    assert.deepEqual(affinitiesOf(base), ['container==a1']);
  });

  void it('requestedResources reads HostConfig, and the pre-1.7 top-level fields when set', () => {
    assert.deepEqual(requestedResources({ HostConfig: { CpuShares: 2, Memory: 100 } }), { cpus: 2, memory: 100 });
    assert.deepEqual(requestedResources({ CpuShares: 1, Memory: 50, HostConfig: { CpuShares: 2 } }), {
      cpus: 1,
      memory: 50,
    });
    assert.deepEqual(requestedResources({}), { cpus: 0, memory: 0 });
  });
});

void describe('validateCreate', () => {
  const withPolicies = (value: string) => spec({ Labels: { 'com.docker.swarm.reschedule-policies': value } });

  void it('accepts no policy, off and on-node-failure', () => {
    assert.deepEqual(validateCreate(spec()), { ok: true });
    assert.deepEqual(validateCreate(withPolicies('["off"]')), { ok: true });
    assert.deepEqual(validateCreate(withPolicies('["on-node-failure"]')), { ok: true });
  });

  void it("rejects an unknown policy and more than one, with classic's messages", () => {
    assert.deepEqual(validateCreate(withPolicies('["false"]')), {
      ok: false,
      message: 'invalid reschedule policy: false',
    });
    assert.deepEqual(validateCreate(withPolicies('["off","on-node-failure"]')), {
      ok: false,
      message: 'too many reschedule policies',
    });
  });
});
