import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import type { SinkWriter, TaskInfo } from '@weir/api';
import { PostgresSink } from '@weir/connectors';
import { missingServers, startPostgres, type TestServer } from '../helpers/servers.js';

const skip = missingServers();

function info(over: Partial<TaskInfo> = {}): TaskInfo {
  return {
    jobId: 'job',
    taskName: 'Sink (1/1)',
    subtaskIndex: 0,
    parallelism: 1,
    attemptNumber: 0,
    workingDirectory: process.cwd(),
    checkpointingEnabled: true,
    ...over,
  };
}

/**
 * The exactly-once PostgreSQL sink driven the way a task drives it (write, barrier, async
 * pre-commit, completion, restore), against a real server, so each step's visibility is checked.
 */
describe('PostgreSQL sink, exactly-once, step by step against a real server', { skip }, () => {
  let server: TestServer;
  let db: pg.Client;
  before(async () => {
    server = await startPostgres();
    db = new pg.Client({ connectionString: server.url });
    await db.connect();
  });
  after(async () => {
    await db?.end().catch(() => {});
    await server?.stop();
  });

  const rows = async (table: string): Promise<number> =>
    Number((await db.query<{ c: string }>(`SELECT count(*) AS c FROM ${table}`)).rows[0]!.c);
  const prepared = async (): Promise<string[]> =>
    (await db.query<{ gid: string }>('SELECT gid FROM pg_prepared_xacts ORDER BY gid')).rows.map(
      (r) => r.gid,
    );
  const sink = (table: string) =>
    new PostgresSink<[number, number]>({
      connection: server.url,
      table,
      columns: ['k', 'n'],
      toRow: (r) => r,
      batchSize: 10,
    });

  test('full batches stay inside the checkpoint transaction: nothing visible before the checkpoint completes', async () => {
    await db.query('CREATE TABLE t1 (k int, n int)');
    const w = sink('t1').createWriter(info());
    await w.open!();
    for (let i = 0; i < 25; i++) w.write([i, i]);
    const state = w.snapshotState!(1);
    await w.preCommitted!(1);
    assert.equal(await rows('t1'), 0, 'rows of full batches visible before the commit');
    assert.equal((await prepared()).length, 1);
    assert.equal(state.length, 1);
    await w.notifyCheckpointComplete!(1);
    assert.equal(await rows('t1'), 25);
    assert.deepEqual(await prepared(), []);
    await w.close!();
  });

  test('restore: commits what the checkpoint names, rolls back what it does not', async () => {
    await db.query('CREATE TABLE t2 (k int, n int)');
    const s = sink('t2');
    const w: SinkWriter<[number, number]> = s.createWriter(info());
    await w.open!();
    for (let i = 0; i < 5; i++) w.write([i, 1]);
    const checkpointed = w.snapshotState!(1);
    await w.preCommitted!(1);
    // checkpoint 1 completed, but the process died before the commit; a second transaction
    // was prepared for checkpoint 2, which never completed
    for (let i = 0; i < 7; i++) w.write([i, 2]);
    w.snapshotState!(2);
    await w.preCommitted!(2);
    await w.close!();
    assert.equal((await prepared()).length, 2);
    const restored = s.createWriter(info({ attemptNumber: 1, restoredCheckpointId: 1 }), checkpointed);
    await restored.open!();
    assert.deepEqual(await prepared(), []);
    assert.deepEqual((await db.query('SELECT n, count(*)::int AS c FROM t2 GROUP BY n ORDER BY n')).rows, [
      { n: 1, c: 5 },
    ]);
    await restored.close!();
  });

  test('without periodic checkpoints everything is committed at the end of input', async () => {
    await db.query('CREATE TABLE t3 (k int, n int)');
    const w = sink('t3').createWriter(info({ checkpointingEnabled: false }));
    await w.open!();
    for (let i = 0; i < 25; i++) w.write([i, i]);
    await w.flush!(true);
    await w.close!();
    assert.equal(await rows('t3'), 25);
    assert.deepEqual(await prepared(), []);
  });
});
