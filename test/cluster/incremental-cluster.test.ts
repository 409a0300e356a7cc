import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { ROOT, TestCluster, tempDir, until, weir } from '../helpers/cli.js';
import { TestS3Server } from '../helpers/s3.js';

const job = path.join(ROOT, 'test/jobs/incremental-count.ts');
const KEYS = 5000;

/** Committed [count, sum] updates per key over FileSink directories, deduplicated, in count order. */
function committed(dirs: string[]): Map<number, Map<number, number>> {
  const per = new Map<number, Map<number, number>>();
  for (const dir of dirs) {
    for (const f of readdirSync(dir).filter((n) => n.startsWith('part-'))) {
      for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
        if (!line) continue;
        const [k, c, s] = JSON.parse(line) as [number, number, number];
        let m = per.get(k);
        if (!m) per.set(k, (m = new Map()));
        const seen = m.get(c);
        assert.ok(
          seen === undefined || seen === s,
          `key ${k}: count ${c} committed with two sums (${seen}, ${s}): state diverged`,
        );
        m.set(c, s);
      }
    }
  }
  return per;
}

/** Every key counted exactly 1..n with the exact sum: the state restored from every checkpoint was exact. */
function assertExact(dirs: string[], records: number): void {
  const per = committed(dirs);
  assert.equal(per.size, KEYS, 'every key has output');
  for (let k = 0; k < KEYS; k++) {
    let n = 0;
    let sum = 0;
    for (let i = k; i < records; i += KEYS) {
      n++;
      sum += i;
    }
    const m = per.get(k)!;
    const counts = [...m.keys()].sort((a, b) => a - b);
    assert.deepEqual(
      counts,
      Array.from({ length: n }, (_, i) => i + 1),
      `key ${k}: counts 1..${n}`,
    );
    assert.equal(m.get(n), sum, `key ${k}: last sum`);
  }
}

