import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { affinityFilter } from '../../../legacy/scheduler/filters/affinity.js';
import { constraintFilter } from '../../../legacy/scheduler/filters/constraint.js';
import { dependencyFilter } from '../../../legacy/scheduler/filters/dependency.js';
import { healthFilter } from '../../../legacy/scheduler/filters/health.js';
import { portFilter } from '../../../legacy/scheduler/filters/port.js';
import { containerSlotsFilter } from '../../../legacy/scheduler/filters/slots.js';
import { whitelistFilter } from '../../../legacy/scheduler/filters/whitelist.js';
import type { ContainerSpec, Filter, SchedNode } from '../../../legacy/scheduler/index.js';
import { container, image, node, spec, withEnv } from './fixtures.js';

function accepted(filter: Filter, request: ContainerSpec, nodes: SchedNode[], enforceSoft = true): string[] {
  const outcome = filter.filter(request, nodes, enforceSoft);
  assert.ok(outcome.ok, `expected the filter to accept some node, got ${outcome.ok ? '' : outcome.reason}`);
  return outcome.nodes.map((n) => n.name);
}

function rejection(filter: Filter, request: ContainerSpec, nodes: SchedNode[], enforceSoft = true): string {
  const outcome = filter.filter(request, nodes, enforceSoft);
  assert.ok(!outcome.ok, `expected the filter to reject every node, kept ${outcome.ok ? outcome.nodes.length : 0}`);
  return outcome.reason;
}

void describe('health filter', () => {
  void it('keeps only healthy nodes', () => {
    const nodes = [node('n0', { healthy: false }), node('n1'), node('n2', { healthy: false })];
    assert.deepEqual(accepted(healthFilter, spec(), nodes), ['n1']);
  });

  void it('reports no healthy node on its own, not as a condition list', () => {
    const outcome = healthFilter.filter(spec(), [node('n0', { healthy: false })], true);
    assert.deepEqual(outcome, { ok: false, reason: 'No healthy node available in the cluster', standalone: true });
    assert.deepEqual(healthFilter.conditions(spec()), { ok: true, items: [] });
  });
});

void describe('containerslots filter', () => {
  const full = node('full', { labels: { containerslots: '2' }, containers: [container('a1'), container('a2')] });
  const open = node('open', { labels: { containerslots: '3' }, containers: [container('b1'), container('b2')] });

  void it('keeps nodes below their containerslots label', () => {
    assert.deepEqual(accepted(containerSlotsFilter, spec(), [full, open]), ['open']);
  });

  void it('counts exited and pending containers too', () => {
    const n = node('n', {
      labels: { containerslots: '2' },
      containers: [container('x1', { state: 'exited' }), container('x2', { state: 'pending' })],
    });
    assert.equal(rejection(containerSlotsFilter, spec(), [n]), 'No node with enough open slots available in the cluster');
  });

  void it('does not limit nodes without the label or with a non-integer one', () => {
    const many = [container('c1'), container('c2'), container('c3')];
    const unlabelled = node('unlabelled', { containers: many });
    const invalid = node('invalid', { labels: { containerslots: 'foo' }, containers: many });
    const zero = node('zero', { labels: { containerslots: '0' } });
    assert.deepEqual(accepted(containerSlotsFilter, spec(), [unlabelled, invalid, zero]), ['unlabelled', 'invalid']);
  });

  void it('always lists "available container slots" as its condition', () => {
    assert.deepEqual(containerSlotsFilter.conditions(spec()), { ok: true, items: ['available container slots'] });
  });
});

