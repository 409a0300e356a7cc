import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  createClient,
  resolveTransportSecurity,
  unary,
  type TransportSecurity,
} from '../../packages/core/src/index.js';
import { controlProto, dataProto, dispatcherProto } from '../../packages/core/src/rpc/proto.js';
import { parseClusterConfig } from '../../packages/core/src/config.js';
import {
  certificateRole,
  checkExposure,
  isLoopback,
  openInternalServicesWarning,
} from '../../packages/core/src/security.js';
import { validateRequest } from '../../packages/core/src/rpc/request-validation.js';
import { StoragePathPolicy } from '../../packages/jobmanager/src/storage-paths.js';
import type { DispatcherClient } from '../../packages/core/src/rpc/types.js';
import { ROOT, TestCluster, WEIR, oneVertexJobGraphJson, tempDir, until, weir } from '../helpers/cli.js';

const job = (name: string): string => path.join(ROOT, 'test/jobs', name);

describe('security settings (unit)', () => {
  test('configuration keys: TLS, token file, allowed dirs, message size; paths relative to the file', () => {
    const c = parseClusterConfig(
      `
security.ssl:
  enabled: true
  ca: certs/ca.pem
  cert: /etc/weir/node.pem
  key: certs/node-key.pem
security.auth.token-file: token
security.storage.allowed-dirs: [/data/savepoints, s3://bucket/sp]
rpc.max-message-size: 16 mb
`,
      'w.yaml',
      '/opt/weir',
    );
    assert.deepEqual(c.security, {
      sslEnabled: true,
      sslCa: '/opt/weir/certs/ca.pem',
      sslCert: '/etc/weir/node.pem',
      sslKey: '/opt/weir/certs/node-key.pem',
      tokenFile: '/opt/weir/token',
      allowedDirs: ['/data/savepoints', 's3://bucket/sp'],
      maxMessageBytes: 16 * 1024 * 1024,
    });
    assert.throws(
      () => parseClusterConfig('security.ssl.enabled: maybe', 'w.yaml'),
      /'security.ssl.enabled'.*true or false/,
    );
    assert.throws(
      () => parseClusterConfig('rpc.max-message-size: lots', 'w.yaml'),
      /'rpc.max-message-size'.*size/,
    );
    assert.throws(() => resolveTransportSecurity({ sslEnabled: true }, {}, 'server'), /no CA is given/);
  });

  test('safe defaults: loopback is fine, any other address needs TLS and a token or --insecure', () => {
    for (const h of ['127.0.0.1', 'localhost', '::1', '127.1.2.3']) assert.ok(isLoopback(h), h);
    for (const h of ['0.0.0.0', '10.0.0.5', '::', 'jobmanager']) assert.ok(!isLoopback(h), h);
    const none: TransportSecurity = { maxMessageBytes: 1 };
    assert.equal(checkExposure('127.0.0.1', none, 'JobManager', false), undefined);
    assert.match(
      checkExposure('0.0.0.0', none, 'JobManager', false)!,
      /Refusing to listen on 0\.0\.0\.0.*TLS.*client authentication.*--insecure/,
    );
    assert.equal(checkExposure('0.0.0.0', none, 'JobManager', true), undefined);
    // without TLS and without a cluster secret the process says its internal services are open
    assert.match(openInternalServicesWarning(none)!, /accept any caller.*security\.cluster\.secret-file/);
    assert.equal(openInternalServicesWarning({ ...none, clusterSecret: 'x'.repeat(16) }), undefined);
  });

  test('storage paths: no "..", nothing into the checkpoint storage, only allowed directories when restricted', () => {
    const p = new StoragePathPolicy({
      checkpointStorage: 'file:///data/ckpt',
      savepointDir: '/data/sp',
      allowedDirs: ['/data/extra', 's3://b/sp'],
      restrict: true,
    });
    assert.equal(p.savepointTarget(''), 'file:///data/sp');
    assert.equal(p.savepointTarget('nightly'), 'file:///data/sp/nightly');
    assert.equal(p.savepointTarget('/data/extra/a'), 'file:///data/extra/a');
    assert.equal(p.savepointTarget('s3://b/sp/x'), 's3://b/sp/x');
    assert.throws(() => p.savepointTarget('../../etc'), /'\.\.' segments are not allowed/);
    assert.throws(() => p.savepointTarget('/data/sp/../ckpt/abc'), /'\.\.' segments are not allowed/);
    assert.throws(() => p.savepointTarget('s3://b/sp/../../other'), /'\.\.' segments/);
    assert.throws(
      () => p.savepointTarget('/data/ckpt/0123456789abcdef0123456789abcdef'),
      /inside the checkpoint storage/,
    );
    assert.throws(() => p.savepointTarget('/etc/weir'), /outside the directories this cluster allows/);
    assert.throws(() => p.savepointTarget('/data/spx'), /outside/);
    assert.equal(p.restorePath('/data/ckpt/0123/chk-3'), '/data/ckpt/0123/chk-3');
    assert.throws(() => p.restorePath('/home/user/.ssh'), /outside/);
    const open = new StoragePathPolicy({
      checkpointStorage: 'file:///data/ckpt',
      savepointDir: '/data/sp',
      restrict: false,
    });
    assert.equal(open.savepointTarget('/tmp/anywhere'), 'file:///tmp/anywhere');
    assert.throws(() => open.savepointTarget('/tmp/../data/ckpt'), /'\.\.'/);
  });

  test('the role of a certificate comes from its URI SANs only', () => {
    assert.equal(certificateRole('DNS:localhost, URI:spiffe://weir/cluster/node'), 'cluster');
    assert.equal(certificateRole('URI:spiffe://weir/client/user'), 'client');
    assert.equal(certificateRole('URI:spiffe://weir/client/u, URI:spiffe://weir/cluster/tm'), 'cluster');
    // a bare prefix, another trust domain, a DNS name that looks like one: no role
    assert.equal(certificateRole('URI:spiffe://weir/cluster/'), undefined);
    assert.equal(certificateRole('URI:spiffe://other/cluster/node'), undefined);
    assert.equal(certificateRole('DNS:spiffe://weir/cluster/node'), undefined);
    assert.equal(certificateRole(undefined), undefined);
  });

  test('request validation names the field', () => {
    assert.match(validateRequest('/weir.Dispatcher/CancelJob', { jobId: '../x' })!, /jobId.*job id/);
    assert.match(
      validateRequest('/weir.JobManagerGateway/RegisterTaskManager', {
        taskManagerId: 'tm',
        address: 'x',
        slots: 1,
        hostname: '',
      })!,
      /address/,
    );
    assert.match(
      validateRequest('/weir.JobManagerGateway/UpdateTaskExecutionState', {
        jobId: 'a'.repeat(32),
        executionId: 'e',
        state: 42,
      })!,
      /state/,
    );
    assert.equal(validateRequest('/weir.Dispatcher/GetJobStatus', { jobId: 'a'.repeat(32) }), undefined);
  });
});

