import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { ROOT, TestCluster, tempDir, until, weir } from '../helpers/cli.js';
import { RecordingS3Proxy, TestS3Server } from '../helpers/s3.js';

const counting = path.join(ROOT, 'test/jobs/checkpointed-count.ts');
const savepointJob = path.join(ROOT, 'test/jobs/savepoint-count.ts');

describe('checkpoints and savepoints on S3 (s3rver over HTTP)', () => {
  let s3: TestS3Server;
  let proxy: RecordingS3Proxy;
  let cluster: TestCluster;
  let client: ClusterClient;
  const work = tempDir();

  before(async () => {
    s3 = await new TestS3Server().start();
    // every request passes a recording proxy, to see the encryption headers weir sends
    proxy = await new RecordingS3Proxy(s3.port).start();
    cluster = await new TestCluster({
      taskManagers: 2,
      slots: 2,
      env: {
        ...s3.env,
        WEIR_S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`,
        WEIR_S3_SSE_TYPE: 'sse-kms',
        WEIR_S3_SSE_KMS_KEY_ID: 'weir-test-key',
      },
    }).start();
    client = await ClusterClient.connect(cluster.address);
  });
  after(async () => {
    client?.close();
    await cluster?.stop();
    await proxy?.stop();
    await s3?.stop();
  });

  test('checkpoints complete with _metadata in S3 and only the retained ones stay', async () => {
    const r = await cluster.run([
      'run',
      counting,
      '--detached',
      '--',
      '200',
      '2',
      'EXACTLY_ONCE',
      's3://weir/checkpoints',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    try {
      await until('five completed checkpoints', async () =>
        (await client.checkpoints(jobId)).counts!.completed >= 5 ? true : undefined,
      );
      const latest = (await client.checkpoints(jobId)).latestCompleted!;
      const keys = await s3.keys(`checkpoints/${jobId}/`);
      const metadata = keys.filter((k) => k.endsWith('/_metadata'));
      assert.ok(metadata.length >= 2 && metadata.length <= 3, `metadata objects: ${metadata}`);
      assert.match(latest.path, new RegExp(`^s3://weir/checkpoints/${jobId}/chk-\\d+$`));
      assert.ok(
        keys.some((k) => k.startsWith(`checkpoints/${jobId}/chk-${latest.id}/uid-count/`)),
        `keyed state files are in S3: ${keys.join(', ')}`,
      );
    } finally {
      await weir(['cancel', jobId, '--jobmanager', cluster.address]);
      await until('canceled', async () =>
        (await client.status(jobId)).status === 'JOB_CANCELED' ? true : undefined,
      );
    }
  });

  test('a savepoint to S3 restores exactly', async () => {
    // 10 s of input at 15,000/s: a loaded machine still cancels it before it ends
    const records = 150_000;
    const out1 = path.join(work, 's3-1');
    const r = await cluster.run(['run', savepointJob, '-p', '2', '--detached', '--', String(records), out1]);
    const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    await until('records flowing', async () =>
      Number((await client.status(jobId)).recordsIn) > 5_000 ? true : undefined,
    );
    const c = await weir([
      'cancel',
      jobId,
      '--savepoint',
      's3://weir/savepoints',
      '--jobmanager',
      cluster.address,
    ]);
    assert.equal(c.code, 0, c.stderr);
    const savepoint = /Savepoint completed: (\S+)/.exec(c.stdout)![1]!;
    assert.match(savepoint, /^s3:\/\/weir\/savepoints\/savepoint-/);
    await until('canceled', async () =>
      (await client.status(jobId)).status === 'JOB_CANCELED' ? true : undefined,
    );
    const out2 = path.join(work, 's3-2');
    const r2 = await cluster.run([
      'run',
      savepointJob,
      '-p',
      '3',
      '--from-savepoint',
      savepoint,
      '--',
      String(records),
      out2,
      // the restored run reads the rest at full speed: only the first run must be slow enough
      '10000000',
    ]);
    assert.equal(r2.code, 0, r2.stderr);
    const counts = new Map<number, number>();
    for (const dir of [out1, out2]) {
      for (const f of readdirSync(dir).filter((n) => n.startsWith('part-'))) {
        for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean)) {
          const [k, n] = JSON.parse(line) as [number, number];
          counts.set(k, Math.max(counts.get(k) ?? 0, n));
        }
      }
    }
    for (let k = 0; k < 97; k++)
      assert.equal(counts.get(k), Math.floor(records / 97) + (k < records % 97 ? 1 : 0), `count of key ${k}`);
  });

  test('every object written (checkpoint state, _metadata, savepoints) carries the server-side encryption settings', () => {
    const writes = proxy.writes();
    const urls = writes.map((w) => w.url);
    assert.ok(writes.length >= 10, `writes: ${urls.join(' ')}`);
    assert.ok(
      urls.some((u) => u.includes('/checkpoints/') && u.includes('_metadata')),
      urls.join(' '),
    );
    assert.ok(
      urls.some((u) => u.includes('/checkpoints/') && u.includes('/uid-count/')),
      urls.join(' '),
    );
    assert.ok(
      urls.some((u) => u.includes('/savepoints/')),
      urls.join(' '),
    );
    for (const w of writes) {
      assert.equal(w.headers['x-amz-server-side-encryption'], 'aws:kms', `${w.method} ${w.url}`);
      assert.equal(w.headers['x-amz-server-side-encryption-aws-kms-key-id'], 'weir-test-key', w.url);
    }
  });

  test('S3 down for a while: checkpoints decline, past the tolerable count the job fails over, and it recovers when S3 is back', async () => {
    const r = await cluster.run([
      'run',
      counting,
      '--detached',
      '--',
      '200',
      '1',
      'EXACTLY_ONCE',
      's3://weir/doomed',
      '2',
    ]);
    const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    try {
      await until('a completed checkpoint', async () =>
        (await client.checkpoints(jobId)).counts!.completed >= 1 ? true : undefined,
      );
      await s3.stop();
      const d = await until(
        'a failover',
        async () => {
          const s = await client.status(jobId);
          return s.numRestarts >= 1 ? s : undefined;
        },
        60_000,
      );
      assert.match(d.restarts[0]!.cause, /Exceeded the tolerable number of failed checkpoints \(2\)/);
      const cps = await client.checkpoints(jobId);
      const failed = (cps.history ?? []).filter((c) => c.status === 'FAILED');
      assert.ok(failed.length >= 3);
      assert.ok(
        failed.some((c) => /s3:\/\/weir\/doomed\/.*(failed|Error)/.test(c.failureReason ?? '')),
        failed.map((c) => c.failureReason).join('\n'),
      );
      // S3 unreachable is not damage: the latest checkpoint is kept and restored once S3 answers again
      await new Promise((res) => setTimeout(res, 1_500));
      await s3.start();
      const before = (await client.checkpoints(jobId)).counts!.completed;
      const back = await until(
        'running with checkpoints completing again',
        async () => {
          const s = await client.status(jobId);
          const c = await client.checkpoints(jobId);
          return s.status === 'JOB_RUNNING' && c.counts!.completed > before ? s : undefined;
        },
        60_000,
      );
      assert.notEqual(back.status, 'JOB_FAILED');
      assert.ok(
        back.restarts.some((x) => Number(x.restoredCheckpointId) > 0),
        'a restart restored the checkpoint taken before S3 went away',
      );
    } finally {
      await weir(['cancel', jobId, '--jobmanager', cluster.address]);
    }
  });
});
