// The swarm's certificate authority: a root CA, node certificates that carry a node's
// identity, and their checks. Keys are ECDSA P-256 and signatures ECDSA with SHA-256, as
// Docker's swarm mode uses. Certificates are built with src/ca/der.ts and signed with
// node:crypto; node:crypto's X509Certificate reads them back.
//
// A node certificate says who the node is, as SwarmKit's do:
//   subject CN = node ID, OU = role (swarm-manager | swarm-worker), O = cluster ID
//   subjectAltName DNS = the role's OU and the node ID (what peers name as TLS server)
// Clocks come in as arguments (`now`); the randomness is node:crypto's.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { bitString, boolean, explicit, namedBits, octetString, oid, sequence, set, smallInteger, tlv, unsignedInteger, utf8String, time } from './der.js';

export type NodeRole = 'manager' | 'worker';
export const ROLE_OU: Readonly<Record<NodeRole, string>> = { manager: 'swarm-manager', worker: 'swarm-worker' };
export const CA_COMMON_NAME = 'swarm-ca';
/** Docker's defaults: the root CA lives 20 years, node certificates 90 days (`--cert-expiry 2160h`). */
export const ROOT_CA_EXPIRY_MS = 20 * 365 * 24 * 3600_000;
export const NODE_CERT_EXPIRY_MS = 90 * 24 * 3600_000;
/** Certificates start an hour early, so a node whose clock is a little behind accepts them. */
export const BACKDATE_MS = 3600_000;

const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

export class CertificateError extends Error {
  override readonly name = 'CertificateError';
  constructor(
    readonly code: 'malformed' | 'untrusted' | 'expired' | 'notYetValid' | 'notANode',
    message: string,
  ) {
    super(message);
  }
}

export interface KeyPair {
  readonly privateKey: KeyObject;
  /** PKCS#8 PEM, for the node's key file. */
  readonly keyPem: string;
}