/** A few thousand lines of words, and their counts computed here. */
function makeText(file: string, lines: number): Map<string, number> {
  const counts = new Map<string, number>();
  let s = 777;
  const rnd = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const words: string[] = [];
    for (let j = 0, n = 1 + (rnd() % 9); j < n; j++) {
      const w = `w${rnd() % 700}`;
      words.push(w);
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
    out.push(words.join(' '));
  }
  writeFileSync(file, out.join('\n') + '\n');
  return counts;
}

function readCounts(dir: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const f of readdirSync(dir).filter((f) => f.startsWith('part-'))) {
    for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      if (!line) continue;
      const [w, c] = JSON.parse(line) as [string, number];
      if (c > (counts.get(w) ?? 0)) counts.set(w, c);
    }
  }
  return counts;
}

function code(p: Promise<unknown>): Promise<number> {
  return p.then(
    () => 0,
    (err: grpc.ServiceError) => err.code,
  );
}

type Identity = 'client certificate' | 'foreign CA' | 'no certificate' | 'cluster member' | 'plain';

/** A seed request per internal method: well formed, changing nothing if it got through. */
function internalSeeds(jobId: string): Record<string, unknown> {
  return {
    RegisterTaskManager: {
      taskManagerId: 'intruder',
      address: '127.0.0.1:1',
      slots: 4,
      hostname: 'x',
      session: randomBytes(24).toString('base64url'),
    },
    Heartbeat: { taskManagerId: 'intruder', registrationId: 'none', metrics: [] },
    UpdateTaskExecutionState: { taskManagerId: 'intruder', jobId, executionId: 'e', state: 'FAILED' },
    GetJobBundle: { jobId },
    ReportCollectedRecords: { jobId, executionId: 'e', batch: Buffer.from([1]) },
    AcknowledgeCheckpoint: { jobId, executionId: 'e', checkpointId: 1, stateJson: '{}' },
    DeclineCheckpoint: { jobId, executionId: 'e', checkpointId: 1, reason: 'intruder' },
    RequestSplits: { jobId, executionId: 'e', operatorId: 'src', subtaskIndex: 0, lastCheckpointId: 0 },
    SubmitTask: {
      jobId,
      executionId: 'e',
      vertexId: 'v',
      subtaskIndex: 0,
      parallelism: 1,
      maxParallelism: 128,
      slotIndex: 0,
      operatorIds: ['map-1'],
    },
    CancelTask: { jobId, executionId: 'e' },
    TriggerCheckpoint: { jobId, executionId: 'e', checkpointId: 1, timestamp: 1, storage: '/tmp/x' },
    NotifyCheckpoint: { jobId, executionId: 'e', checkpointId: 1, completed: true },
    Exchange: {
      request: { partitionId: 'p>v', subpartitionIndex: 0, initialCredit: 1, consumerExecutionId: 'e' },
    },
  };
}

/**
 * Calls every method of `service` once with `creds` (and the cluster secret as metadata when
 * given) and returns the status code of each: a stream gets its seed message, then is closed.
 */
async function statusOfEveryMethod(
  service: grpc.ServiceDefinition,
  address: string,
  creds: grpc.ChannelCredentials,
  seeds: Record<string, unknown>,
  secret: string | undefined,
): Promise<Record<string, number>> {
  const Ctor = grpc.makeGenericClientConstructor(service, 'probe');
  const client = new Ctor(address, creds) as unknown as Record<
    string,
    (...a: unknown[]) => grpc.ClientUnaryCall & grpc.ClientDuplexStream<unknown, unknown>
  >;
  const out: Record<string, number> = {};
  try {
    for (const [name, def] of Object.entries(service)) {
      const meta = new grpc.Metadata();
      if (secret) meta.set('weir-cluster-secret', secret);
      const opts = { deadline: Date.now() + 10_000 };
      const call = client[name]!.bind(client);
      out[name] = await new Promise<number>((resolve) => {
        if (def.requestStream) {
          const st = call(meta, opts);
          st.on('data', () => {});
          st.on('error', () => {});
          st.on('status', (x: grpc.StatusObject) => resolve(x.code));
          st.write(seeds[name]);
          // a stream that is let in stays open: close it after a moment
          setTimeout(() => st.end(), 300).unref();
        } else if (def.responseStream) {
          const st = call(seeds[name], meta, opts);
          st.on('data', () => {});
          st.on('error', () => {});
          st.on('status', (x: grpc.StatusObject) => resolve(x.code));
        } else {
          call(seeds[name], meta, opts, (err: grpc.ServiceError | null) => resolve(err ? err.code : 0));
        }
      });
    }
  } finally {
    (client as unknown as grpc.Client).close();
  }
  return out;
}

