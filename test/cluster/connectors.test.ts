import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import pg from 'pg';
import { connect, type NatsConnection, type JetStreamManager } from 'nats';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { ROOT, TestCluster, freePort, startWeirProcess, tempDir, until, weir } from '../helpers/cli.js';
import { missingServers, startNats, startPostgres, type TestServer } from '../helpers/servers.js';
import { addStream, preparedXacts, publish, submittedId } from '../helpers/connectors.js';

const toPostgres = path.join(ROOT, 'test/jobs/jetstream-to-postgres.ts');
const toJetStream = path.join(ROOT, 'test/jobs/jetstream-to-jetstream.ts');
const skip = missingServers();

/** Kills the TaskManager of a running task `rounds` times, each once the job runs again. */
async function killTaskManagers(
  cluster: TestCluster,
  client: ClusterClient,
  jobId: string,
  rounds: number,
): Promise<number> {
  let hits = 0;
  for (let round = 0; round < rounds; round++) {
    const d = await until(
      'all tasks running',
      async () => {
        const s = await client.status(jobId);
        return s.status === 'JOB_RUNNING' &&
          s.vertices.every((v) => v.subtasks.every((t) => t.state === 'RUNNING'))
          ? s
          : undefined;
      },
      60_000,
    );
    await new Promise((r) => setTimeout(r, 1_200 + Math.random() * 800));
    const busy = [...new Set(d.vertices.flatMap((v) => v.subtasks.map((t) => t.taskManagerId)))];
    process.kill(cluster.taskManagerPid(busy[Math.floor(Math.random() * busy.length)]!), 'SIGKILL');
    await until(
      'the job noticed the kill',
      async () => ((await client.status(jobId)).numRestarts > d.numRestarts ? true : undefined),
      20_000,
    );
    hits++;
  }
  return hits;
}

