// Root CA rotation: a new root cross-signed by the old; nodes of both roots verify each
// other (openssl, and real mutual TLS handshakes between an old node that trusts only the
// old root and a new node); the rotation finishes only when no node is pending.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { test } from 'node:test';
import {
  CertificateError,
  createRootCA,
  finishRootRotation,
  generateKey,
  issuer,
  issueNodeCertificate,
  nodesPending,
  rootsToTrust,
  startRootRotation,
  tokenRoot,
  trustedRoots,
  verifyNodeCertificate,
  type CaState,
  type RootCA,
} from '../../src/ca/index.js';

const now = new Date();

function node(nodeId: string, ca: RootCA, chainPems: readonly string[] = []): { nodeId: string; certPem: string; keyPem: string; chainPem: string } {
  const key = generateKey();
  const certPem = issueNodeCertificate(ca, { nodeId, role: 'manager', clusterId: 'c1', publicKey: createPublicKey(key.privateKey), now });
  return { nodeId, certPem, keyPem: key.keyPem, chainPem: certPem + chainPems.join('') };
}

test('rotation: the cross-signed root carries new certificates to nodes that trust only the old root', () => {
  const steady: CaState = { phase: 'steady', root: createRootCA({ now }) };
  const rotating = startRootRotation(steady, now);
  assert.equal(rotating.phase, 'rotating');
  if (rotating.phase !== 'rotating' || steady.phase !== 'steady') return;
  const { ca, chainPems } = issuer(rotating);
  assert.equal(ca.certPem, rotating.next.certPem);
  assert.deepEqual(trustedRoots(rotating), [steady.root.certPem, rotating.next.certPem]);
  assert.equal(tokenRoot(rotating).digest, steady.root.digest);

  const fresh = node('n2', ca, chainPems);
  const old = node('n1', steady.root);
  assert.equal(verifyNodeCertificate(fresh.certPem, [steady.root.certPem], now, chainPems).nodeId, 'n2');
  assert.equal(verifyNodeCertificate(fresh.certPem, trustedRoots(rotating), now).nodeId, 'n2');
  assert.equal(verifyNodeCertificate(old.certPem, trustedRoots(rotating), now).nodeId, 'n1');
  assert.throws(() => verifyNodeCertificate(fresh.certPem, [steady.root.certPem], now), (e: unknown) => e instanceof CertificateError && e.code === 'untrusted');
  // A cross-signature from a root nobody trusts carries nothing.
  const foreign = startRootRotation({ phase: 'steady', root: createRootCA({ now }) }, now, rotating.next);
  if (foreign.phase !== 'rotating') return;
  assert.throws(() => verifyNodeCertificate(fresh.certPem, [steady.root.certPem], now, [foreign.crossSignedPem]), CertificateError);

  // The real openssl builds the same paths, strictly.
  const dir = mkdtempSync(join(tmpdir(), 'ca-rotation-'));
  try {
    const f = (name: string, text: string): string => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    const oldRoot = f('old.pem', steady.root.certPem);
    const newRoot = f('new.pem', rotating.next.certPem);
    const cross = f('cross.pem', rotating.crossSignedPem);
    const leaf = f('leaf.pem', fresh.certPem);
    const verify = (args: string[]): string => execFileSync('openssl', ['verify', '-x509_strict', '-purpose', 'sslclient', ...args, leaf], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.match(verify(['-CAfile', oldRoot, '-untrusted', cross]), /OK/);
    assert.match(verify(['-CAfile', newRoot]), /OK/);
    assert.throws(() => verify(['-CAfile', oldRoot]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rotation: an old node (trusting only the old root) and a new node handshake both ways over mutual TLS', async () => {
  const steady: CaState = { phase: 'steady', root: createRootCA({ now }) };
  const rotating = startRootRotation(steady, now);
  if (steady.phase !== 'steady') return;
  const { ca, chainPems } = issuer(rotating);
  const oldNode = { ...node('old', steady.root), trust: [steady.root.certPem] };
  const newNode = { ...node('new', ca, chainPems), trust: [...trustedRoots(rotating)] };
  const handshake = async (server: typeof oldNode, client: typeof oldNode): Promise<string> => {
    const listener = tls.createServer({ key: server.keyPem, cert: server.chainPem, ca: server.trust, requestCert: true, rejectUnauthorized: true }, (s) => s.end(String(s.getPeerCertificate().subject.CN)));
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    try {
      return await new Promise<string>((resolve, reject) => {
        const port = (listener.address() as { port: number }).port;
        const s = tls.connect({ host: '127.0.0.1', port, servername: 'swarm-manager', key: client.keyPem, cert: client.chainPem, ca: client.trust }, () => {
          let text = '';
          s.on('data', (d: Buffer) => (text += d.toString()));
          s.on('end', () => resolve(`${String(s.getPeerCertificate().subject.CN)} saw ${text}`));
        });
        s.on('error', reject);
      });
    } finally {
      listener.close();
    }
  };
  assert.equal(await handshake(oldNode, newNode), 'old saw new');
  assert.equal(await handshake(newNode, oldNode), 'new saw old');
  // Without the cross-signed certificate the old node cannot verify the new one.
  const bare = { ...newNode, chainPem: newNode.certPem };
  await assert.rejects(handshake(bare, oldNode));
});

test('rotation: finishes only when every node holds a certificate of the new root', () => {
  const steady: CaState = { phase: 'steady', root: createRootCA({ now }) };
  let state = startRootRotation(steady, now);
  if (steady.phase !== 'steady') return;
  const a = node('a', steady.root);
  const b = node('b', steady.root);
  assert.deepEqual(nodesPending(state, [a, b]), ['a', 'b']);
  assert.throws(() => finishRootRotation(state, nodesPending(state, [a, b])), /cannot finish: 2 node\(s\) still hold certificates of the old root \(a, b\)/);
  const a2 = node('a', issuer(state).ca, issuer(state).chainPems);
  assert.deepEqual(nodesPending(state, [a2, b]), ['b']);
  // Rotating again mid-rotation starts over from the root every node trusts.
  const again = startRootRotation(state, now);
  if (again.phase !== 'rotating' || state.phase !== 'rotating') return;
  assert.equal(again.old.digest, steady.root.digest);
  assert.notEqual(again.next.digest, state.next.digest);
  const b2 = node('b', issuer(state).ca);
  const done = finishRootRotation(state, nodesPending(state, [a2, b2]));
  assert.equal(done.phase, 'steady');
  assert.deepEqual(trustedRoots(done), [state.next.certPem]);
  state = done;
  assert.deepEqual(nodesPending(state, [a]), []);
});

test('rotation: a node learns a new root only through a cross-signature by a root it trusts', () => {
  const steady: CaState = { phase: 'steady', root: createRootCA({ now }) };
  const rotating = startRootRotation(steady, now);
  if (rotating.phase !== 'rotating' || steady.phase !== 'steady') return;
  const old = [steady.root.certPem];
  const rogue = createRootCA({ now }).certPem;
  assert.deepEqual(rootsToTrust(old, trustedRoots(rotating), [rotating.crossSignedPem]), trustedRoots(rotating));
  // Offered without the cross-signature, or a root nobody vouched for: not taken.
  assert.deepEqual(rootsToTrust(old, trustedRoots(rotating), []), old);
  assert.deepEqual(rootsToTrust(old, [steady.root.certPem, rogue], [rotating.crossSignedPem]), old);
  assert.deepEqual(rootsToTrust(old, [rogue], []), old);
  // A cross-signature by an untrusted root vouches for nothing.
  const foreign = startRootRotation({ phase: 'steady', root: createRootCA({ now }) }, now, rotating.next);
  if (foreign.phase !== 'rotating') return;
  assert.deepEqual(rootsToTrust(old, trustedRoots(rotating), [foreign.crossSignedPem]), old);
  // After the rotation the old root is dropped when the swarm no longer names it.
  assert.deepEqual(rootsToTrust(trustedRoots(rotating), [rotating.next.certPem], []), [rotating.next.certPem]);
});
