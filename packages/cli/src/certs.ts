import { webcrypto, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { CLIENT_IDENTITY_PREFIX, CLUSTER_IDENTITY_PREFIX } from '@weir/core';

export interface CertOptions {
  dir: string;
  /** extra DNS names or IP addresses for the node certificate, besides localhost and 127.0.0.1 */
  hostnames?: string[];
  days?: number;
  /** overwrite existing files */
  force?: boolean;
  /** when every file exists already, keep them and write nothing (a one-shot container that runs on every start) */
  keepExisting?: boolean;
  /**
   * Service names (e.g. jobmanager, taskmanager): one cluster certificate each, `<name>.pem`,
   * with the name as a DNS SAN and the cluster identity `spiffe://weir/cluster/<name>`
   */
  services?: string[];
  /** the client identity's name: `spiffe://weir/client/<name>` (default `user`) */
  clientName?: string;
}

export interface CreatedCerts {
  ca: string;
  caKey: string;
  cert: string;
  key: string;
  clientCert: string;
  clientKey: string;
  token: string;
  /** the per-service cluster certificates, by service name */
  services: Record<string, { cert: string; key: string }>;
  /** true when keepExisting found them all and nothing was written */
  kept?: boolean;
}

/** Service and client names: what a DNS label and a SPIFFE path segment both allow. */
const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function checkName(name: string, what: string): void {
  if (!NAME.test(name) || name === 'node' || name === 'ca' || name === 'client')
    throw new Error(
      `${what} '${name}' is not usable: use lower-case letters, digits and '-' (a DNS label), and not node, ca or client`,
    );
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // positive
  return b.toString('hex');
}

/**
 * A development PKI for a weir cluster, in pure JavaScript (WebCrypto ECDSA P-256 keys and
 * @peculiar/x509; no openssl binary needed):
 *
 * - `ca.pem`, `ca-key.pem`: the cluster CA (10 years by default is too long: `days`, default 825)
 * - `node.pem`, `node-key.pem`: a cluster identity (URI SAN `spiffe://weir/cluster/node`) for
 *   every JobManager and TaskManager, for server and client authentication, with SANs
 *   localhost, 127.0.0.1, ::1 and `hostnames`
 * - `<service>.pem`, `<service>-key.pem` for each of `services`: the same with the service
 *   name as a DNS SAN and `spiffe://weir/cluster/<service>` (compose and Kubernetes services)
 * - `client.pem`, `client-key.pem`: a client identity (`spiffe://weir/client/<clientName>`,
 *   client authentication only): it may call the Dispatcher (with the token), never an
 *   internal service
 * - `token`: a random bearer token (256 bits, hex)
 *
 * The role is in the certificate (its URI SAN), so a client certificate cannot pose as a
 * TaskManager even though the same CA issued it. Key files and the token are written with mode 0600.
 */
export async function createDevCertificates(opts: CertOptions): Promise<CreatedCerts> {
  // @peculiar/x509 needs a Reflect metadata polyfill; loaded here only, not in every weir process
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const services = [...new Set(opts.services ?? [])];
  for (const n of services) checkName(n, 'The service name');
  const clientName = opts.clientName ?? 'user';
  checkName(clientName, 'The client name');
  const dir = path.resolve(opts.dir);
  mkdirSync(dir, { recursive: true });
  const out: CreatedCerts = {
    ca: path.join(dir, 'ca.pem'),
    caKey: path.join(dir, 'ca-key.pem'),
    cert: path.join(dir, 'node.pem'),
    key: path.join(dir, 'node-key.pem'),
    clientCert: path.join(dir, 'client.pem'),
    clientKey: path.join(dir, 'client-key.pem'),
    token: path.join(dir, 'token'),
    services: Object.fromEntries(
      services.map((n) => [n, { cert: path.join(dir, `${n}.pem`), key: path.join(dir, `${n}-key.pem`) }]),
    ),
  };
  if (!opts.force) {
    const files = [
      ...Object.values(out).filter((f): f is string => typeof f === 'string'),
      ...Object.values(out.services).flatMap((f) => [f.cert, f.key]),
    ];
    const existing = files.filter((f) => existsSync(f));
    if (opts.keepExisting && existing.length === files.length) return { ...out, kept: true };
    if (existing.length > 0)
      throw new Error(
        `${existing.join(', ')} already exist${opts.keepExisting ? ` but ${files.filter((f) => !existing.includes(f)).join(', ')} do not` : ''}; pass --force to make a new set (a new CA: every process needs the new files)`,
      );
  }
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + (opts.days ?? 825) * 86_400_000);
  const subtle = webcrypto.subtle;

  const caKeys = (await subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=weir development CA, O=weir',
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  const hostSans = (extra: string[]): Array<{ type: 'ip' | 'dns'; value: string }> =>
    [...new Set([...extra, 'localhost', '127.0.0.1', '::1', ...(opts.hostnames ?? [])])].map((n) =>
      isIP(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n },
    );
  const issue = async (
    cn: string,
    usages: string[],
    sans: Array<{ type: 'ip' | 'dns' | 'url'; value: string }>,
  ): Promise<{ cert: string; key: string }> => {
    const keys = (await subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `CN=${cn}, O=weir`,
      issuer: ca.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
          true,
        ),
        new x509.ExtendedKeyUsageExtension(usages),
        new x509.SubjectAlternativeNameExtension(sans),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
      ],
    });
    return {
      cert: cert.toString('pem') + '\n',
      key: pem('PRIVATE KEY', await subtle.exportKey('pkcs8', keys.privateKey)),
    };
  };
  const clusterUsages = [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth];
  const clusterIdentity = (name: string) => ({
    type: 'url' as const,
    value: `${CLUSTER_IDENTITY_PREFIX}${name}`,
  });
  const node = await issue('weir node', clusterUsages, [...hostSans([]), clusterIdentity('node')]);
  const perService: Array<[string, { cert: string; key: string }]> = [];
  for (const n of services)
    perService.push([n, await issue(`weir ${n}`, clusterUsages, [...hostSans([n]), clusterIdentity(n)])]);
  const client = await issue(
    `weir client ${clientName}`,
    [x509.ExtendedKeyUsage.clientAuth],
    [{ type: 'url', value: `${CLIENT_IDENTITY_PREFIX}${clientName}` }],
  );

  const secret = (file: string, data: string): void => {
    writeFileSync(file, data, { mode: 0o600 });
    chmodSync(file, 0o600);
  };
  writeFileSync(out.ca, ca.toString('pem') + '\n');
  secret(out.caKey, pem('PRIVATE KEY', await subtle.exportKey('pkcs8', caKeys.privateKey)));
  writeFileSync(out.cert, node.cert);
  secret(out.key, node.key);
  writeFileSync(out.clientCert, client.cert);
  secret(out.clientKey, client.key);
  for (const [n, c] of perService) {
    writeFileSync(out.services[n]!.cert, c.cert);
    secret(out.services[n]!.key, c.key);
  }
  secret(out.token, `${randomBytes(32).toString('hex')}\n`);
  return out;
}