describe('connectors against real servers (nats-server -js, PostgreSQL)', { skip }, () => {
  let nats: TestServer;
  let postgres: TestServer;
  let cluster: TestCluster;
  let client: ClusterClient;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let db: pg.Client;

  before(async () => {
    [nats, postgres, cluster] = await Promise.all([
      startNats(),
      startPostgres(),
      new TestCluster({ taskManagers: 3, slots: 1 }).start(),
    ]);
    client = await ClusterClient.connect(cluster.address);
    nc = await connect({ servers: nats.url });
    jsm = await nc.jetstreamManager();
    db = new pg.Client({ connectionString: postgres.url });
    await db.connect();
  });
  after(async () => {
    client?.close();
    await db?.end().catch(() => {});
    await nc?.close().catch(() => {});
    await cluster?.stop();
    await Promise.all([nats?.stop(), postgres?.stop()]);
  });

  test('bounded JetStream -> keyed count -> PostgreSQL upsert: the job ends at the stream end with the exact counts', async () => {
    await addStream(jsm, 'bounded');
    await publish(nc, 'bounded', 10_000);
    await db.query('CREATE TABLE counts_bounded (k int PRIMARY KEY, n int NOT NULL)');
    const r = await cluster.run([
      'run',
      toPostgres,
      '--',
      nats.url,
      'bounded',
      postgres.url,
      'counts_bounded',
      'upsert',
      '',
      'bounded',
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const rows = (await db.query<{ k: number; n: number }>('SELECT k, n FROM counts_bounded ORDER BY k'))
      .rows;
    assert.equal(rows.length, 1000);
    for (const row of rows) assert.equal(row.n, 10, `key ${row.k}`);
    assert.deepEqual(await preparedXacts(db), []);
  });

  test('without checkpoints the exactly-once sink commits once at the end of input, after its flush finished', async () => {
    await db.query('CREATE TABLE counts_unchecked (k int PRIMARY KEY, n int NOT NULL)');
    const r = await cluster.run([
      'run',
      toPostgres,
      '--',
      nats.url,
      'bounded',
      postgres.url,
      'counts_unchecked',
      'upsert',
      '',
      'bounded',
      '0',
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const sum = await db.query<{ rows: string; total: string }>(
      'SELECT count(*) AS rows, sum(n) AS total FROM counts_unchecked',
    );
    assert.deepEqual(sum.rows[0], { rows: '1000', total: '10000' });
    assert.deepEqual(await preparedXacts(db), []);
  });

  test('JetStream -> keyed count -> PostgreSQL exactly-once under three kill -9 of TaskManagers: exact rows, no prepared transaction left', async () => {
    const N = 24_000;
    await addStream(jsm, 'orders');
    await db.query('CREATE TABLE counts (k int NOT NULL, n int NOT NULL)');
    const r = await cluster.run([
      'run',
      toPostgres,
      '--detached',
      '--',
      nats.url,
      'orders',
      postgres.url,
      'counts',
      'append',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const jobId = submittedId(r.stdout);
    const publishing = publish(nc, 'orders', N, 1_500);
    const hits = await killTaskManagers(cluster, client, jobId, 3);
    await publishing;
    assert.equal(hits, 3);
    // every count update exactly once: key k has the rows n = 1..N/1000, no gap, no repeat
    await until(
      'every update committed and no prepared transaction left',
      async () => {
        const [{ c }] = (await db.query<{ c: string }>('SELECT count(*) AS c FROM counts')).rows as [
          { c: string },
        ];
        return Number(c) >= N && (await preparedXacts(db)).length === 0 ? true : undefined;
      },
      90_000,
    );
    const bad = await db.query(
      `SELECT k, count(*) AS rows, count(DISTINCT n) AS distinct_n, min(n) AS lo, max(n) AS hi FROM counts
        GROUP BY k HAVING count(*) <> $1 OR count(DISTINCT n) <> $1 OR min(n) <> 1 OR max(n) <> $1`,
      [N / 1000],
    );
    assert.deepEqual(bad.rows, [], 'keys whose updates are missing or repeated');
    const [{ keys }] = (await db.query<{ keys: string }>('SELECT count(DISTINCT k) AS keys FROM counts'))
      .rows as [{ keys: string }];
    assert.equal(Number(keys), 1000);
    const d = await client.status(jobId);
    assert.ok(d.numRestarts >= 3, `${d.numRestarts} restarts`);
    await client.cancel(jobId);
  });

  test('JetStream -> map -> JetStream exactly-once under kill -9: every input message once in the output stream', async () => {
    const N = 20_000;
    await addStream(jsm, 'src');
    await addStream(jsm, 'dst');
    const r = await cluster.run(['run', toJetStream, '--detached', '--', nats.url, 'src', 'dst']);
    assert.equal(r.code, 0, r.stderr);
    const jobId = submittedId(r.stdout);
    const publishing = publish(nc, 'src', N, 1_500);
    await killTaskManagers(cluster, client, jobId, 2);
    await publishing;
    await until(
      'every message in the output stream',
      async () => ((await jsm.streams.info('dst')).state.messages >= N ? true : undefined),
      90_000,
    );
    // a late duplicate would arrive after the last checkpoint's replay: give it time
    await new Promise((res) => setTimeout(res, 2_000));
    await client.cancel(jobId);
    const info = await jsm.streams.info('dst');
    assert.equal(info.state.messages, N, 'no message twice');
    const seen = new Uint8Array(N);
    const consumer = await nc.jetstream().consumers.get('dst');
    const messages = await consumer.fetch({ max_messages: N, expires: 5_000 });
    let got = 0;
    for await (const m of messages) {
      const v = m.json<number>();
      assert.equal(v % 2, 0);
      seen[v / 2] = 1;
      if (++got === N) break;
    }
    assert.equal(got, N);
    assert.equal(seen.indexOf(0), -1, 'every input message in the output');
  });

  test('bounded PostgreSQL source split by id ranges -> PostgreSQL sink: every row once', async () => {
    const N = 5_000;
    await db.query('CREATE TABLE src (id bigint PRIMARY KEY, v int NOT NULL)');
    await db.query('CREATE TABLE dst (id bigint NOT NULL, v int NOT NULL)');
    await db.query('INSERT INTO src SELECT g, g % 97 FROM generate_series(1, $1::int) g', [N]);
    const r = await cluster.run([
      'run',
      path.join(ROOT, 'test/jobs/postgres-copy.ts'),
      '--',
      postgres.url,
      String(N),
      '5',
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const check = await db.query<{ rows: string; ids: string; wrong: string }>(
      `SELECT count(*) AS rows, count(DISTINCT id) AS ids, count(*) FILTER (WHERE v <> (id % 97) * 2) AS wrong FROM dst`,
    );
    assert.deepEqual(check.rows[0], { rows: String(N), ids: String(N), wrong: '0' });
  });

  describe('bad input', () => {
    before(async () => {
      await addStream(jsm, 'input');
      await publish(nc, 'input', 2_000);
      await db.query('CREATE TABLE good (k int NOT NULL, n int NOT NULL)');
    });
    const failsWith = async (args: string[], pattern: RegExp): Promise<void> => {
      const r = await cluster.run(['run', toPostgres, '--', ...args], { timeoutMs: 60_000 });
      assert.notEqual(r.code, 0);
      assert.match(r.stdout + r.stderr, pattern);
    };

    test('an unreachable broker: the error names the address', async () => {
      await failsWith(
        ['nats://127.0.0.1:1', 'input', postgres.url, 'good', 'append', '', 'bounded', '500', '1', '0'],
        /cannot reach the NATS server at nats:\/\/127\.0\.0\.1:1/,
      );
    });

    test('a missing stream or table: the error names it', async () => {
      await failsWith(
        [nats.url, 'nosuchstream', postgres.url, 'good', 'append', '', 'bounded', '500', '1', '0'],
        /stream 'nosuchstream' does not exist/,
      );
      await failsWith(
        [nats.url, 'input', postgres.url, 'no_such_table', 'append', '', 'bounded', '500', '1', '0'],
        /table no_such_table does not exist/,
      );
    });

    test('an unreachable database: the error names the address', async () => {
      await failsWith(
        [
          nats.url,
          'bounded',
          'postgres://weir@127.0.0.1:1/weir',
          'counts',
          'append',
          '',
          'bounded',
          '500',
          '1',
          '0',
        ],
        /cannot connect to PostgreSQL at 127\.0\.0\.1:1\/weir/,
      );
    });

    test('a record that does not fit the table: the job fails naming the row and the column', async () => {
      await db.query('CREATE TABLE narrow (k date NOT NULL, n int NOT NULL)');
      await failsWith(
        [nats.url, 'input', postgres.url, 'narrow', 'append', '', 'bounded', '500', '1', '0'],
        /the row \{"k":\d+,"n":\d+\} does not fit the table: column "k": [^\n]*"\d+"/,
      );
      assert.deepEqual(await preparedXacts(db), []);
    });

    test('max_prepared_transactions = 0: exactly-once refused, naming the setting', async () => {
      const noPrepared = await startPostgres({ maxPreparedTransactions: 0 });
      try {
        const c = new pg.Client({ connectionString: noPrepared.url });
        await c.connect();
        await c.query('CREATE TABLE good (k int, n int)');
        await c.end();
        await failsWith(
          [nats.url, 'input', noPrepared.url, 'good', 'append', '', 'bounded', '500', '1', '0'],
          /max_prepared_transactions is 0.*set max_prepared_transactions/,
        );
      } finally {
        await noPrepared.stop();
      }
    });
  });
});

describe('the JobManager killed between PREPARE TRANSACTION and COMMIT PREPARED', { skip }, () => {
  const dir = tempDir('weir-connectors-jm-');
  const children: ChildProcess[] = [];
  let nats: TestServer;
  let postgres: TestServer;
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all([nats?.stop(), postgres?.stop()]);
  });

  test('the restore commits the prepared transaction the completed checkpoint names; rows exact, none left prepared', async () => {
    const N = 8_000;
    [nats, postgres] = await Promise.all([startNats(), startPostgres()]);
    const nc = await connect({ servers: nats.url });
    const db = new pg.Client({ connectionString: postgres.url });
    await db.connect();
    try {
      await addStream(await nc.jetstreamManager(), 'jm');
      await db.query('CREATE TABLE counts (k int NOT NULL, n int NOT NULL)');
      const port = await freePort();
      const jmArgs = [
        'jobmanager',
        '--port',
        String(port),
        '--checkpoint-dir',
        path.join(dir, 'checkpoints'),
        '--job-store',
        path.join(dir, 'ha'),
      ];
      const startAll = async (): Promise<string> => {
        const jm = await startWeirProcess(jmArgs, path.join(dir, 'jobmanager.log'));
        children.push(jm.child);
        for (const id of ['tm-a', 'tm-b']) {
          const tm = await startWeirProcess(
            [
              'taskmanager',
              '--jobmanager',
              jm.address,
              '--slots',
              '1',
              '--id',
              id,
              '--work-dir',
              path.join(dir, id),
            ],
            path.join(dir, `${id}.log`),
          );
          children.push(tm.child);
        }
        return jm.address;
      };
      let address = await startAll();
      const r = await weir([
        'run',
        path.join(ROOT, 'test/jobs/jetstream-to-postgres-slow-commit.ts'),
        '--jobmanager',
        address,
        '--detached',
        '--',
        nats.url,
        'jm',
        postgres.url,
        'counts',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const jobId = submittedId(r.stdout);
      const publishing = publish(nc, 'jm', N, 1_000);
      let client = await ClusterClient.connect(address);
      // a transaction prepared for a checkpoint the JobManager completed, its commit not yet run
      const gid = await until(
        'a completed checkpoint whose transaction is still prepared',
        async () => {
          const latest = (await client.checkpoints(jobId)).latestCompleted?.id ?? 0;
          const prepared = await preparedXacts(db);
          return prepared.find((g) => latest >= 2 && Number(g.split(':').pop()) <= latest);
        },
        60_000,
      );
      client.close();
      for (const c of children) c.kill('SIGKILL');
      await Promise.all(
        children.map((c) =>
          c.exitCode === null && c.signalCode === null
            ? new Promise((res) => c.once('exit', res))
            : undefined,
        ),
      );
      assert.ok(
        (await preparedXacts(db)).includes(gid),
        `${gid} is still prepared while the cluster is down`,
      );
      await publishing;
      address = await startAll();
      client = await ClusterClient.connect(address);
      try {
        await until(
          'every update committed and no prepared transaction left',
          async () => {
            const [{ c }] = (await db.query<{ c: string }>('SELECT count(*) AS c FROM counts')).rows as [
              { c: string },
            ];
            return Number(c) >= N && (await preparedXacts(db)).length === 0 ? true : undefined;
          },
          90_000,
        );
        const bad = await db.query(
          `SELECT k FROM counts GROUP BY k
            HAVING count(*) <> $1 OR count(DISTINCT n) <> $1 OR min(n) <> 1 OR max(n) <> $1`,
          [N / 1000],
        );
        assert.deepEqual(bad.rows, [], 'keys whose updates are missing or repeated');
        const logs = ['tm-a', 'tm-b']
          .map((id) => readFileSync(path.join(dir, `${id}.log`), 'utf8'))
          .join('\n');
        assert.match(
          logs,
          /recovered subtask \d: committed [1-9]\d* prepared transaction\(s\) the checkpoint names/,
        );
        await client.cancel(jobId);
      } finally {
        client.close();
      }
    } finally {
      await db.end();
      await nc.close();
    }
  });
});