// the canonical formats (full: streamed batches; incremental: chains of batches), then native
// checkpoints (the databases' own files), which take the place of both
for (const native of [false, true])
  describe(`${native ? 'native' : 'full and incremental'} RocksDB checkpoints on S3 (s3rver over HTTP)`, () => {
    let s3: TestS3Server;
    let cluster: TestCluster;
    let client: ClusterClient;
    let s3client: S3Client;
    const work = tempDir();
    const extra = ['-D', `state.backend.rocksdb.native-checkpoints=${native}`];

    before(async () => {
      s3 = await new TestS3Server().start();
      cluster = await new TestCluster({ taskManagers: 2, slots: 2, env: s3.env, extra }).start();
      client = await ClusterClient.connect(cluster.address);
      s3client = new S3Client({
        endpoint: s3.env.WEIR_S3_ENDPOINT,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      });
    });
    after(async () => {
      client?.close();
      await cluster?.stop();
      await s3?.stop();
    });

    async function s3json(key: string): Promise<Record<string, unknown>> {
      const r = await s3client.send(new GetObjectCommand({ Bucket: 'weir', Key: key }));
      return JSON.parse(await r.Body!.transformToString()) as Record<string, unknown>;
    }

    async function cancel(jobId: string): Promise<void> {
      const c = await weir(['cancel', jobId, '--jobmanager', cluster.address]);
      assert.equal(c.code, 0, c.stderr);
      await until('canceled', async () =>
        (await client.status(jobId)).status === 'JOB_CANCELED' ? true : undefined,
      );
    }

    for (const mode of native ? (['incremental'] as const) : (['full', 'incremental'] as const)) {
      test(`${native ? 'native' : mode}: kill -9 of a TaskManager, then cancel and restore the retained checkpoint at parallelism 3: exact counts`, async () => {
        // 40 s of input at 15,000/s: even a loaded machine cancels it before it ends; the restored
        // run reads the rest at full speed
        const records = 600_000;
        const out1 = path.join(work, `${mode}-1`);
        const prefix = `s3://weir/${native ? 'native' : mode}`;
        const r = await cluster.run([
          'run',
          job,
          '-p',
          '2',
          '--detached',
          '--',
          String(records),
          '15000',
          out1,
          mode,
          prefix,
        ]);
        assert.equal(r.code, 0, r.stderr);
        const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
        await until(
          'three completed checkpoints',
          async () => ((await client.checkpoints(jobId)).counts!.completed >= 3 ? true : undefined),
          60_000,
        );
        // failover restores the latest checkpoint; incremental ones go on from its shared files
        const s = await client.status(jobId);
        const keyedTm = s.vertices.find((v) => !/Sequence/.test(v.name))!.subtasks[0]!.taskManagerId;
        process.kill(cluster.taskManagerPid(keyedTm), 'SIGKILL');
        await until(
          'restarted',
          async () => ((await client.status(jobId)).numRestarts >= 1 ? true : undefined),
          30_000,
        );
        const before = (await client.checkpoints(jobId)).counts!.completed;
        await until(
          'two checkpoints after the restart',
          async () => ((await client.checkpoints(jobId)).counts!.completed >= before + 2 ? true : undefined),
          60_000,
        );
        await cancel(jobId);
        const latest = (await client.checkpoints(jobId)).latestCompleted!;
        const md = await s3json(latest.path.replace('s3://weir/', '') + '/_metadata');
        const keyed = Object.values(
          (
            md.operators as Record<
              string,
              {
                subtasks: Record<
                  string,
                  { keyed?: { format?: string; files: Array<{ path: string }>; groups: object } }
                >;
              }
            >
          )['uid-count-and-sum']!.subtasks,
        ).map((x) => x.keyed!);
        assert.equal(keyed.length, 2);
        if (native)
          for (const k of keyed) {
            // the database's files, every one a shared file
            assert.equal(k.format, 'rocksdb-native');
            assert.ok(k.files.length > 0 && k.files.every((f) => f.path.startsWith('../shared/')));
          }
        else
          for (const k of keyed) {
            // both kinds are chains of batches in files; a full checkpoint's are its own (streamed)
            assert.equal(k.format, 'incremental');
            const own = k.files.filter((f) => !f.path.startsWith('../shared/'));
            assert.equal(
              own.length,
              mode === 'incremental' ? 0 : k.files.length,
              'the checkpoint has the chosen kind of keyed state',
            );
            if (mode === 'full')
              for (const chain of Object.values(k.groups) as Array<Array<[number, number, number, number]>>)
                assert.ok(
                  chain.every((l) => l[3] === 1),
                  'a full checkpoint has only full batches',
                );
          }
        if (mode === 'incremental') {
          const later = ((await client.checkpoints(jobId)).history ?? [])
            .filter((c) => c.status === 'COMPLETED')
            .slice(-3);
          assert.ok(
            later.some((c) => Number(c.stateSizeBytes) > 0),
            'incremental checkpoints upload something',
          );
        }
        const out2 = path.join(work, `${mode}-2`);
        const r2 = await cluster.run(
          [
            'run',
            job,
            '-p',
            '3',
            '--from-savepoint',
            latest.path,
            '--',
            String(records),
            '500000',
            out2,
            mode,
            `${prefix}-2`,
          ],
          { timeoutMs: 120_000 },
        );
        assert.equal(r2.code, 0, r2.stdout + r2.stderr);
        assertExact([out1, out2], records);
      });
    }

    test(`${native ? 'native' : 'incremental'}, 2 retained, after 20 checkpoints: storage holds exactly the files the two retained checkpoints reference`, async () => {
      const out = path.join(work, 'retained');
      const r = await cluster.run([
        'run',
        job,
        '-p',
        '2',
        '--detached',
        '--',
        '1000000000',
        '20000',
        out,
        'incremental',
        `s3://weir/retained${native ? '-native' : ''}`,
        '100',
        '2',
        '20000',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
      await until(
        '20 completed checkpoints',
        async () => ((await client.checkpoints(jobId)).counts!.completed >= 20 ? true : undefined),
        90_000,
      );
      await cancel(jobId);
      const prefix = `retained${native ? '-native' : ''}/${jobId}/`;
      let last = '';
      await until(
        'storage holds only what the retained checkpoints reference',
        async () => {
          const keys = (await s3.keys(prefix)).map((k) => k.slice(prefix.length)).sort();
          const chk = [...new Set(keys.filter((k) => k.startsWith('chk-')).map((k) => k.split('/')[0]!))];
          if (chk.length !== 2) {
            last = `checkpoint directories: ${chk.join(', ')}`;
            return undefined;
          }
          const referenced = new Set<string>();
          for (const dir of chk) {
            referenced.add(`${dir}/_metadata`);
            const md = await s3json(`${prefix}${dir}/_metadata`);
            for (const op of Object.values(
              md.operators as Record<
                string,
                { subtasks: Record<string, { keyed?: { files?: Array<{ path: string }>; path?: string } }> }
              >,
            )) {
              for (const st of Object.values(op.subtasks)) {
                for (const f of st.keyed?.files ?? [])
                  referenced.add(path.posix.normalize(`${dir}/${f.path}`));
                if (st.keyed?.path) referenced.add(`${dir}/${st.keyed.path}`);
              }
            }
          }
          const expected = [...referenced].sort();
          if (JSON.stringify(keys) !== JSON.stringify(expected)) {
            last = `stored: ${keys.join(', ')}\nreferenced: ${expected.join(', ')}`;
            return undefined;
          }
          return keys;
        },
        20_000,
      ).catch((e: Error) => assert.fail(`${e.message}\n${last}`));
      const shared = (await s3.keys(`${prefix}shared/`)).length;
      assert.ok(shared > 0, 'the retained checkpoints share files');
    });
  });