void describe('constraint filter', () => {
  const nodes = [
    node('node-0', { labels: { storage: 'ssd', region: 'us-east', storagedriver: 'overlay2' } }),
    node('node-1', { labels: { storage: 'disk', region: 'us-west', kernelversion: '6.1.0-18-amd64' } }),
    node('node-2', { labels: { storage: 'disk', region: 'eu-west' } }),
  ];

  void it('matches node by name or by ID', () => {
    assert.deepEqual(accepted(constraintFilter, withEnv('constraint:node==node-1'), nodes), ['node-1']);
    assert.deepEqual(accepted(constraintFilter, withEnv('constraint:node==node-2-id'), nodes), ['node-2']);
    assert.deepEqual(accepted(constraintFilter, withEnv('constraint:node!=node-1'), nodes), ['node-0', 'node-2']);
  });

  void it('matches engine labels and node attributes with globs and regexps', () => {
    assert.deepEqual(accepted(constraintFilter, withEnv('constraint:storage==ssd'), nodes), ['node-0']);
    assert.deepEqual(accepted(constraintFilter, withEnv('constraint:region==us*'), nodes), ['node-0', 'node-1']);
    assert.deepEqual(accepted(constraintFilter, withEnv('constraint:region!=us*'), nodes), ['node-2']);
    assert.deepEqual(accepted(constraintFilter, withEnv('constraint:node==/node-[02]/'), nodes), ['node-0', 'node-2']);
    assert.deepEqual(accepted(constraintFilter, withEnv('constraint:storagedriver==overlay*'), nodes), ['node-0']);
    assert.deepEqual(accepted(constraintFilter, withEnv('constraint:kernelversion==6.1*'), nodes), ['node-1']);
  });

  void it('treats a missing label as an empty value', () => {
    assert.deepEqual(accepted(constraintFilter, withEnv('constraint:kernelversion!=6.1*'), nodes), ['node-0', 'node-2']);
    assert.match(rejection(constraintFilter, withEnv('constraint:gpu==yes'), nodes), /constraint gpu==yes/);
  });

  void it('reads constraints from the com.docker.swarm.constraints label', () => {
    const labelled = spec({ Labels: { 'com.docker.swarm.constraints': '["storage==disk","region==eu*"]' } });
    assert.deepEqual(accepted(constraintFilter, labelled, nodes), ['node-2']);
  });

  void it('requires every expression', () => {
    assert.deepEqual(accepted(constraintFilter, withEnv('constraint:storage==disk', 'constraint:region==us*'), nodes), [
      'node-1',
    ]);
    assert.equal(
      rejection(constraintFilter, withEnv('constraint:storage==ssd', 'constraint:region==eu*'), nodes),
      'unable to find a node that satisfies the constraint region==eu*',
    );
  });

  void it('enforces soft expressions on the first pass and skips them on the second', () => {
    const request = withEnv('constraint:storage==~nvme', 'constraint:region==us*');
    assert.match(rejection(constraintFilter, request, nodes, true), /storage==nvme/);
    assert.deepEqual(accepted(constraintFilter, request, nodes, false), ['node-0', 'node-1']);
    // A satisfiable soft rule narrows the choice on the first pass.
    assert.deepEqual(accepted(constraintFilter, withEnv('constraint:storage==~ssd'), nodes, true), ['node-0']);
  });

  void it('fails on a malformed expression', () => {
    assert.equal(rejection(constraintFilter, withEnv('constraint:node=node-1'), nodes), 'One of operator ==, != is expected');
    assert.deepEqual(constraintFilter.conditions(withEnv('constraint:node=node-1')), {
      ok: false,
      error: 'One of operator ==, != is expected',
    });
  });

  void it('lists its expressions without the soft marker', () => {
    assert.deepEqual(constraintFilter.conditions(withEnv('constraint:node==n1', 'constraint:zone!=~b')), {
      ok: true,
      items: ['node==n1', 'zone!=b'],
    });
  });
});

