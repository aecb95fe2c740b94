// Test certificates made with the openssl CLI, the way classic Swarm's TLS guide made
// them: one CA signing the engines' and the manager's certificate and the client's, plus
// an unrelated CA (with a client of its own) that nothing trusts, for refusal tests.
// EC P-256 keys: generating the whole set takes a few tens of milliseconds.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { isIP } from 'node:net';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const openssl = '/usr/bin/openssl';

export interface KeyPair {
  /** PEM certificate. */
  cert: string;
  /** PEM private key (unencrypted). */
  key: string;
}

export interface TestCerts {
  /** The temp directory holding every file; remove() deletes it. */
  dir: string;
  /** The CA that signs `server` and `client` (what --tlscacert names everywhere). */
  ca: string;
  /**
   * Engines' and manager's certificate: SANs 127.0.0.1, localhost and the IPs asked for;
   * extendedKeyUsage serverAuth and clientAuth, because `swarm manage` presents the same
   * --tlscert to its clients (as a server) and to the engines (as a client).
   */
  server: KeyPair;
  /** A client certificate (extendedKeyUsage clientAuth) signed by `ca`: the docker CLI's. */
  client: KeyPair;
  /** A CA that nothing trusts. */
  otherCa: string;
  /** A well-formed client certificate signed by `otherCa`: must be refused. */
  otherClient: KeyPair;
  /** Deletes `dir`. Idempotent. */
  remove(): void;
}

function sslConfig(sans: string[]): string {
  return [
    '[req]',
    'distinguished_name = dn',
    '[dn]',
    '[ca]',
    'basicConstraints = critical,CA:TRUE',
    'keyUsage = critical,keyCertSign,cRLSign',
    'subjectKeyIdentifier = hash',
    '[server]',
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage = serverAuth,clientAuth',
    `subjectAltName = ${sans.join(',')}`,
    'authorityKeyIdentifier = keyid',
    '[client]',
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature',
    'extendedKeyUsage = clientAuth',
    'authorityKeyIdentifier = keyid',
    '',
  ].join('\n');
}

async function run(args: string[]): Promise<void> {
  try {
    await execFileAsync(openssl, args, { timeout: 30_000 });
  } catch (err) {
    const stderr = typeof err === 'object' && err !== null && 'stderr' in err ? String(err.stderr) : '';
    throw new Error(`openssl ${args.join(' ')} failed: ${stderr.trim() || String(err)}`, { cause: err });
  }
}

/**
 * Makes the certificates in a fresh temp directory. `ips` are added to the server
 * certificate's SANs (the engines' addresses, the bridge address the manager binds).
 */
export async function makeTestCerts(ips: string[] = []): Promise<TestCerts> {
  for (const ip of ips) if (isIP(ip) === 0) throw new Error(`makeTestCerts: '${ip}' is not an IP address`);
  const base = realpathSync(tmpdir());
  const dir = mkdtempSync(join(base, 'swarmshift-certs-'));
  // Every path below is joined under dir: make sure dir really is a fresh child of the
  // temp root before writing anything (an empty or relative path must never be used).
  const rel = relative(base, dir);
  if (!isAbsolute(dir) || rel === '' || rel.startsWith('..') || rel.includes('/')) throw new Error(`makeTestCerts: unexpected temp dir ${dir}`);
  const file = (name: string): string => join(dir, name);
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  try {
    const sans = ['IP:127.0.0.1', 'DNS:localhost', ...[...new Set(ips)].filter((ip) => ip !== '127.0.0.1').map((ip) => `IP:${ip}`)];
    const config = file('openssl.cnf');
    writeFileSync(config, sslConfig(sans));
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

    const makeCa = async (name: string, subject: string): Promise<string> => {
      await run(['req', '-x509', ...ec, '-config', config, '-extensions', 'ca', '-subj', subject, '-days', '7', '-keyout', file(`${name}-key.pem`), '-out', file(`${name}.pem`)]);
      return file(`${name}.pem`);
    };
    const sign = async (name: string, ca: string, subject: string, extensions: 'server' | 'client'): Promise<KeyPair> => {
      const csr = file(`${name}.csr`);
      await run(['req', '-new', ...ec, '-config', config, '-subj', subject, '-keyout', file(`${name}-key.pem`), '-out', csr]);
      await run(['x509', '-req', '-in', csr, '-CA', file(`${ca}.pem`), '-CAkey', file(`${ca}-key.pem`), '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '7', '-extfile', config, '-extensions', extensions, '-out', file(`${name}.pem`)]);
      rmSync(csr, { force: true });
      return { cert: file(`${name}.pem`), key: file(`${name}-key.pem`) };
    };

    const [ca, otherCa] = await Promise.all([makeCa('ca', '/CN=swarmshift test CA'), makeCa('other-ca', '/CN=unrelated test CA')]);
    const [server, client, otherClient] = await Promise.all([
      sign('server', 'ca', '/CN=swarm', 'server'),
      sign('client', 'ca', '/CN=client', 'client'),
      sign('other-client', 'other-ca', '/CN=intruder', 'client'),
    ]);
    return { dir, ca, server, client, otherCa, otherClient, remove };
  } catch (err) {
    remove();
    throw err;
  }
}
