// `weir cert kubernetes-secrets` against a stand-in for the Kubernetes API (HTTPS with its own
// CA, a bearer token, the Secrets endpoints): what it creates, that it keeps what exists, and
// that it refuses to mix a new CA with old Secrets.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createDevCertificates } from '../../packages/cli/src/certs.js';
import { createKubernetesSecrets, type KubernetesApi } from '../../packages/cli/src/kubernetes-secrets.js';
import { tempDir } from '../helpers/cli.js';

type Secret = { metadata: { name: string }; type: string; data: Record<string, string> };

describe('weir cert kubernetes-secrets', () => {
  const secrets = new Map<string, Secret>();
  const requests: string[] = [];
  let server: https.Server;
  let api: KubernetesApi;
  const TOKEN = 'service-account-token';

  before(async () => {
    const dir = tempDir('weir-kube-api-');
    const c = await createDevCertificates({ dir });
    server = https.createServer({ cert: readFileSync(c.cert), key: readFileSync(c.key) }, (req, res) => {
      requests.push(`${req.method} ${req.url}`);
      if (req.headers.authorization !== `Bearer ${TOKEN}`) {
        res.writeHead(401).end('{}');
        return;
      }
      const m = /^\/api\/v1\/namespaces\/weir\/secrets(?:\/([\w-]+))?$/.exec(req.url ?? '');
      if (!m) return void res.writeHead(404).end('{}');
      if (req.method === 'GET') {
        const s = secrets.get(m[1] ?? '');
        res.writeHead(s ? 200 : 404).end(JSON.stringify(s ?? { reason: 'NotFound' }));
        return;
      }
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const s = JSON.parse(body) as Secret;
        if (secrets.has(s.metadata.name)) return void res.writeHead(409).end('{}');
        secrets.set(s.metadata.name, s);
        res.writeHead(201).end(body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    api = {
      server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
      token: TOKEN,
      ca: readFileSync(path.join(dir, 'ca.pem')),
      namespace: 'weir',
    };
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const opts = { services: ['jobmanager', 'taskmanager'], hostnames: ['jobmanager.weir.svc'] };
  const decode = (s: Secret, key: string): Buffer => Buffer.from(s.data[key]!, 'base64');

  test('creates a Secret per service identity, the token and the client identity, from one CA', async () => {
    const r = await createKubernetesSecrets(api, opts, () => {});
    assert.deepEqual(r.created, ['weir-tls-jobmanager', 'weir-tls-taskmanager', 'weir-token', 'weir-client']);
    const ca = new X509Certificate(decode(secrets.get('weir-tls-jobmanager')!, 'ca.crt'));
    for (const [name, uri] of [
      ['weir-tls-jobmanager', 'spiffe://weir/cluster/jobmanager'],
      ['weir-tls-taskmanager', 'spiffe://weir/cluster/taskmanager'],
      ['weir-client', 'spiffe://weir/client/user'],
    ] as const) {
      const s = secrets.get(name)!;
      assert.equal(s.type, 'kubernetes.io/tls');
      const cert = new X509Certificate(decode(s, 'tls.crt'));
      assert.ok(cert.subjectAltName!.includes(`URI:${uri}`), `${name}: ${cert.subjectAltName}`);
      assert.ok(cert.verify(ca.publicKey), `${name} is signed by the one CA`);
      assert.match(decode(s, 'tls.key').toString(), /BEGIN PRIVATE KEY/);
    }
    assert.match(
      new X509Certificate(decode(secrets.get('weir-tls-jobmanager')!, 'tls.crt')).subjectAltName!,
      /DNS:jobmanager.*DNS:jobmanager\.weir\.svc/,
    );
    const token = decode(secrets.get('weir-token')!, 'token').toString().trim();
    assert.match(token, /^[0-9a-f]{64}$/);
    assert.equal(decode(secrets.get('weir-client')!, 'token').toString().trim(), token);
    // no Secret holds the CA's private key
    for (const s of secrets.values()) assert.ok(!('ca.key' in s.data) && !('ca-key.pem' in s.data));
  });

  test('a second run keeps them; a partial set is refused; a wrong token is an error naming the status', async () => {
    const before = JSON.stringify([...secrets]);
    const again = await createKubernetesSecrets(api, opts, () => {});
    assert.deepEqual(again.created, []);
    assert.equal(JSON.stringify([...secrets]), before);
    secrets.delete('weir-tls-taskmanager');
    await assert.rejects(
      () => createKubernetesSecrets(api, opts, () => {}),
      /Only some of the Secrets exist .*missing weir-tls-taskmanager.*Delete/,
    );
    await assert.rejects(
      () => createKubernetesSecrets({ ...api, token: 'wrong' }, opts, () => {}),
      /answered 401.*get and create on secrets/,
    );
  });

  test('--token-only makes only the token (certificates from cert-manager)', async () => {
    secrets.clear();
    const r = await createKubernetesSecrets(api, { ...opts, tokenOnly: true }, () => {});
    assert.deepEqual(r.created, ['weir-token']);
    assert.deepEqual([...secrets.keys()], ['weir-token']);
  });
});