export function generateKey(): KeyPair {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privateKey, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

export interface RootCA {
  readonly certPem: string;
  readonly keyPem: string;
  /** SHA-256 of the certificate (DER), hex: what join tokens carry. */
  readonly digest: string;
}

interface Subject {
  readonly commonName: string;
  readonly organizationalUnit?: string;
  readonly organization?: string;
}

function name(s: Subject): Buffer {
  const rdn = (type: string, value: string): Buffer => set(sequence(oid(type), utf8String(value)));
  const parts = [];
  if (s.organization !== undefined) parts.push(rdn(OID.organization, s.organization));
  if (s.organizationalUnit !== undefined) parts.push(rdn(OID.organizationalUnit, s.organizationalUnit));
  parts.push(rdn(OID.commonName, s.commonName));
  return sequence(...parts);
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? sequence(oid(id), boolean(true), octetString(value)) : sequence(oid(id), octetString(value));
}

/** RFC 5280's method 1: SHA-1 of the subjectPublicKey bits. */
function keyIdentifier(spki: Buffer): Buffer {
  // An EC SPKI is SEQUENCE { AlgorithmIdentifier, BIT STRING }: the key bits are its tail,
  // 65 bytes for an uncompressed P-256 point.
  return createHash('sha1').update(spki.subarray(spki.length - 65)).digest();
}

interface CertificateFields {
  readonly issuer: Subject;
  readonly subject: Subject;
  readonly publicKey: KeyObject;
  readonly signer: KeyObject;
  readonly issuerSpki: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly ca: boolean;
  readonly dnsNames: readonly string[];
}

function certificate(f: CertificateFields): string {
  const spki = f.publicKey.export({ type: 'spki', format: 'der' });
  if (f.publicKey.asymmetricKeyType !== 'ec' || f.publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new CertificateError('malformed', 'the node key must be ECDSA P-256');
  }
  const algorithm = sequence(oid(OID.ecdsaWithSha256));
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f; // positive, and at most 20 octets (RFC 5280)
  const extensions = [
    extension(OID.basicConstraints, true, f.ca ? sequence(boolean(true), smallInteger(1)) : sequence()),
    extension(OID.keyUsage, true, f.ca ? namedBits([5, 6]) : namedBits([0, 2])),
    extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(spki))),
    // Every root is named CN=swarm-ca (as swarm mode names them), so during a root
    // rotation only the key identifiers tell the old root from the new.
    extension(OID.authorityKeyIdentifier, false, sequence(tlv(0x80, keyIdentifier(f.issuerSpki)))),
  ];
  if (!f.ca) extensions.push(extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth), oid(OID.clientAuth))));
  if (f.dnsNames.length > 0) extensions.push(extension(OID.subjectAltName, false, sequence(...f.dnsNames.map((d) => tlv(0x82, Buffer.from(d, 'ascii'))))));
  const tbs = sequence(
    explicit(0, smallInteger(2)), // v3
    unsignedInteger(serial),
    algorithm,
    name(f.issuer),
    sequence(time(f.notBefore), time(f.notAfter)),
    name(f.subject),
    spki,
    explicit(3, sequence(...extensions)),
  );
  const signature = sign('sha256', tbs, { key: f.signer, dsaEncoding: 'der' });
  const der = sequence(tbs, algorithm, bitString(signature));
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`;
}

/** Whether `issuer` names and signed `cert` (the one chain-building step every check needs). */
export function signedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

export function certificateDigest(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('hex');
}

/** A new self-signed root CA (CN swarm-ca), as `docker swarm init` makes one. */
export function createRootCA(opts: { now: Date; expiryMs?: number }): RootCA {
  const key = generateKey();
  const publicKey = createPublicKey(key.privateKey);
  const subject = { commonName: CA_COMMON_NAME };
  const certPem = certificate({
    issuer: subject,
    subject,
    publicKey,
    signer: key.privateKey,
    issuerSpki: publicKey.export({ type: 'spki', format: 'der' }),
    notBefore: new Date(opts.now.getTime() - BACKDATE_MS),
    notAfter: new Date(opts.now.getTime() + (opts.expiryMs ?? ROOT_CA_EXPIRY_MS)),
    ca: true,
    dnsNames: [],
  });
  return { certPem, keyPem: key.keyPem, digest: certificateDigest(certPem) };
}

/**
 * The new root's key, certified by the old root: served after node certificates issued
 * by the new root, it lets a node that still trusts only the old root verify them.
 */
export function crossSign(oldRoot: { certPem: string; keyPem: string }, newRootPem: string): string {
  const oldCert = new X509Certificate(oldRoot.certPem);
  const next = new X509Certificate(newRootPem);
  return certificate({
    issuer: { commonName: CA_COMMON_NAME },
    subject: { commonName: CA_COMMON_NAME },
    publicKey: next.publicKey,
    signer: createPrivateKey(oldRoot.keyPem),
    issuerSpki: oldCert.publicKey.export({ type: 'spki', format: 'der' }),
    notBefore: new Date(next.validFrom),
    notAfter: new Date(Math.min(new Date(next.validTo).getTime(), new Date(oldCert.validTo).getTime())),
    ca: true,
    dnsNames: [],
  });
}

export interface NodeCertRequest {
  readonly nodeId: string;
  readonly role: NodeRole;
  readonly clusterId: string;
  /** The node's public key (a KeyObject, or SPKI PEM). The private key never leaves the node. */
  readonly publicKey: KeyObject | string;
  readonly now: Date;
  readonly expiryMs?: number;
}

const idPattern = /^[0-9a-z]{1,64}$/;

/** Signs a node certificate with the root CA's key. */
export function issueNodeCertificate(ca: { certPem: string; keyPem: string }, req: NodeCertRequest): string {
  if (!idPattern.test(req.nodeId)) throw new CertificateError('malformed', `node ID "${req.nodeId}" must be lower-case letters and digits`);
  if (!idPattern.test(req.clusterId)) throw new CertificateError('malformed', `cluster ID "${req.clusterId}" must be lower-case letters and digits`);
  const signer = createPrivateKey(ca.keyPem);
  const caCert = new X509Certificate(ca.certPem);
  let publicKey: KeyObject;
  try {
    publicKey = typeof req.publicKey === 'string' ? createPublicKey(req.publicKey) : req.publicKey;
  } catch (err) {
    throw new CertificateError('malformed', `the node's public key does not read: ${(err as Error).message}`);
  }
  const expiry = req.expiryMs ?? NODE_CERT_EXPIRY_MS;
  const notAfter = new Date(Math.min(req.now.getTime() + expiry, new Date(caCert.validTo).getTime()));
  return certificate({
    issuer: { commonName: CA_COMMON_NAME },
    subject: { commonName: req.nodeId, organizationalUnit: ROLE_OU[req.role], organization: req.clusterId },
    publicKey,
    signer,
    issuerSpki: caCert.publicKey.export({ type: 'spki', format: 'der' }),
    notBefore: new Date(req.now.getTime() - BACKDATE_MS),
    notAfter,
    ca: false,
    dnsNames: [ROLE_OU[req.role], req.nodeId],
  });
}

