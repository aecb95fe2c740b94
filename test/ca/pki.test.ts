// src/ca: DER pieces against known encodings; join tokens; a root CA and node certificates
// read back by node:crypto, checked by the real openssl, and used for a real mutual TLS
// handshake; the refusals (another CA, expired, not yet valid, not a node).
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { createPublicKey, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { test } from 'node:test';
import { namedBits, oid, octetString, smallInteger, time, unsignedInteger } from '../../src/ca/der.js';
import {
  CertificateError,
  createRootCA,
  formatJoinToken,
  generateKey,
  identityOf,
  issueNodeCertificate,
  parseJoinToken,
  renewalTime,
  roleOfSecret,
  TokenError,
  verifyNodeCertificate,
} from '../../src/ca/index.js';

const hex = (b: Buffer): string => b.toString('hex');
const now = new Date('2026-11-22T12:00:00Z');

test('DER: object identifiers, integers, lengths, named bits and times encode as X.690 says', () => {
  assert.equal(hex(oid('1.2.840.10045.2.1')), '06072a8648ce3d0201');
  assert.equal(hex(oid('2.5.29.19')), '0603551d13');
  assert.equal(hex(smallInteger(0)), '020100');
  assert.equal(hex(smallInteger(2)), '020102');
  assert.equal(hex(smallInteger(128)), '02020080');
  assert.equal(hex(unsignedInteger(Buffer.from('0000ff', 'hex'))), '020200ff');
  assert.equal(hex(octetString(Buffer.alloc(200)).subarray(0, 3)), '0481c8');
  assert.equal(hex(octetString(Buffer.alloc(300)).subarray(0, 4)), '0482012c');
  // KeyUsage keyCertSign(5) + cRLSign(6): one byte 0x06, one unused bit.
  assert.equal(hex(namedBits([5, 6])), '03020106');
  // digitalSignature(0) + keyEncipherment(2): 0xa0, five unused bits.
  assert.equal(hex(namedBits([0, 2])), '030205a0');
  assert.equal(time(new Date('2026-11-22T12:34:56Z')).toString('latin1'), '\x17\x0d261122123456Z');
  assert.equal(time(new Date('2050-01-01T00:00:00Z')).toString('latin1'), '\x18\x0f20500101000000Z');
});

test('join tokens: Docker\'s format, read back; malformed ones refused with what to do; roles by secret', () => {
  const digest = 'ab'.repeat(32);
  const secret = randomBytes(16);
  const token = formatJoinToken(digest, secret);
  assert.match(token, /^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$/);
  const parsed = parseJoinToken(`  ${token}\n`);
  assert.equal(parsed.caDigest, digest);
  assert.equal(parsed.secret, token.slice(-25));
  // A token as Docker's API documentation shows one.
  const docs = parseJoinToken('SWMTKN-1-1h8aps2yszaiqmz2l3oc5392pgk8e49qhx2aj3nyv0ui0hez2a-6qmn92w6bu3jdvnglku58u11a');
  assert.equal(docs.caDigest.length, 64);
  assert.equal(docs.secret, '6qmn92w6bu3jdvnglku58u11a');
  // Leading zero bytes keep their width.
  assert.match(formatJoinToken('00'.repeat(32), Buffer.alloc(16)), /^SWMTKN-1-0{50}-0{25}$/);
  for (const bad of ['', 'SWMTKN-1-abc', 'SWMTKN-2-' + token.slice(9), token.replace('SWMTKN', 'TOKEN'), token.slice(0, -1), token.slice(0, 20) + 'A' + token.slice(21), `SWMTKN-1-${'z'.repeat(50)}-${'0'.repeat(25)}`]) {
    assert.throws(() => parseJoinToken(bad), (err: unknown) => err instanceof TokenError && /invalid join token/.test(err.message) && /docker swarm join-token/.test(err.message), bad);
  }
  const secrets = { worker: 'a'.repeat(25), manager: 'b'.repeat(25) };
  assert.equal(roleOfSecret('b'.repeat(25), secrets), 'manager');
  assert.equal(roleOfSecret('a'.repeat(25), secrets), 'worker');
  assert.equal(roleOfSecret('c'.repeat(25), secrets), undefined);
  assert.equal(roleOfSecret('a', secrets), undefined);
});

test('a root CA and node certificates: read back, verified by openssl, identities, renewal window', () => {
  const ca = createRootCA({ now });
  const caCert = new X509Certificate(ca.certPem);
  assert.equal(caCert.ca, true);
  assert.equal(caCert.subject, 'CN=swarm-ca');
  assert.ok(caCert.verify(caCert.publicKey));
  assert.equal(ca.digest, caCert.fingerprint256.replace(/:/g, '').toLowerCase());
  assert.equal(formatJoinToken(ca.digest, Buffer.alloc(16)).length, 85);

  const key = generateKey();
  const certPem = issueNodeCertificate(ca, { nodeId: 'n1abc', role: 'manager', clusterId: 'c0ffee', publicKey: createPublicKey(key.privateKey), now });
  const cert = new X509Certificate(certPem);
  assert.equal(cert.ca, false);
  assert.equal(cert.subjectAltName, 'DNS:swarm-manager, DNS:n1abc');
  assert.ok(cert.checkPrivateKey(key.privateKey));
  const who = verifyNodeCertificate(certPem, ca.certPem, now);
  assert.deepEqual({ nodeId: who.nodeId, role: who.role, clusterId: who.clusterId }, { nodeId: 'n1abc', role: 'manager', clusterId: 'c0ffee' });
  assert.equal(who.notAfter.getTime() - now.getTime(), 90 * 24 * 3600_000);
  assert.equal(now.getTime() - who.notBefore.getTime(), 3600_000);
  const at = renewalTime(who.notBefore, who.notAfter, 0);
  const late = renewalTime(who.notBefore, who.notAfter, 1);
  const span = who.notAfter.getTime() - who.notBefore.getTime();
  assert.equal(at.getTime() - who.notBefore.getTime(), span * 0.5);
  assert.equal(late.getTime() - who.notBefore.getTime(), span * 0.8);

  // The real openssl agrees: the chain verifies for both TLS purposes, strictly.
  const dir = mkdtempSync(join(tmpdir(), 'ca-test-'));
  try {
    writeFileSync(join(dir, 'ca.pem'), ca.certPem);
    writeFileSync(join(dir, 'node.pem'), certPem);
    for (const purpose of ['sslserver', 'sslclient']) {
      const out = execFileSync('openssl', ['verify', '-x509_strict', '-purpose', purpose, '-attime', String(now.getTime() / 1000), '-CAfile', join(dir, 'ca.pem'), join(dir, 'node.pem')], { encoding: 'utf8' });
      assert.match(out, /node\.pem: OK/);
    }
    const text = execFileSync('openssl', ['x509', '-noout', '-text', '-in', join(dir, 'node.pem')], { encoding: 'utf8' });
    assert.match(text, /ecdsa-with-SHA256/);
    assert.match(text, /Subject: O = c0ffee, OU = swarm-manager, CN = n1abc/);
    assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text, /X509v3 Authority Key Identifier/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('refusals: another CA, expired, not yet valid, not a node certificate, bad IDs', () => {
  const ca = createRootCA({ now });
  const other = createRootCA({ now });
  const publicKey = createPublicKey(generateKey().privateKey);
  const certPem = issueNodeCertificate(ca, { nodeId: 'w1', role: 'worker', clusterId: 'c1', publicKey, now, expiryMs: 3600_000 });
  const refused = (fn: () => unknown, code: string, text: RegExp): void => {
    assert.throws(fn, (err: unknown) => err instanceof CertificateError && err.code === code && text.test(err.message));
  };
  refused(() => verifyNodeCertificate(certPem, other.certPem, now), 'untrusted', /not signed by this swarm's CA.*join again/);
  refused(() => verifyNodeCertificate(certPem, ca.certPem, new Date(now.getTime() + 2 * 3600_000)), 'expired', /expired at .*leave and join again/);
  refused(() => verifyNodeCertificate(certPem, ca.certPem, new Date(now.getTime() - 2 * 3600_000)), 'notYetValid', /check this machine's clock/);
  refused(() => verifyNodeCertificate('not a certificate', ca.certPem, now), 'malformed', /does not read as X\.509/);
  refused(() => identityOf(new X509Certificate(ca.certPem)), 'notANode', /not a swarm node certificate/);
  refused(() => issueNodeCertificate(ca, { nodeId: 'Bad/ID', role: 'worker', clusterId: 'c1', publicKey, now }), 'malformed', /node ID/);
  refused(() => issueNodeCertificate(ca, { nodeId: 'n', role: 'worker', clusterId: 'c1', publicKey: 'junk', now }), 'malformed', /public key does not read/);
  // A node certificate never outlives its CA.
  const shortCa = createRootCA({ now, expiryMs: 24 * 3600_000 });
  const capped = identityOf(new X509Certificate(issueNodeCertificate(shortCa, { nodeId: 'n', role: 'worker', clusterId: 'c1', publicKey, now })));
  assert.equal(capped.notAfter.getTime(), now.getTime() + 24 * 3600_000);
});

test('node certificates carry a real mutual TLS handshake; a node of another CA is refused', async () => {
  const realNow = new Date();
  const ca = createRootCA({ now: realNow });
  const issue = (nodeId: string, authority = ca): { key: string; cert: string } => {
    const key = generateKey();
    return { key: key.keyPem, cert: issueNodeCertificate(authority, { nodeId, role: 'manager', clusterId: 'c1', publicKey: createPublicKey(key.privateKey), now: realNow }) };
  };
  const server = issue('srv');
  const seen: string[] = [];
  const listener = tls.createServer({ key: server.key, cert: server.cert, ca: ca.certPem, requestCert: true, rejectUnauthorized: true }, (socket) => {
    seen.push(String(socket.getPeerCertificate().subject.CN));
    socket.end('hello');
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const port = (listener.address() as { port: number }).port;
  const connect = (client: { key: string; cert: string }): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, servername: 'swarm-manager', key: client.key, cert: client.cert, ca: ca.certPem }, () => {
        let text = '';
        s.on('data', (d: Buffer) => (text += d.toString()));
        s.on('end', () => resolve(text));
      });
      s.on('error', reject);
    });
  try {
    assert.equal(await connect(issue('cli')), 'hello');
    assert.deepEqual(seen, ['cli']);
    // TLS 1.3: the client's handshake may finish before the server refuses its
    // certificate; either way the server never serves it.
    const intruder = await connect(issue('intruder', createRootCA({ now: realNow }))).catch(() => 'refused');
    assert.notEqual(intruder, 'hello');
    assert.deepEqual(seen, ['cli']);
  } finally {
    listener.close();
  }
});
