import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { connect, type NatsConnection, type JetStreamManager } from 'nats';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { ROOT, TestCluster, tempDir, until } from '../helpers/cli.js';
import { missingServers, startNats, startPostgres, type TestServer } from '../helpers/servers.js';
import { addStream, preparedXacts, submittedId } from '../helpers/connectors.js';

const job = path.join(ROOT, 'test/jobs/jetstream-discovery.ts');
const skip = missingServers();

/** Publishes the integers [from, to) as JSON, integer i onto `<stream>.s<i % subjects>`. */
async function publishOnto(nc: NatsConnection, stream: string, subjects: number, from: number, to: number) {
  const js = nc.jetstream();
  const pending: Array<Promise<unknown>> = [];
  for (let i = from; i < to; i++) {
    pending.push(js.publish(`${stream}.s${i % subjects}`, JSON.stringify(i)));
    if (pending.length >= 500) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
}

interface Metadata {
  operators: Record<
    string,
    {
      coordinatorState?: { enumerator: { assigned: string[] } };
      subtasks: Record<string, { operatorState?: Array<{ splitId: string }> }>;
    }
  >;
}

/** The `_metadata` of the job's newest checkpoint under `dir`. */
function latestCheckpoint(dir: string, jobId: string): Metadata {
  const files = (readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => f.includes(jobId) && /chk-\d+[/\\]_metadata$/.test(f))
    .sort((a, b) => Number(/chk-(\d+)/.exec(b)![1]) - Number(/chk-(\d+)/.exec(a)![1]));
  assert.ok(files.length > 0, `no checkpoint of ${jobId} under ${dir}`);
  return JSON.parse(readFileSync(path.join(dir, files[0]!), 'utf8')) as Metadata;
}

/** Every subject's split known to the enumerator and held by exactly one of `parallelism` readers, each with some. */
function assertSplits(md: Metadata, stream: string, subjects: number, parallelism: number): void {
  const source = Object.values(md.operators).find((o) => o.coordinatorState);
  assert.ok(source, 'the source operator has coordinator state in the checkpoint');
  const ids = Array.from({ length: subjects }, (_, k) => `${stream}:${stream}.s${k}`).sort();
  assert.deepEqual([...source.coordinatorState!.enumerator.assigned].sort(), ids);
  const held = Object.values(source.subtasks).map((t) => (t.operatorState ?? []).map((x) => x.splitId));
  assert.equal(held.length, parallelism);
  assert.deepEqual(held.flat().sort(), ids, 'each split held by exactly one reader');
  assert.ok(
    held.every((h) => h.length > 0),
    `every reader has splits: ${JSON.stringify(held)}`,
  );
}

describe('split enumerator on the JobManager (nats-server -js, PostgreSQL)', { skip }, () => {
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

  const rows = async (table: string) =>
    Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n);

  /** Every integer in [0, n) doubled in `table` exactly once, and no prepared transaction left. */
  async function assertExactlyOnce(table: string, n: number): Promise<void> {
    const wrong = await db.query(
      `SELECT v, count(*) AS c FROM ${table} GROUP BY v HAVING count(*) <> 1 OR v % 2 <> 0 OR v < 0 OR v >= $1 LIMIT 5`,
      [2 * n],
    );
    assert.deepEqual(wrong.rows, [], 'no row twice, none out of range');
    assert.equal(await rows(table), n, 'every message once');
    assert.deepEqual(await preparedXacts(db), []);
  }

  const allRunning = (jobId: string) =>
    until(
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

  const rowsReach = (table: string, n: number) =>
    until('every message in the table', async () => ((await rows(table)) >= n ? true : undefined), 90_000);

  test('subjects added while the job runs are discovered and read exactly once, across kill -9 of TaskManagers', async () => {
    const N = 6_000;
    await addStream(jsm, 'disc');
    await db.query('CREATE TABLE disc (v bigint NOT NULL)');
    await publishOnto(nc, 'disc', 2, 0, N / 3);
    const r = await cluster.run(['run', job, '--detached', '--', nats.url, 'disc', postgres.url, 'disc']);
    assert.equal(r.code, 0, r.stderr);
    const jobId = submittedId(r.stdout);
    const killOne = async () => {
      const d = await allRunning(jobId);
      await new Promise((res) => setTimeout(res, 800));
      const busy = [...new Set(d.vertices.flatMap((v) => v.subtasks.map((t) => t.taskManagerId)))];
      process.kill(cluster.taskManagerPid(busy[Math.floor(Math.random() * busy.length)]!), 'SIGKILL');
      await until(
        'the job noticed the kill',
        async () => ((await client.status(jobId)).numRestarts > d.numRestarts ? true : undefined),
        20_000,
      );
    };
    await allRunning(jobId);
    await rowsReach('disc', N / 3);
    // two new subjects appear while the job runs (s2, s3), then a TaskManager dies
    await publishOnto(nc, 'disc', 4, N / 3, (2 * N) / 3);
    await killOne();
    // and another one (s4) after the restart, with a second kill
    await publishOnto(nc, 'disc', 5, (2 * N) / 3, N);
    await killOne();
    await rowsReach('disc', N);
    // a late duplicate would come with the next checkpoints: give them time
    await new Promise((res) => setTimeout(res, 1_500));
    assert.equal((await client.status(jobId)).status, 'JOB_RUNNING');
    assertSplits(latestCheckpoint(cluster.dir, jobId), 'disc', 5, 2);
    await client.cancel(jobId);
    await assertExactlyOnce('disc', N);
  });

  test('rescaled through a savepoint from 2 to 3 readers: splits redistributed, new subjects found, every message once', async () => {
    const N = 6_000;
    await addStream(jsm, 'resc');
    await db.query('CREATE TABLE resc (v bigint NOT NULL)');
    await publishOnto(nc, 'resc', 3, 0, N / 3);
    const first = await cluster.run([
      'run',
      job,
      '--detached',
      '--',
      nats.url,
      'resc',
      postgres.url,
      'resc',
      '2',
    ]);
    assert.equal(first.code, 0, first.stderr);
    const jobId = submittedId(first.stdout);
    await allRunning(jobId);
    await rowsReach('resc', N / 3);
    // more on the old subjects and a new one, then the savepoint lands somewhere in the middle
    const publishing = publishOnto(nc, 'resc', 4, N / 3, (2 * N) / 3);
    await new Promise((res) => setTimeout(res, 200));
    const savepoint = await client.savepoint(jobId, tempDir('weir-savepoint-'), true);
    await publishing;
    await publishOnto(nc, 'resc', 5, (2 * N) / 3, N);
    const second = await cluster.run([
      'run',
      job,
      '--detached',
      '--from-savepoint',
      savepoint,
      '--',
      nats.url,
      'resc',
      postgres.url,
      'resc',
      '3',
    ]);
    assert.equal(second.code, 0, second.stderr);
    const rescaled = submittedId(second.stdout);
    await allRunning(rescaled);
    await rowsReach('resc', N);
    await new Promise((res) => setTimeout(res, 1_500));
    assertSplits(latestCheckpoint(cluster.dir, rescaled), 'resc', 5, 3);
    await client.cancel(rescaled);
    await assertExactlyOnce('resc', N);
  });
});
