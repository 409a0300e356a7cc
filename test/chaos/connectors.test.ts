// Longer connector runs, outside `npm test`:
//   node --import tsx --test test/chaos/connectors.test.ts
// PostgreSQL and nats-server restarted (kill -9) under a running job, and a rescale through a
// savepoint with both connectors; each ends with the exact rows and no prepared transaction.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import pg from 'pg';
import { connect, type JetStreamManager, type NatsConnection } from 'nats';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { ROOT, TestCluster, cancelWithSavepoint, tempDir, until } from '../helpers/cli.js';
import { missingServers, startNats, startPostgres, type TestServer } from '../helpers/servers.js';
import { addStream, inexactKeys, preparedXacts, publish, submittedId } from '../helpers/connectors.js';

const toPostgres = path.join(ROOT, 'test/jobs/jetstream-to-postgres.ts');
const skip = missingServers();

describe('connectors: servers restarted and a rescale through a savepoint', { skip }, () => {
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
    nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    jsm = await nc.jetstreamManager();
  });
  after(async () => {
    client?.close();
    await db?.end().catch(() => {});
    await nc?.close().catch(() => {});
    await cluster?.stop();
    await Promise.all([nats?.stop(), postgres?.stop()]);
  });

  const connectDb = async (): Promise<pg.Client> => {
    await db?.end().catch(() => {});
    db = new pg.Client({ connectionString: postgres.url });
    db.on('error', () => {});
    await db.connect();
    return db;
  };

  /** waits until `table` holds n rows and nothing is left prepared */
  const settled = async (table: string, n: number): Promise<void> => {
    await until(
      `${n} rows in ${table}, none prepared`,
      async () => {
        const c = (await db.query<{ c: string }>(`SELECT count(*) AS c FROM ${table}`)).rows[0]!.c;
        return Number(c) >= n && (await preparedXacts(db)).length === 0 ? true : undefined;
      },
      120_000,
    );
  };

  test('PostgreSQL killed and restarted mid-job: the job fails over and resumes, every update once', async () => {
    const N = 20_000;
    await connectDb();
    await addStream(jsm, 'pgrestart');
    await db.query('CREATE TABLE counts_pg (k int NOT NULL, n int NOT NULL)');
    const r = await cluster.run([
      'run',
      toPostgres,
      '--detached',
      '--',
      nats.url,
      'pgrestart',
      postgres.url,
      'counts_pg',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const jobId = submittedId(r.stdout);
    const publishing = publish(nc, 'pgrestart', N, 1_500);
    await until(
      'rows arriving',
      async () => ((await db.query('SELECT 1 FROM counts_pg LIMIT 1')).rows.length > 0 ? true : undefined),
      60_000,
    );
    await postgres.restart();
    await connectDb();
    await publishing;
    await settled('counts_pg', N);
    assert.deepEqual(await inexactKeys(db, 'counts_pg', N / 1000), []);
    assert.ok((await client.status(jobId)).numRestarts >= 1, 'the job failed over');
    await client.cancel(jobId);
  });

  test('nats-server killed and restarted mid-job: the job resumes, every update once', async () => {
    const N = 20_000;
    await addStream(jsm, 'natsrestart');
    await db.query('CREATE TABLE counts_nats (k int NOT NULL, n int NOT NULL)');
    const r = await cluster.run([
      'run',
      toPostgres,
      '--detached',
      '--',
      nats.url,
      'natsrestart',
      postgres.url,
      'counts_nats',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const jobId = submittedId(r.stdout);
    await publish(nc, 'natsrestart', N / 2, 2_000);
    await nats.restart();
    await until(
      'the publisher reconnected',
      async () =>
        nc.isClosed()
          ? undefined
          : await jsm.streams.info('natsrestart').then(
              () => true,
              () => undefined,
            ),
      30_000,
    );
    await publish(nc, 'natsrestart', N / 2, 2_000, N / 2);
    await settled('counts_nats', N);
    assert.deepEqual(await inexactKeys(db, 'counts_nats', N / 1000), []);
    await client.cancel(jobId);
  });

  test('JetStream -> count -> PostgreSQL rescaled from 2 to 3 through a savepoint: every update once', async () => {
    const N = 16_000;
    await addStream(jsm, 'rescale');
    await db.query('CREATE TABLE counts_rescale (k int NOT NULL, n int NOT NULL)');
    const args = [nats.url, 'rescale', postgres.url, 'counts_rescale', 'append', '', '', '500'];
    const r = await cluster.run(['run', toPostgres, '--detached', '--', ...args, '2']);
    assert.equal(r.code, 0, r.stderr);
    const first = submittedId(r.stdout);
    await publish(nc, 'rescale', N / 2, 2_000);
    const { savepoint } = await cancelWithSavepoint(cluster, client, first, tempDir('weir-savepoints-'));
    const publishing = publish(nc, 'rescale', N / 2, 2_000, N / 2);
    const r2 = await cluster.run([
      'run',
      toPostgres,
      '--from-savepoint',
      savepoint,
      '--detached',
      '--',
      ...args,
      '3',
    ]);
    assert.equal(r2.code, 0, r2.stderr);
    await publishing;
    await settled('counts_rescale', N);
    assert.deepEqual(await inexactKeys(db, 'counts_rescale', N / 1000), []);
    await client.cancel(submittedId(r2.stdout));
  });
});