/** The status code and details of a unary call. */
function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'OK',
    (e: grpc.ServiceError) => `${grpc.status[e.code]} ${e.details}`,
  );
}

describe('a cluster with TLS, mutual TLS and a bearer token', () => {
  const work = tempDir('weir-security-');
  const certs = path.join(work, 'certs');
  const other = path.join(work, 'other-ca');
  const config = path.join(work, 'weir.yaml');
  const s3Secret = `s3-secret-${randomBytes(12).toString('hex')}`;
  const cliOutput: string[] = [];
  let token = '';
  let cluster: TestCluster;
  let tls: TransportSecurity['tls'];

  /** the CLI against the secured cluster: the configuration file gives the CA, a certificate and the token */
  const cli = async (
    args: string[],
    opts: { timeoutMs?: number } = {},
  ): Promise<{ code: number | null; stdout: string; stderr: string }> => {
    const r = await weir(
      [args[0]!, '--jobmanager', cluster.address, '--config', config, ...args.slice(1)],
      opts,
    );
    cliOutput.push(r.stdout, r.stderr);
    return r;
  };
  const dispatcher = (override: Partial<TransportSecurity>): DispatcherClient =>
    createClient(dispatcherProto.Dispatcher, cluster.address, override);

  let clusterSecret = '';
  /** gRPC channel credentials of an identity: the cluster CA to check the server, and a certificate */
  const credsOf = (who: Identity): grpc.ChannelCredentials => {
    const read = (f: string): Buffer => readFileSync(path.join(f));
    const ca = read(path.join(certs, 'ca.pem'));
    switch (who) {
      case 'client certificate':
        return grpc.credentials.createSsl(
          ca,
          read(path.join(certs, 'client-key.pem')),
          read(path.join(certs, 'client.pem')),
        );
      case 'foreign CA':
        return grpc.credentials.createSsl(
          ca,
          read(path.join(other, 'node-key.pem')),
          read(path.join(other, 'node.pem')),
        );
      case 'no certificate':
        return grpc.credentials.createSsl(ca);
      case 'cluster member':
        return grpc.credentials.createSsl(
          ca,
          read(path.join(certs, 'node-key.pem')),
          read(path.join(certs, 'node.pem')),
        );
      default:
        return grpc.credentials.createInsecure();
    }
  };
  const overview = async (): Promise<Array<{ taskManagerId: string; address: string }>> => {
    const c = dispatcher({ tls, token });
    try {
      const o = await unary<{ taskManagers: Array<{ taskManagerId: string; address: string }> }>(
        c.GetClusterOverview.bind(c),
        {},
        5_000,
      );
      return o.taskManagers;
    } finally {
      c.close();
    }
  };

  before(async () => {
    for (const d of [certs, other]) {
      const r = await weir([
        'cert',
        'create',
        '--dir',
        d,
        '--service',
        'jobmanager',
        '--service',
        'taskmanager',
      ]);
      assert.equal(r.code, 0, r.stderr);
    }
    token = readFileSync(path.join(certs, 'token'), 'utf8').trim();
    writeFileSync(
      config,
      [
        'security.ssl.enabled: true',
        'security.ssl.ca: certs/ca.pem',
        'security.ssl.cert: certs/node.pem',
        'security.ssl.key: certs/node-key.pem',
        'security.auth.token-file: certs/token',
        'rpc.max-message-size: 8 mb',
      ].join('\n'),
    );
    tls = resolveTransportSecurity(
      {
        sslEnabled: true,
        sslCa: path.join(certs, 'ca.pem'),
        sslCert: path.join(certs, 'node.pem'),
        sslKey: path.join(certs, 'node-key.pem'),
      },
      {},
      'client',
    ).tls;
    cluster = await new TestCluster({
      taskManagers: 2,
      slots: 2,
      extra: ['--config', config],
      env: { WEIR_S3_SECRET_KEY: s3Secret },
    }).start();
    clusterSecret = readFileSync(path.join(cluster.dir, 'cluster-secret'), 'utf8').trim();
  });

  test('certificates carry their role: cluster identities for services, a client identity for users', async () => {
    const { X509Certificate } = await import('node:crypto');
    const uris = (f: string): string =>
      new X509Certificate(readFileSync(path.join(certs, f))).subjectAltName ?? '';
    assert.match(uris('node.pem'), /URI:spiffe:\/\/weir\/cluster\/node/);
    assert.match(uris('jobmanager.pem'), /DNS:jobmanager.*URI:spiffe:\/\/weir\/cluster\/jobmanager/);
    assert.match(uris('taskmanager.pem'), /DNS:taskmanager.*URI:spiffe:\/\/weir\/cluster\/taskmanager/);
    assert.match(uris('client.pem'), /^URI:spiffe:\/\/weir\/client\/user$/);
    for (const f of [
      'ca-key.pem',
      'node-key.pem',
      'jobmanager-key.pem',
      'taskmanager-key.pem',
      'client-key.pem',
      'token',
    ])
      assert.equal(statSync(path.join(certs, f)).mode & 0o777, 0o600, f);
    assert.equal(statSync(path.join(cluster.dir, 'cluster-secret')).mode & 0o777, 0o600);
  });

  test('every internal method refuses a client certificate (PERMISSION_DENIED), a foreign CA and no certificate (UNAUTHENTICATED), even with the cluster secret', async () => {
    const tm = (await overview())[0]!;
    const seeds = internalSeeds('c'.repeat(32));
    const targets: Array<[grpc.ServiceDefinition, string]> = [
      [controlProto.JobManagerGateway.service, cluster.address],
      [controlProto.TaskExecutorGateway.service, tm.address],
      [dataProto.DataExchange.service, tm.address],
    ];
    const expected: Array<[Identity, grpc.status]> = [
      ['client certificate', grpc.status.PERMISSION_DENIED],
      ['foreign CA', grpc.status.UNAUTHENTICATED],
      ['no certificate', grpc.status.UNAUTHENTICATED],
    ];
    let methods = 0;
    for (const [service, address] of targets) {
      for (const [who, code] of expected) {
        const got = await statusOfEveryMethod(service, address, credsOf(who), seeds, clusterSecret);
        for (const [method, c] of Object.entries(got)) {
          assert.equal(grpc.status[c], grpc.status[code], `${method} with ${who}`);
          methods++;
        }
      }
    }
    assert.equal(methods, (8 + 4 + 1) * 3);
    // the attack: nothing registered, the cluster still has its two TaskManagers
    assert.deepEqual((await overview()).map((t) => t.taskManagerId).sort(), ['tm-1', 'tm-2']);
  });

  test('a cluster member without the cluster secret is refused UNAUTHENTICATED', async () => {
    const got = await statusOfEveryMethod(
      controlProto.JobManagerGateway.service,
      cluster.address,
      credsOf('cluster member'),
      internalSeeds('c'.repeat(32)),
      undefined,
    );
    for (const [method, c] of Object.entries(got)) assert.equal(grpc.status[c], 'UNAUTHENTICATED', method);
  });

  test('a replayed registration is refused PERMISSION_DENIED', async () => {
    const member: Partial<TransportSecurity> = { tls, clusterSecret };
    const jm = createClient(controlProto.JobManagerGateway, cluster.address, member);
    try {
      const request = internalSeeds('c'.repeat(32)).RegisterTaskManager as { session: string };
      const first = await unary<{ accepted: boolean; registrationId: string }>(
        jm.RegisterTaskManager.bind(jm),
        request,
        5_000,
      );
      assert.equal(first.accepted, true);
      // the registered stand-in leaves at once: its heartbeat stream closes
      const hb = jm.Heartbeat();
      hb.on('error', () => {});
      hb.write({ taskManagerId: 'intruder', registrationId: first.registrationId, metrics: [] });
      await new Promise((r) => setTimeout(r, 200));
      hb.end();
      await until(
        'the stand-in to be gone',
        async () => ((await overview()).some((t) => t.taskManagerId === 'intruder') ? undefined : true),
        10_000,
      );
      const replay = await outcome(unary(jm.RegisterTaskManager.bind(jm), request, 5_000));
      assert.match(replay, /^PERMISSION_DENIED .*replayed registration is refused/);
      assert.deepEqual((await overview()).map((t) => t.taskManagerId).sort(), ['tm-1', 'tm-2']);
    } finally {
      jm.close();
    }
  });

  test('TaskManagers take SubmitTask and TriggerCheckpoint only from their JobManager, the JobManager takes reports only from the TaskManager running the task, and a partition takes only its assigned consumer, once', async () => {
    const r = await cli(['run', job('unbounded.ts'), '--detached', '--', '2']);
    assert.equal(r.code, 0, r.stderr);
    const jobId = /([0-9a-f]{32})/.exec(r.stdout)![1]!;
    const c = dispatcher({ tls, token });
    type Status = {
      status: string;
      recordsOut: number;
      vertices: Array<{
        vertexId: string;
        subtasks: Array<{ executionId: string; state: string; taskManagerId: string }>;
      }>;
    };
    const status = (): Promise<Status> => unary<Status>(c.GetJobStatus.bind(c), { jobId }, 5_000);
    try {
      const running = await until(
        'the job to run and write',
        async () => {
          const s = await status();
          return s.vertices.every((v) => v.subtasks.every((t) => t.state === 'RUNNING')) && s.recordsOut > 0
            ? s
            : undefined;
        },
        30_000,
      );
      const [source, reduce] = running.vertices;
      const producer = source!.subtasks[0]!;
      const consumer = reduce!.subtasks[0]!;
      const tms = await overview();
      const producerTm = tms.find((t) => t.taskManagerId === producer.taskManagerId)!;
      const member: Partial<TransportSecurity> = { tls, clusterSecret };

      // a cluster member that is not the JobManager: no session, nothing deployed or triggered
      const gw = createClient(controlProto.TaskExecutorGateway, producerTm.address, member);
      try {
        const trigger = await outcome(
          unary(
            gw.TriggerCheckpoint.bind(gw),
            {
              jobId,
              executionId: producer.executionId,
              checkpointId: 999,
              timestamp: 1,
              storage: '/tmp/x',
              directory: '/tmp/x',
            },
            5_000,
          ),
        );
        assert.match(trigger, /^PERMISSION_DENIED .*only from the JobManager it registered with/);
        const submit = await outcome(
          unary(gw.SubmitTask.bind(gw), { ...(internalSeeds(jobId).SubmitTask as object), jobId }, 5_000),
        );
        assert.match(submit, /^PERMISSION_DENIED /);
        const cancel = await outcome(
          unary(gw.CancelTask.bind(gw), { jobId, executionId: producer.executionId }, 5_000),
        );
        assert.match(cancel, /^PERMISSION_DENIED /);
      } finally {
        gw.close();
      }

      // nor can it speak for a TaskManager to the JobManager: fail or acknowledge its task, take the job's code
      const jm = createClient(controlProto.JobManagerGateway, cluster.address, member);
      try {
        const fail = await outcome(
          unary(
            jm.UpdateTaskExecutionState.bind(jm),
            {
              taskManagerId: consumer.taskManagerId,
              jobId,
              executionId: consumer.executionId,
              state: 'FAILED',
            },
            5_000,
          ),
        );
        assert.match(fail, /^PERMISSION_DENIED .*accepted only from TaskManager tm-\d, which runs it/);
        const ack = await outcome(
          unary(
            jm.AcknowledgeCheckpoint.bind(jm),
            { jobId, executionId: consumer.executionId, checkpointId: 1, stateJson: '{}' },
            5_000,
          ),
        );
        assert.match(ack, /^PERMISSION_DENIED /);
        const bundle = await new Promise<string>((resolve) => {
          const st = jm.GetJobBundle({ jobId });
          st.on('data', () => {});
          st.on('error', (e: grpc.ServiceError) => resolve(`${grpc.status[e.code]} ${e.details}`));
          st.on('end', () => resolve('OK'));
        });
        assert.match(bundle, /^PERMISSION_DENIED .*goes only to a registered TaskManager with a slot/);
      } finally {
        jm.close();
      }

      // the partition from source subtask 0 to the reduce, subpartition 0: assigned to reduce subtask 0
      const exchange = (consumerExecutionId: string): Promise<string> => {
        const data = createClient(dataProto.DataExchange, producerTm.address, member);
        return new Promise<string>((resolve) => {
          const st = data.Exchange();
          st.on('data', () => {});
          st.on('error', () => {});
          st.on('status', (x: grpc.StatusObject) => {
            data.close();
            resolve(`${grpc.status[x.code]} ${x.details}`);
          });
          st.write({
            request: {
              partitionId: `${producer.executionId}>${reduce!.vertexId}`,
              subpartitionIndex: 0,
              initialCredit: 100,
              consumerExecutionId,
            },
          });
          setTimeout(() => st.end(), 2_000).unref();
        });
      };
      assert.match(await exchange(consumer.executionId), /^PERMISSION_DENIED .*already has a consumer/);
      assert.match(
        await exchange(reduce!.subtasks[1]!.executionId),
        /^PERMISSION_DENIED .*is assigned to execution/,
      );
      assert.match(await exchange('intruder'), /^PERMISSION_DENIED .*is assigned to execution/);

      // the first consumer keeps its data: the job runs on and writes more
      const before = (await status()).recordsOut;
      const after = await until(
        'more records after the refusals',
        async () => {
          const s = await status();
          return s.recordsOut > before + 100 ? s : undefined;
        },
        20_000,
      );
      assert.equal(after.status, 'JOB_RUNNING');
      assert.deepEqual(
        after.vertices.flatMap((v) => v.subtasks.map((t) => t.executionId)),
        running.vertices.flatMap((v) => v.subtasks.map((t) => t.executionId)),
        'no restart',
      );
    } finally {
      await unary(c.CancelJob.bind(c), { jobId }, 5_000).catch(() => {});
      c.close();
    }
  });

  after(async () => {
    await cluster?.stop();
  });

  test('Dispatcher calls without a token or with a wrong one are UNAUTHENTICATED; the right token works', async () => {
    const caOnly = { ca: tls!.ca, files: tls!.files };
    const noToken = dispatcher({ tls: caOnly, token: undefined });
    const wrong = dispatcher({ tls: caOnly, token: 'x'.repeat(token.length) });
    const right = dispatcher({ tls: caOnly, token });
    try {
      for (const c of [noToken, wrong]) {
        assert.equal(await code(unary(c.ListJobs.bind(c), {}, 5_000)), grpc.status.UNAUTHENTICATED);
        assert.equal(
          await code(unary(c.CancelJob.bind(c), { jobId: 'a'.repeat(32) }, 5_000)),
          grpc.status.UNAUTHENTICATED,
        );
        assert.equal(
          await code(unary(c.TriggerSavepoint.bind(c), { jobId: 'a'.repeat(32), target: '' }, 5_000)),
          grpc.status.UNAUTHENTICATED,
        );
      }
      assert.equal(await code(unary(right.ListJobs.bind(right), {}, 5_000)), 0);
    } finally {
      for (const c of [noToken, wrong, right]) c.close();
    }
    const r = await weir(['list', '--jobmanager', cluster.address, '--ssl-ca', path.join(certs, 'ca.pem')], {
      env: { WEIR_AUTH_TOKEN: '' },
    });
    cliOutput.push(r.stdout, r.stderr);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /requires a bearer token/);
  });

  test('a plain-text client cannot connect', async () => {
    const plain = dispatcher({ tls: undefined, token });
    try {
      const c = await code(unary(plain.ListJobs.bind(plain), {}, 3_000));
      assert.ok(c === grpc.status.UNAVAILABLE || c === grpc.status.DEADLINE_EXCEEDED, `status ${c}`);
    } finally {
      plain.close();
    }
  });

  test('a TaskManager with a certificate from another CA cannot register', async () => {
    const child = spawn(
      process.execPath,
      [
        WEIR,
        'taskmanager',
        '--jobmanager',
        cluster.address,
        '--id',
        'rogue',
        '--work-dir',
        path.join(work, 'rogue'),
        '--ssl-ca',
        path.join(certs, 'ca.pem'),
        '--ssl-cert',
        path.join(other, 'node.pem'),
        '--ssl-key',
        path.join(other, 'node-key.pem'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await until(
        'the rogue TaskManager to be refused',
        async () => (/UNAUTHENTICATED.*certificate issued by the cluster CA/.test(out) ? true : undefined),
        20_000,
      );
      const c = dispatcher({ tls, token });
      const o = await unary<{ taskManagers: Array<{ taskManagerId: string }> }>(
        c.GetClusterOverview.bind(c),
        {},
        5_000,
      );
      c.close();
      assert.deepEqual(o.taskManagers.map((t) => t.taskManagerId).sort(), ['tm-1', 'tm-2']);
    } finally {
      child.kill('SIGKILL');
      cliOutput.push(out);
    }
  });

  test('savepoint targets and restore paths cannot escape the storage roots', async () => {
    const c = dispatcher({ tls, token });
    try {
      const jobId = 'a'.repeat(32);
      const sp = (target: string) =>
        unary(c.TriggerSavepoint.bind(c), { jobId, target, cancelJob: false }, 5_000).then(
          () => 'ok',
          (e: grpc.ServiceError) => `${e.code} ${e.details}`,
        );
      assert.match(await sp('../../etc/cron.d'), /^3 .*'\.\.' segments are not allowed/);
      assert.match(await sp(`${cluster.dir}/savepoints/../checkpoints`), /^3 .*'\.\.'/);
      assert.match(
        await sp(path.join(cluster.dir, 'checkpoints', jobId)),
        /^3 .*inside the checkpoint storage/,
      );
      assert.match(await sp('/etc/weir'), /^3 .*outside the directories this cluster allows/);
      assert.match(await sp('nightly'), /^5 No job/); // a plain name is fine: under the savepoint directory
      const submit = await unary(
        c.SubmitJob.bind(c),
        {
          jobName: 'x',
          jobGraphJson: oneVertexJobGraphJson(),
          bundle: Buffer.from('x'),
          jobContextJson: '{}',
          restorePath: 'sp/../../../home',
          allowNonRestoredState: false,
        },
        5_000,
      ).then(
        () => 'ok',
        (e: grpc.ServiceError) => `${e.code} ${e.details}`,
      );
      assert.match(submit, /^3 .*Restore path.*'\.\.'/);
      const r = await cli(['savepoint', jobId, '/etc/weir']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /outside the directories this cluster allows/);
    } finally {
      c.close();
    }
  });

  test('fuzz: thousands of random and truncated messages to every service; processes stay up and keep serving', async (t) => {
    const meta = (): grpc.Metadata => {
      const m = new grpc.Metadata();
      m.set('authorization', `Bearer ${token}`);
      // a cluster member: the messages reach validation and the handlers
      m.set('weir-cluster-secret', clusterSecret);
      return m;
    };
    const c = dispatcher({ tls, token });
    const overview = await unary<{ taskManagers: Array<{ taskManagerId: string; address: string }> }>(
      c.GetClusterOverview.bind(c),
      {},
      5_000,
    );
    const tmAddress = overview.taskManagers[0]!.address;
    const creds = grpc.credentials.createSsl(tls!.ca, tls!.key!, tls!.cert!);
    const jobId = 'f'.repeat(32);
    // well-formed seeds that change nothing (unknown ids, zero slots), mutated below
    const seeds: Record<string, unknown> = {
      SubmitJob: {
        jobName: 'fuzz',
        jobGraphJson: '{"vertices":[],"edges":[]}',
        bundle: Buffer.from('export {}'),
        jobContextJson: '{}',
      },
      ListJobs: {},
      GetClusterOverview: {},
      GetJobStatus: { jobId },
      CancelJob: { jobId },
      GetCollectedRecords: { jobId },
      GetCheckpoints: { jobId },
      TriggerSavepoint: { jobId, target: 'fuzz' },
      // an address that is none and zero slots: mutations cannot plausibly make a registration valid
      RegisterTaskManager: { taskManagerId: 'fuzz', address: 'x', slots: 0 },
      Heartbeat: { taskManagerId: 'fuzz', registrationId: 'none' },
      UpdateTaskExecutionState: { jobId, executionId: 'e', state: 'RUNNING' },
      GetJobBundle: { jobId },
      ReportCollectedRecords: { jobId, executionId: 'e', batch: Buffer.from([1, 2, 3]) },
      AcknowledgeCheckpoint: { jobId, executionId: 'e', checkpointId: 1, stateJson: '{}' },
      DeclineCheckpoint: { jobId, executionId: 'e', checkpointId: 1, reason: 'fuzz' },
      RequestSplits: { jobId, executionId: 'e', operatorId: 'src', subtaskIndex: 0, lastCheckpointId: 1 },
      SubmitTask: {
        jobId,
        executionId: 'e',
        vertexId: 'v',
        subtaskIndex: 0,
        parallelism: 1,
        maxParallelism: 128,
        slotIndex: 0,
        operatorIds: ['map-1'],
      },
      CancelTask: { jobId, executionId: 'e' },
      TriggerCheckpoint: { jobId, executionId: 'e', checkpointId: 1 },
      NotifyCheckpoint: { jobId, executionId: 'e', checkpointId: 1 },
      Exchange: { request: { partitionId: 'p', subpartitionIndex: 0, initialCredit: 1 } },
    };
    const services: Array<[grpc.ServiceDefinition, string]> = [
      [dispatcherProto.Dispatcher.service, cluster.address],
      [controlProto.JobManagerGateway.service, cluster.address],
      [controlProto.TaskExecutorGateway.service, tmAddress],
      [dataProto.DataExchange.service, tmAddress],
    ];
    let s = 4242;
    const rnd = (n: number): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % n;
    const randomBytesOf = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => rnd(256)));
    const mutate = (seed: Buffer, i: number): Buffer => {
      switch (i % 4) {
        case 0:
          return randomBytesOf(rnd(64));
        case 1:
          return seed.subarray(0, rnd(seed.length + 1)); // truncated
        case 2: {
          // bit flips
          const b = Buffer.from(seed);
          for (let k = 0; k < 1 + rnd(4) && b.length > 0; k++) b[rnd(b.length)]! ^= 1 << rnd(8);
          return b;
        }
        default:
          return Buffer.concat([seed.subarray(0, rnd(seed.length + 1)), randomBytesOf(rnd(32))]);
      }
    };
    const codes = new Map<string, number>();
    const count = (method: string, status: number): void => {
      const k = `${method}:${grpc.status[status]}`;
      codes.set(k, (codes.get(k) ?? 0) + 1);
    };
    let sent = 0;
    const PER_METHOD = 160;
    for (const [service, address] of services) {
      const raw: grpc.ServiceDefinition = {};
      for (const [name, def] of Object.entries(service)) {
        (raw as Record<string, grpc.MethodDefinition<Buffer, Buffer>>)[name] = {
          ...def,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        };
      }
      const Ctor = grpc.makeGenericClientConstructor(raw, 'fuzz');
      const client = new Ctor(address, creds, {
        'grpc.max_send_message_length': 64 << 20,
      }) as unknown as Record<
        string,
        (...a: unknown[]) => grpc.ClientUnaryCall & grpc.ClientDuplexStream<Buffer, Buffer>
      >;
      try {
        for (const [name, def] of Object.entries(service)) {
          const seed = def.requestSerialize(seeds[name] ?? {});
          const messages = Array.from({ length: PER_METHOD }, (_, i) => mutate(seed, i));
          const call = client[name]!.bind(client);
          await Promise.all(
            messages.map(
              (msg, i) =>
                new Promise<void>((resolve) => {
                  sent++;
                  const deadline = { deadline: Date.now() + 10_000 };
                  if (def.requestStream) {
                    // a stream gets a few messages, then is closed
                    if (i % 5 !== 0) return resolve();
                    const st = call(meta(), deadline);
                    st.on('data', () => {});
                    st.on('error', (e: grpc.ServiceError) => count(name, e.code));
                    st.on('status', (x: grpc.StatusObject) => {
                      count(name, x.code);
                      resolve();
                    });
                    for (const m of messages.slice(i, i + 5)) st.write(m);
                    st.end();
                  } else if (def.responseStream) {
                    const st = call(msg, meta(), deadline);
                    st.on('data', () => {});
                    st.on('error', () => {});
                    st.on('status', (x: grpc.StatusObject) => {
                      count(name, x.code);
                      resolve();
                    });
                  } else {
                    call(msg, meta(), deadline, (err: grpc.ServiceError | null) => {
                      count(name, err ? err.code : 0);
                      resolve();
                    });
                  }
                }),
            ),
          );
        }
        // oversized: beyond rpc.max-message-size (8 MiB)
        if (service === dispatcherProto.Dispatcher.service) {
          const big = def2buf(service, {
            jobName: 'big',
            jobGraphJson: '{}',
            bundle: Buffer.alloc(9 << 20, 7),
          });
          const st = await new Promise<number>((resolve) =>
            client.SubmitJob!(
              big,
              meta(),
              { deadline: Date.now() + 10_000 },
              (err: grpc.ServiceError | null) => resolve(err ? err.code : 0),
            ),
          );
          assert.equal(st, grpc.status.RESOURCE_EXHAUSTED);
        }
      } finally {
        (client as unknown as grpc.Client).close();
      }
    }
    const summary = [...codes].map(([k, n]) => `${k}=${n}`).join(' ');
    t.diagnostic(`${sent} messages: ${summary}`);
    assert.ok(sent >= 3000, `sent ${sent}`);
    for (const [k] of codes)
      assert.doesNotMatch(k, /:(INTERNAL|UNKNOWN|UNAUTHENTICATED|UNAVAILABLE)$/, summary);
    // every method of every service was reached past authentication, and every method that takes
    // a message with fields refused some mutations as INVALID_ARGUMENT (validation ran, not only decoding)
    for (const [service] of services) {
      for (const [name, def] of Object.entries(service)) {
        assert.ok(
          [...codes.keys()].some((k) => k.startsWith(`${name}:`)),
          `${name} was fuzzed: ${summary}`,
        );
        const takesFields = Object.keys(seeds[name] as object).length > 0 && !def.requestStream;
        if (takesFields)
          assert.ok(codes.has(`${name}:INVALID_ARGUMENT`), `${name} validated its input: ${summary}`);
      }
    }

    // still serving correct requests: the JobManager answers, both TaskManagers are registered, and a job runs
    const o = await unary<{ taskManagers: Array<{ taskManagerId: string }> }>(
      c.GetClusterOverview.bind(c),
      {},
      5_000,
    );
    assert.deepEqual(o.taskManagers.map((t) => t.taskManagerId).sort(), ['tm-1', 'tm-2'], summary);
    c.close();
    const input = path.join(work, 'after-fuzz.txt');
    const expected = makeText(input, 2_000);
    const out = path.join(work, 'out-after-fuzz');
    const r = await cli(['run', job('wordcount-file.ts'), '-p', '2', '--', input, out]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readCounts(out), expected);
  });

  test('word count runs end to end over mutual TLS with exact output', async () => {
    const input = path.join(work, 'input.txt');
    const expected = makeText(input, 30_000);
    for (const p of [2, 3]) {
      const out = path.join(work, `out-p${p}`);
      const r = await cli(['run', job('wordcount-file.ts'), '-p', String(p), '--', input, out]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /FINISHED/);
      assert.deepEqual(readCounts(out), expected);
    }
  });

  test('no secret (token, S3 secret key) appears in any log line, in weir status or in weir config', async () => {
    const r = await cli(['run', job('leaky-failure.ts'), '--', path.join(certs, 'token')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /S3 refused secret key \*\*\* and token \*\*\*/);
    const jobId = /submitted with id ([0-9a-f]+)/.exec(r.stdout)![1]!;
    const st = await cli(['status', jobId, '--json']);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /S3 refused secret key \*\*\* and token \*\*\*/);
    const cfg = await weir(['config', '--config', config], { env: { AWS_SECRET_ACCESS_KEY: s3Secret } });
    cliOutput.push(cfg.stdout, cfg.stderr);
    assert.equal(cfg.code, 0, cfg.stderr);
    assert.match(cfg.stdout, /s3\.secret-key +\*\*\* +env AWS_SECRET_ACCESS_KEY/);
    assert.match(cfg.stdout, /security\.auth\.token-file +\S+ +file /);

    await until(
      'the failure in the TaskManager log',
      async () => {
        const all = readdirSync(cluster.logDir())
          .map((f) => readFileSync(path.join(cluster.logDir(), f), 'utf8'))
          .join('\n');
        return /S3 refused secret key \*\*\*/.test(all) ? true : undefined;
      },
      10_000,
    );
    const logs = readdirSync(cluster.logDir()).map(
      (f) => [f, readFileSync(path.join(cluster.logDir(), f), 'utf8')] as const,
    );
    assert.ok(logs.length >= 3);
    for (const [f, text] of [...logs, ['cli output', cliOutput.join('\n')] as const]) {
      assert.ok(!text.includes(token), `the token appears in ${f}`);
      assert.ok(!text.includes(s3Secret), `the S3 secret key appears in ${f}`);
    }
  });
});