export interface NodeIdentity {
  readonly nodeId: string;
  readonly role: NodeRole;
  readonly clusterId: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** Reads "CN=…\nOU=…\nO=…" (X509Certificate.subject) into its fields; one value each. */
function subjectFields(subject: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of subject.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) {
      const key = line.slice(0, eq);
      if (out.has(key)) throw new CertificateError('notANode', `the certificate's subject names ${key} twice`);
      out.set(key, line.slice(eq + 1));
    }
  }
  return out;
}

function roleOfOu(ou: string | undefined): NodeRole | undefined {
  return ou === ROLE_OU.manager ? 'manager' : ou === ROLE_OU.worker ? 'worker' : undefined;
}

/** The identity a node certificate carries (no trust check: see verifyNodeCertificate). */
export function identityOf(cert: X509Certificate): NodeIdentity {
  const fields = subjectFields(cert.subject);
  const nodeId = fields.get('CN');
  const role = roleOfOu(fields.get('OU'));
  const clusterId = fields.get('O');
  if (nodeId === undefined || !idPattern.test(nodeId) || role === undefined || clusterId === undefined) {
    throw new CertificateError('notANode', `the certificate (subject ${cert.subject.replace(/\n/g, ', ')}) is not a swarm node certificate: it needs CN=<node ID>, OU=swarm-manager or swarm-worker, O=<cluster ID>`);
  }
  return { nodeId, role, clusterId, notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) };
}

/**
 * Checks that a node certificate was signed by this CA and is valid at `now`, and returns
 * who it names. Each refusal says what is wrong and what to do.
 */
export function verifyNodeCertificate(certPem: string, trusted: string | readonly string[], now: Date, intermediates: readonly string[] = []): NodeIdentity {
  let cert: X509Certificate;
  let roots: X509Certificate[];
  let middle: X509Certificate[];
  try {
    cert = new X509Certificate(certPem);
    roots = (typeof trusted === 'string' ? [trusted] : trusted).map((p) => new X509Certificate(p));
    middle = intermediates.map((p) => new X509Certificate(p));
  } catch (err) {
    throw new CertificateError('malformed', `the certificate does not read as X.509: ${(err as Error).message}`);
  }
  const valid = (c: X509Certificate): boolean => now >= new Date(c.validFrom) && now <= new Date(c.validTo);
  // A trusted root signed it, or an intermediate (a cross-signed root) that a trusted root signed.
  const chained = roots.some((r) => signedBy(cert, r)) || middle.some((m) => m.ca && valid(m) && signedBy(cert, m) && roots.some((r) => signedBy(m, r)));
  if (!chained) {
    throw new CertificateError('untrusted', `the certificate of ${cert.subject.replace(/\n/g, ', ')} was not signed by this swarm's CA: the node belongs to another swarm or its CA was rotated; have it leave and join again with a current token`);
  }
  const identity = identityOf(cert);
  if (now < identity.notBefore) {
    throw new CertificateError('notYetValid', `the certificate of node ${identity.nodeId} is not valid before ${identity.notBefore.toISOString()}: check this machine's clock`);
  }
  if (now > identity.notAfter) {
    throw new CertificateError('expired', `the certificate of node ${identity.nodeId} expired at ${identity.notAfter.toISOString()}: the node missed its renewal; have it leave and join again`);
  }
  return identity;
}

/**
 * When a node asks for a new certificate: a random point between 50% and 80% of its
 * validity, so a fleet of nodes issued together does not renew together.
 */
export function renewalTime(notBefore: Date, notAfter: Date, random: number): Date {
  const span = notAfter.getTime() - notBefore.getTime();
  const fraction = 0.5 + 0.3 * Math.min(1, Math.max(0, random));
  return new Date(notBefore.getTime() + span * fraction);
}
