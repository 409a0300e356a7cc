import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import pg from 'pg';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { ROOT, TestCluster, until } from '../helpers/cli.js';
import { missingServers, startPostgres, type TestServer } from '../helpers/servers.js';
import { submittedId } from '../helpers/connectors.js';

const job = path.join(ROOT, 'test/jobs/sequence-to-slow-postgres.ts');
const skip = missingServers();

describe('PostgreSQL sink backpressure (a slow table)', { skip }, () => {
  let postgres: TestServer;
  let cluster: TestCluster;
  let client: ClusterClient;
  let db: pg.Client;

  before(async () => {
    [postgres, cluster] = await Promise.all([
      startPostgres(),
      new TestCluster({ taskManagers: 1, slots: 1 }).start(),
    ]);
    client = await ClusterClient.connect(cluster.address);
    db = new pg.Client({ connectionString: postgres.url });
    await db.connect();
  });
  after(async () => {
    client?.close();
    await db?.end().catch(() => {});
    await cluster?.stop();
    await postgres?.stop();
  });

  for (const semantic of ['at-least-once', 'exactly-once'] as const) {
    test(`${semantic}: the source reads no further ahead of the database than the sink's bound`, async () => {
      const N = 200_000;
      await db.query('DROP TABLE IF EXISTS slow');
      await db.query('CREATE TABLE slow (id bigint NOT NULL)');
      // every INSERT statement (one batch of 500 rows) takes 25 ms or more, and counts itself on a
      // sequence (not transactional, so batches of an open transaction count too)
      await db.query('DROP SEQUENCE IF EXISTS slow_batches');
      await db.query('CREATE SEQUENCE slow_batches');
      await db.query(`CREATE OR REPLACE FUNCTION slow_down() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN PERFORM nextval('slow_batches'); PERFORM pg_sleep(0.025); RETURN NULL; END $$`);
      await db.query(
        'CREATE TRIGGER slow_down AFTER INSERT ON slow FOR EACH STATEMENT EXECUTE FUNCTION slow_down()',
      );
      const r = await cluster.run(['run', job, '--detached', '--', postgres.url, String(N), semantic]);
      assert.equal(r.code, 0, r.stderr);
      const jobId = submittedId(r.stdout);
      // what the source emitted (recordsIn of the job) against what the database took
      let lead = 0;
      const log: string[] = [];
      for (let i = 0; i < 6; i++) {
        await new Promise((res) => setTimeout(res, 1_000));
        const s = await client.status(jobId);
        if (s.status !== 'JOB_RUNNING') break;
        const read = Number(s.recordsIn);
        // rows the database has taken: batches of 500 it ran (or is running)
        const { rows } = await db.query<{ n: string }>(
          'SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS n FROM slow_batches',
        );
        const taken = Number(rows[0]!.n) * 500;
        lead = Math.max(lead, read - taken);
        log.push(`${read}/${taken}`);
      }
      const s = await client.status(jobId);
      // unbounded, the sequence is read within a second or two while the table takes ~20k rows/s
      assert.equal(s.status, 'JOB_RUNNING', 'the job is held back by the slow table, not finished');
      assert.ok(Number(s.recordsIn) < N, `the source has not read everything: ${s.recordsIn}`);
      await client.cancel(jobId);
      await until('canceled', async () =>
        (await client.status(jobId)).status === 'JOB_CANCELED' ? true : undefined,
      );
      // the stats lag a little, so the lead is loose: (2 in flight + 1 filling) x 500 rows plus a source slice
      assert.ok(
        lead < 40_000,
        `the source ran ${lead} records ahead of the database (read/taken: ${log.join(' ')})`,
      );
    });
  }
});