function def2buf(service: grpc.ServiceDefinition, msg: unknown): Buffer {
  return service.SubmitJob!.requestSerialize(msg);
}

describe('a local cluster without TLS: the cluster secret keeps other processes out', () => {
  let cluster: TestCluster;
  let secret = '';
  before(async () => {
    cluster = await new TestCluster({ taskManagers: 1, slots: 1 }).start();
    secret = readFileSync(path.join(cluster.dir, 'cluster-secret'), 'utf8').trim();
  });
  after(async () => {
    await cluster?.stop();
  });

  test('every internal method without the secret or with a wrong one is UNAUTHENTICATED; a member is still no JobManager', async () => {
    assert.match(secret, /^[0-9a-f]{64}$/);
    assert.equal(statSync(path.join(cluster.dir, 'cluster-secret')).mode & 0o777, 0o600);
    // handed over by file and environment: never on a command line, never in a log
    const pid = cluster.taskManagerPid('tm-1');
    assert.ok(!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(secret));
    for (const f of readdirSync(cluster.logDir()))
      assert.ok(!readFileSync(path.join(cluster.logDir(), f), 'utf8').includes(secret), f);
    const jmLog = readFileSync(path.join(cluster.logDir(), 'jobmanager.log'), 'utf8');
    assert.match(jmLog, /"clusterAuth":"cluster secret"/);
    assert.doesNotMatch(jmLog, /accept any caller/, 'no warning: the internal services are protected');

    const c = createClient(dispatcherProto.Dispatcher, cluster.address, {});
    const o = await unary<{ taskManagers: Array<{ address: string }> }>(
      c.GetClusterOverview.bind(c),
      {},
      5_000,
    );
    c.close();
    const tm = o.taskManagers[0]!.address;
    const seeds = internalSeeds('d'.repeat(32));
    const plain = grpc.credentials.createInsecure();
    let methods = 0;
    for (const [service, address] of [
      [controlProto.JobManagerGateway.service, cluster.address],
      [controlProto.TaskExecutorGateway.service, tm],
      [dataProto.DataExchange.service, tm],
    ] as Array<[grpc.ServiceDefinition, string]>) {
      for (const presented of [undefined, 'f'.repeat(64)]) {
        const got = await statusOfEveryMethod(service, address, plain, seeds, presented);
        for (const [method, code] of Object.entries(got)) {
          assert.equal(
            grpc.status[code],
            'UNAUTHENTICATED',
            `${method} with ${presented ? 'a wrong' : 'no'} secret`,
          );
          methods++;
        }
      }
    }
    assert.equal(methods, 13 * 2);
    // with the secret, a process is a member, but still not the JobManager the TaskManager registered with
    const gw = createClient(controlProto.TaskExecutorGateway, tm, { clusterSecret: secret });
    try {
      const trigger = await outcome(
        unary(
          gw.TriggerCheckpoint.bind(gw),
          { jobId: 'd'.repeat(32), executionId: 'e', checkpointId: 1, timestamp: 1 },
          5_000,
        ),
      );
      assert.match(trigger, /^PERMISSION_DENIED .*only from the JobManager it registered with/);
    } finally {
      gw.close();
    }
    // and the cluster itself works: its TaskManager registered and stays
    const c2 = createClient(dispatcherProto.Dispatcher, cluster.address, {});
    const o2 = await unary<{ taskManagers: unknown[] }>(c2.GetClusterOverview.bind(c2), {}, 5_000);
    c2.close();
    assert.equal(o2.taskManagers.length, 1);
  });
});