void describe('affinity filter', () => {
  const frontendId = '87c4376856a8' + 'a'.repeat(52);
  const nodes = [
    node('node-0', {
      containers: [container('frontend', { id: frontendId, labels: { 'com.example.type': 'frontend' } })],
      images: [image('sha256:06a1f75304ba' + 'b'.repeat(52), ['redis:latest', 'localhost:5000/test:1'])],
    }),
    node('node-1', {
      containers: [container('db', { state: 'exited', labels: { 'com.example.type': 'db' } })],
      images: [image('sha256:' + 'c'.repeat(64), ['mysql:8'])],
    }),
    node('node-2'),
  ];

  void it('container== matches a container name, full ID or short ID', () => {
    assert.deepEqual(accepted(affinityFilter, withEnv('affinity:container==frontend'), nodes), ['node-0']);
    assert.deepEqual(accepted(affinityFilter, withEnv(`affinity:container==${frontendId}`), nodes), ['node-0']);
    assert.deepEqual(accepted(affinityFilter, withEnv('affinity:container==87c4376856a8'), nodes), ['node-0']);
    assert.deepEqual(accepted(affinityFilter, withEnv('affinity:container==87c4*'), nodes), ['node-0']);
  });

  void it('counts stopped containers', () => {
    assert.deepEqual(accepted(affinityFilter, withEnv('affinity:container==db'), nodes), ['node-1']);
  });

  void it('container!= keeps nodes without a matching container', () => {
    assert.deepEqual(accepted(affinityFilter, withEnv('affinity:container!=frontend'), nodes), ['node-1', 'node-2']);
  });

  void it('image== matches repo:tag, repo without tag, image ID and short ID', () => {
    assert.deepEqual(accepted(affinityFilter, withEnv('affinity:image==redis'), nodes), ['node-0']);
    assert.deepEqual(accepted(affinityFilter, withEnv('affinity:image==redis:latest'), nodes), ['node-0']);
    assert.deepEqual(accepted(affinityFilter, withEnv('affinity:image==localhost:5000/test'), nodes), ['node-0']);
    assert.deepEqual(accepted(affinityFilter, withEnv('affinity:image==06a1f75304ba'), nodes), ['node-0']);
    assert.deepEqual(accepted(affinityFilter, withEnv('affinity:image==mysql:8'), nodes), ['node-1']);
    assert.deepEqual(accepted(affinityFilter, withEnv('affinity:image!=redis'), nodes), ['node-1', 'node-2']);
    assert.equal(
      rejection(affinityFilter, withEnv('affinity:image==redis:7'), nodes),
      'unable to find a node that satisfies the affinity image==redis:7',
    );
  });

  void it('other keys match labels of containers on the node', () => {
    assert.deepEqual(accepted(affinityFilter, withEnv('affinity:com.example.type==frontend'), nodes), ['node-0']);
    assert.deepEqual(accepted(affinityFilter, withEnv('affinity:com.example.type!=frontend'), nodes), [
      'node-1',
      'node-2',
    ]);
  });

  void it('reads affinities from the com.docker.swarm.affinities label', () => {
    const labelled = spec({ Labels: { 'com.docker.swarm.affinities': '["container==db"]' } });
    assert.deepEqual(accepted(affinityFilter, labelled, nodes), ['node-1']);
  });

  void it('skips soft affinities on the second pass', () => {
    const request = withEnv('affinity:image==~postgres');
    assert.match(rejection(affinityFilter, request, nodes, true), /image==postgres/);
    assert.deepEqual(accepted(affinityFilter, request, nodes, false), ['node-0', 'node-1', 'node-2']);
  });

  void it('lists its expressions with the soft marker', () => {
    assert.deepEqual(affinityFilter.conditions(withEnv('affinity:container==*kubelet*', 'affinity:container!=~x*')), {
      ok: true,
      items: ['container==*kubelet* (soft=false)', 'container!=x* (soft=true)'],
    });
  });
});

void describe('whitelist filter', () => {
  const nodes = [node('node-0'), node('node-1'), node('node-2'), node('node-3')];

  void it('keeps nodes named in the |-separated list', () => {
    assert.deepEqual(accepted(whitelistFilter, withEnv('whitelist:node==node-1|node-2|node-9'), nodes), [
      'node-1',
      'node-2',
    ]);
  });

  void it('intersects several whitelists', () => {
    const request = withEnv('whitelist:node==node-0|node-1|node-2', 'whitelist:node==node-1|node-2|node-3');
    assert.deepEqual(accepted(whitelistFilter, request, nodes), ['node-1', 'node-2']);
  });

  void it('matches names exactly, not as globs', () => {
    assert.equal(
      rejection(whitelistFilter, withEnv('whitelist:node==node-*'), nodes),
      'unable to find a node that satisfies the whitelist node==node-*',
    );
  });

  void it('keeps every node when there is no whitelist', () => {
    assert.equal(accepted(whitelistFilter, spec(), nodes).length, 4);
  });

  void it('reads the com.docker.swarm.whitelists label', () => {
    const labelled = spec({ Labels: { 'com.docker.swarm.whitelists': '["node==node-3"]' } });
    assert.deepEqual(accepted(whitelistFilter, labelled, nodes), ['node-3']);
  });
});

