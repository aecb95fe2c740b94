// Throwaway certificates for the transport's TLS test: one CA, one node certificate for
// 127.0.0.1 (mutual TLS: the same certificate serves and authenticates as a client).

import forge from 'node-forge';

export interface TestPki {
  readonly caPem: string;
  readonly keyPem: string;
  readonly certPem: string;
}

function certificate(subject: string, publicKey: forge.pki.PublicKey, issuer: string, signer: forge.pki.rsa.PrivateKey, isCa: boolean): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = String(Math.floor(Math.random() * 1e9) + 1);
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 3_600_000);
  cert.setSubject([{ name: 'commonName', value: subject }]);
  cert.setIssuer([{ name: 'commonName', value: issuer }]);
  const extensions: object[] = [{ name: 'basicConstraints', cA: isCa }];
  if (!isCa) {
    extensions.push({ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] });
    extensions.push({ name: 'extKeyUsage', serverAuth: true, clientAuth: true });
  }
  cert.setExtensions(extensions);
  cert.sign(signer, forge.md.sha256.create());
  return cert;
}

export function makeTestPki(): TestPki {
  const caKeys = forge.pki.rsa.generateKeyPair({ bits: 2048 });
  const ca = certificate('swarmshift test CA', caKeys.publicKey, 'swarmshift test CA', caKeys.privateKey, true);
  const nodeKeys = forge.pki.rsa.generateKeyPair({ bits: 2048 });
  const node = certificate('raft node', nodeKeys.publicKey, 'swarmshift test CA', caKeys.privateKey, false);
  return { caPem: forge.pki.certificateToPem(ca), keyPem: forge.pki.privateKeyToPem(nodeKeys.privateKey), certPem: forge.pki.certificateToPem(node) };
}
