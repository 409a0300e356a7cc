import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
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
import { isLoopback, checkExposure } from '../../packages/core/src/security.js';
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

  before(async () => {
    for (const d of [certs, other]) {
      const r = await weir(['cert', 'create', '--dir', d]);
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
    assert.ok(
      [...codes.keys()].some((k) => k.endsWith(':INVALID_ARGUMENT')),
      summary,
    );

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