void describe('dependency filter', () => {
  const b1 = container('b1', { id: 'aaaabbbbcccc' + '1'.repeat(52), labels: { 'com.docker.swarm.id': 'e'.repeat(64) } });
  const b2 = container('b2');
  const nodes = [node('node-0', { containers: [b2] }), node('node-1', { containers: [b1] }), node('node-2')];

  void it('co-locates --volumes-from with the named container, with or without a slash or mode', () => {
    for (const ref of ['b1', '/b1', '/b1:ro', 'b1:rw']) {
      assert.deepEqual(accepted(dependencyFilter, spec({ HostConfig: { VolumesFrom: [ref] } }), nodes), ['node-1'], ref);
    }
  });

  void it('co-locates --link name:alias', () => {
    assert.deepEqual(accepted(dependencyFilter, spec({ HostConfig: { Links: ['/b1:foo'] } }), nodes), ['node-1']);
  });

  void it('co-locates --net=container:X', () => {
    assert.deepEqual(accepted(dependencyFilter, spec({ HostConfig: { NetworkMode: 'container:b2' } }), nodes), [
      'node-0',
    ]);
  });

  void it('resolves IDs, short IDs, Swarm IDs, unique prefixes and node/name references', () => {
    for (const ref of [b1.id, 'aaaabbbbcccc', 'e'.repeat(64), 'eeeeeeeeeeee', 'aaaab', 'node-1/b1']) {
      assert.deepEqual(accepted(dependencyFilter, spec({ HostConfig: { VolumesFrom: [ref] } }), nodes), ['node-1'], ref);
    }
  });

  void it('fails when the dependencies are on different nodes or do not exist', () => {
    const split = spec({ HostConfig: { VolumesFrom: ['b1'], NetworkMode: 'container:b2' } });
    assert.equal(
      rejection(dependencyFilter, split, nodes),
      'Unable to find a node fulfilling all dependencies: --volumes-from=b1 --net=container:b2',
    );
    assert.match(rejection(dependencyFilter, spec({ HostConfig: { Links: ['nope:x'] } }), nodes), /--link=nope:x/);
  });

  void it('keeps every node when there is no dependency', () => {
    assert.equal(accepted(dependencyFilter, spec({ HostConfig: { NetworkMode: 'bridge' } }), nodes).length, 3);
  });

  void it('lists its dependencies as flags', () => {
    assert.deepEqual(
      dependencyFilter.conditions(spec({ HostConfig: { VolumesFrom: ['a1:ro'], Links: ['b1:db'], NetworkMode: 'container:c1' } })),
      { ok: true, items: ['--volumes-from=a1:ro', '--link=b1:db', '--net=container:c1'] },
    );
  });
});

