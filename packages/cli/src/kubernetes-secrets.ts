import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { createDevCertificates } from './certs.js';

/** Where and how to reach the Kubernetes API: in a pod, its service account; tests give their own. */
export interface KubernetesApi {
  /** https://host:port */
  server: string;
  /** bearer token of the service account */
  token: string;
  /** PEM of the API server's CA */
  ca: Buffer;
  namespace: string;
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The API as a pod sees it (KUBERNETES_SERVICE_HOST/PORT and the mounted service account). */
export function inClusterApi(env: NodeJS.ProcessEnv = process.env, saDir = SA_DIR): KubernetesApi {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host)
    throw new Error(
      'KUBERNETES_SERVICE_HOST is not set: `weir cert kubernetes-secrets` runs in a pod (the weir-certs Job of deploy/base)',
    );
  const read = (f: string): Buffer => {
    try {
      return readFileSync(path.join(saDir, f));
    } catch (e) {
      throw new Error(
        `Cannot read the service account's ${f} in ${saDir}: ${(e as Error).message} (is automountServiceAccountToken off?)`,
      );
    }
  };
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    token: read('token').toString('utf8').trim(),
    ca: read('ca.crt'),
    namespace: read('namespace').toString('utf8').trim(),
  };
}

function request(
  api: KubernetesApi,
  method: 'GET' | 'POST',
  urlPath: string,
  body?: unknown,
): Promise<{ status: number; body: string }> {
  const url = new URL(urlPath, api.server);
  const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        ca: api.ca,
        headers: {
          authorization: `Bearer ${api.token}`,
          accept: 'application/json',
          ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}),
        },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', (e) => reject(new Error(`Kubernetes API ${method} ${url.href}: ${e.message}`)));
    req.end(data);
  });
}

export interface KubernetesSecretsOptions {
  /** name prefix of the Secrets (default weir) */
  prefix?: string;
  /** cluster services: a Secret `<prefix>-tls-<service>` each */
  services: string[];
  /** extra DNS names / addresses for every service certificate (e.g. jobmanager.weir.svc) */
  hostnames?: string[];
  days?: number;
  /** only the token Secret (certificates come from elsewhere, e.g. cert-manager) */
  tokenOnly?: boolean;
}

/**
 * Makes the cluster's certificates and token and stores them as Kubernetes Secrets, unless
 * they exist already (then nothing changes: to rotate, delete them and run the Job again,
 * then restart the Deployments). The CA's private key never leaves this process: more
 * certificates come from running it again, i.e. a new CA. Secrets:
 *
 * - `<prefix>-tls-<service>`: ca.crt, tls.crt, tls.key (that service's cluster identity; the
 *   keys cert-manager uses, so its Secrets can take their place)
 * - `<prefix>-token`: token (the JobManager checks it)
 * - `<prefix>-client`: ca.crt, tls.crt, tls.key of the client identity, and token (what users take)
 */
export async function createKubernetesSecrets(
  api: KubernetesApi,
  opts: KubernetesSecretsOptions,
  log: (msg: string) => void = console.log,
): Promise<{ created: string[]; kept: string[] }> {
  const prefix = opts.prefix ?? 'weir';
  const names = opts.tokenOnly
    ? [`${prefix}-token`]
    : [...opts.services.map((s) => `${prefix}-tls-${s}`), `${prefix}-token`, `${prefix}-client`];
  const base = `/api/v1/namespaces/${encodeURIComponent(api.namespace)}/secrets`;
  const existing: string[] = [];
  for (const n of names) {
    const r = await request(api, 'GET', `${base}/${n}`);
    if (r.status === 200) existing.push(n);
    else if (r.status !== 404)
      throw new Error(
        `Kubernetes API: reading Secret ${n} in ${api.namespace} answered ${r.status}: ${r.body.slice(0, 300)} (the Job's service account needs get and create on secrets)`,
      );
  }
  if (existing.length === names.length) {
    log(`Keeping the existing Secrets ${names.join(', ')} in ${api.namespace}`);
    return { created: [], kept: names };
  }
  if (existing.length > 0)
    throw new Error(
      `Only some of the Secrets exist (${existing.join(', ')}; missing ${names.filter((n) => !existing.includes(n)).join(', ')}): they must come from one CA. Delete ${existing.join(', ')} and run the Job again`,
    );
  const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-certs-'));
  try {
    const c = await createDevCertificates({
      dir,
      services: opts.services,
      ...(opts.hostnames ? { hostnames: opts.hostnames } : {}),
      ...(opts.days ? { days: opts.days } : {}),
    });
    const b64 = (f: string): string => readFileSync(f).toString('base64');
    const secrets: Array<[string, Record<string, string>]> = opts.tokenOnly
      ? [[`${prefix}-token`, { token: b64(c.token) }]]
      : [
          ...opts.services.map(
            (s) =>
              [
                `${prefix}-tls-${s}`,
                {
                  'ca.crt': b64(c.ca),
                  'tls.crt': b64(c.services[s]!.cert),
                  'tls.key': b64(c.services[s]!.key),
                },
              ] as [string, Record<string, string>],
          ),
          [`${prefix}-token`, { token: b64(c.token) }],
          [
            `${prefix}-client`,
            {
              'ca.crt': b64(c.ca),
              'tls.crt': b64(c.clientCert),
              'tls.key': b64(c.clientKey),
              token: b64(c.token),
            },
          ],
        ];
    for (const [name, data] of secrets) {
      const r = await request(api, 'POST', base, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name,
          labels: { 'app.kubernetes.io/name': 'weir', 'app.kubernetes.io/component': 'certs' },
        },
        type: name.endsWith('-token') ? 'Opaque' : 'kubernetes.io/tls',
        data,
      });
      if (r.status !== 201)
        throw new Error(
          `Kubernetes API: creating Secret ${name} answered ${r.status}: ${r.body.slice(0, 300)}`,
        );
      log(`Created Secret ${name} in ${api.namespace}`);
    }
    return { created: secrets.map(([n]) => n), kept: [] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