void describe('port filter', () => {
  const bound = (hostPort: number, fields: { hostIp?: string; protocol?: 'tcp' | 'udp' } = {}) => ({
    hostIp: fields.hostIp ?? '0.0.0.0',
    hostPort,
    protocol: fields.protocol ?? 'tcp',
  });
  const publish = (hostPort: string, hostIp = '', containerPort = '80/tcp') =>
    spec({ HostConfig: { PortBindings: { [containerPort]: [{ HostIp: hostIp, HostPort: hostPort }] } } });

  void it('skips nodes where the host port is already bound', () => {
    const nodes = [
      node('node-0', { containers: [container('web', { publishedPorts: [bound(80)] })] }),
      node('node-1', { containers: [container('api', { publishedPorts: [bound(8080)] })] }),
    ];
    assert.deepEqual(accepted(portFilter, publish('80'), nodes), ['node-1']);
    assert.equal(rejection(portFilter, publish('8080'), nodes.slice(1)), 'unable to find a node with port 8080 available');
  });

  void it('counts exited containers, which keep their binding', () => {
    const nodes = [node('node-0', { containers: [container('old', { state: 'exited', publishedPorts: [bound(80)] })] })];
    assert.match(rejection(portFilter, publish('80'), nodes), /port 80/);
  });

  void it('counts pending creates, so two racing creates for one port land apart', () => {
    const nodes = [
      node('node-0', { containers: [container('pending', { id: '', state: 'pending', publishedPorts: [bound(80)] })] }),
      node('node-1'),
    ];
    assert.deepEqual(accepted(portFilter, publish('80'), nodes), ['node-1']);
  });

  void it('lets different addresses share a port, but not with an all-interfaces binding', () => {
    const specific = [node('node-0', { containers: [container('a1', { publishedPorts: [bound(80, { hostIp: '10.0.0.1' })] })] })];
    assert.deepEqual(accepted(portFilter, publish('80', '10.0.0.2'), specific), ['node-0']);
    assert.match(rejection(portFilter, publish('80', '10.0.0.1'), specific), /port 80/);
    assert.match(rejection(portFilter, publish('80', ''), specific), /port 80/);
    assert.match(rejection(portFilter, publish('80', '0.0.0.0'), specific), /port 80/);
    const wildcard = [node('node-0', { containers: [container('a1', { publishedPorts: [bound(80, { hostIp: '::' })] })] })];
    assert.match(rejection(portFilter, publish('80', '10.0.0.2'), wildcard), /port 80/);
  });

  void it('lets tcp and udp share a port number', () => {
    const nodes = [node('node-0', { containers: [container('dns', { publishedPorts: [bound(53, { protocol: 'udp' })] })] })];
    assert.deepEqual(accepted(portFilter, publish('53', '', '53/tcp'), nodes), ['node-0']);
    assert.match(rejection(portFilter, publish('53', '', '53/udp'), nodes), /port 53/);
  });

  void it('ignores bindings without a host port (the engine picks one)', () => {
    const nodes = [node('node-0', { containers: [container('a1', { publishedPorts: [bound(80)] })] })];
    assert.deepEqual(accepted(portFilter, publish(''), nodes), ['node-0']);
    assert.deepEqual(portFilter.conditions(publish('')), { ok: true, items: [] });
  });

  void it('accepts a host port range while any port in it is free', () => {
    const nodes = [node('node-0', { containers: [container('a1', { publishedPorts: [bound(8000), bound(8001)] })] })];
    assert.deepEqual(accepted(portFilter, publish('8000-8002'), nodes), ['node-0']);
    assert.match(rejection(portFilter, publish('8000-8001'), nodes), /port 8000-8001/);
  });

  void it('in host network mode, requires every exposed port to be free', () => {
    const hostMode = spec({ ExposedPorts: { '80/tcp': {} }, HostConfig: { NetworkMode: 'host' } });
    const nodes = [
      node('node-0', { containers: [container('h1', { networkMode: 'host', publishedPorts: [bound(80, { hostIp: '' })] })] }),
      node('node-1', { containers: [container('b1', { publishedPorts: [bound(80, { hostIp: '127.0.0.1' })] })] }),
      node('node-2', { containers: [container('u1', { publishedPorts: [bound(80, { protocol: 'udp' })] })] }),
    ];
    assert.deepEqual(accepted(portFilter, hostMode, nodes), ['node-2']);
    assert.equal(
      rejection(portFilter, hostMode, nodes.slice(0, 2)),
      'unable to find a node with port 80/tcp available in the Host mode',
    );
  });

  void it('ignores ExposedPorts outside host mode', () => {
    const exposedOnly = spec({ ExposedPorts: { '80/tcp': {} } });
    const nodes = [node('node-0', { containers: [container('a1', { publishedPorts: [bound(80)] })] })];
    assert.deepEqual(accepted(portFilter, exposedOnly, nodes), ['node-0']);
  });

  void it('lists ports the way classic did', () => {
    const bridge = spec({
      HostConfig: { PortBindings: { '443/tcp': [{ HostPort: '443' }], '80/tcp': [{ HostIp: '', HostPort: '80' }] } },
    });
    assert.deepEqual(portFilter.conditions(bridge), { ok: true, items: ['port 443 (Bridge mode)', 'port 80 (Bridge mode)'] });
    const host = spec({ ExposedPorts: { '80/tcp': {}, '53/udp': {} }, HostConfig: { NetworkMode: 'host' } });
    assert.deepEqual(portFilter.conditions(host), { ok: true, items: ['port 80/tcp (Host mode)', 'port 53/udp (Host mode)'] });
  });
});
