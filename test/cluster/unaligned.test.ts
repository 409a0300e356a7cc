import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import type { CheckpointStats } from '../../packages/core/src/index.js';
import { runWithTaskManagerKills } from '../helpers/kill-run.js';
import { ROOT, TestCluster, cancelWithSavepoint, tempDir, until, weir } from '../helpers/cli.js';

const job = path.join(ROOT, 'test/jobs/unaligned.ts');
const KEYS = 50;

/**
 * What the job writes for `records` inputs: per key (n % 50) its running count and sum after
 * each record. A key's records all come from one source subtask, in order, so the lines are
 * exact: a record lost or replayed twice shows as a missing or extra line.
 */
function reference(records: number): string[] {
  const count = new Array<number>(KEYS).fill(0);
  const sum = new Array<number>(KEYS).fill(0);
  const out: string[] = [];
  for (let n = 0; n < records; n++) {
    const k = n % KEYS;
    count[k]!++;
    sum[k]! += n;
    out.push(JSON.stringify([k, count[k], sum[k]]));
  }
  return out.sort();
}

function lines(...dirs: string[]): string[] {
  const out: string[] = [];
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).filter((n) => n.startsWith('part-')))
      for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) if (line) out.push(line);
  }
  return out.sort();
}

/** Equal to the reference, with a short account of the difference when not. */
function assertExact(got: string[], records: number): void {
  const ref = reference(records);
  if (got.length === ref.length && got.every((l, i) => l === ref[i])) return;
  const want = new Set(ref);
  const have = new Set(got);
  const missing = ref.filter((l) => !have.has(l));
  const extra = got.filter((l) => !want.has(l));
  const twice = got.filter((l, i) => i > 0 && got[i - 1] === l);
  assert.fail(
    `output differs from the reference: ${missing.length} missing (${missing.slice(0, 3).join(' ')}), ` +
      `${extra.length} unexpected, ${twice.length} twice (${twice.slice(0, 3).join(' ')})`,
  );
}

function completed(stats: CheckpointStats[]): CheckpointStats[] {
  return stats.filter((c) => c.status === 'COMPLETED' && !c.savepoint);
}

describe('unaligned checkpoints on a cluster', () => {
  let cluster: TestCluster;
  let client: ClusterClient;
  const work = tempDir();

  before(async () => {
    cluster = await new TestCluster({ taskManagers: 3, slots: 2 }).start();
    client = await ClusterClient.connect(cluster.address);
  });
  after(async () => {
    client?.close();
    await cluster?.stop();
  });

  test('three kill -9 of TaskManagers under heavy backpressure: output equals the reference', async () => {
    const records = 8000;
    const out = path.join(work, 'killed');
    // each kill comes after a checkpoint with in-flight data completed since the last restart,
    // so every restore replays channel state (without it, thousands of records go missing)
    let restoredFrom = 0;
    let withChannelState = 0;
    const hits = await runWithTaskManagerKills(
      cluster,
      job,
      [String(records), out, '800', 'unaligned'],
      3,
      async (c, jobId) => {
        const latest = (await c.checkpoints(jobId)).latestCompleted;
        if (!latest || latest.id <= restoredFrom || !latest.unaligned) return false;
        if ((latest.persistedDataBytes ?? 0) > 0) withChannelState++;
        restoredFrom = latest.id;
        return true;
      },
    );
    assertExact(lines(out), records);
    assert.equal(hits, 3, 'every kill hit the running job');
    assert.ok(withChannelState >= 2, `restores of checkpoints with in-flight data: ${withChannelState}`);
  });

  test('1 ms per record: unaligned checkpoints complete well under a second, retained one restores at the same parallelism only', async () => {
    const records = 5000;
    const out1 = path.join(work, 'timed-1');
    // parallelism 1: one core busy with the 1 ms records, the other left to the cluster (CI has two)
    const r = await cluster.run([
      'run',
      job,
      '--detached',
      '--',
      String(records),
      out1,
      '1000',
      'unaligned,retain',
      '1',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    // the source emits everything at once: the network is full of records for the whole run
    const history = await until(
      'five completed unaligned checkpoints with in-flight data',
      async () => {
        const h = completed((await client.checkpoints(jobId)).history ?? []);
        return h.filter((c) => c.unaligned && (c.persistedDataBytes ?? 0) > 0).length >= 5 ? h : undefined;
      },
      40_000,
    );
    const durations = history.map((c) => c.durationMs!).sort((a, b) => a - b);
    const median = durations[Math.floor(durations.length / 2)]!;
    assert.ok(median < 1000, `median checkpoint duration ${median} ms (all: ${durations.join(', ')})`);
    const c = await weir(['cancel', jobId, '--jobmanager', cluster.address]);
    assert.equal(c.code, 0, c.stderr);
    await until('canceled', async () =>
      (await client.status(jobId)).status === 'JOB_CANCELED' ? true : undefined,
    );
    const latest = (await client.checkpoints(jobId)).latestCompleted!;
    assert.ok(
      latest.unaligned && (latest.persistedDataBytes ?? 0) > 0,
      'the latest checkpoint holds in-flight data',
    );
    const chk = latest.path.replace(/^file:\/\//, '');
    const refused = await cluster.run([
      'run',
      job,
      '--from-savepoint',
      chk,
      '--',
      String(records),
      path.join(work, 'refused'),
      '0',
      'unaligned',
      '3',
    ]);
    assert.notEqual(refused.code, 0, 'a restore at parallelism 3 is refused');
    assert.match(
      refused.stderr + refused.stdout,
      /unaligned checkpoint.*parallelism changed.*take a savepoint/s,
    );
    const out2 = path.join(work, 'timed-2');
    const r2 = await cluster.run([
      'run',
      job,
      '--from-savepoint',
      chk,
      '--',
      String(records),
      out2,
      '0',
      'unaligned',
      '1',
    ]);
    assert.equal(r2.code, 0, r2.stderr);
    // committed before the cancel, then everything after the checkpoint: nothing lost, nothing twice
    assertExact(lines(out1, out2), records);
  });

  test('a savepoint of an unaligned job is aligned and restores at another parallelism', async () => {
    const records = 4000;
    const out1 = path.join(work, 'rescale-1');
    const out2 = path.join(work, 'rescale-2');
    const r = await cluster.run(['run', job, '--detached', '--', String(records), out1, '500', 'unaligned']);
    assert.equal(r.code, 0, r.stderr);
    const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    await until('an unaligned checkpoint completed', async () =>
      completed((await client.checkpoints(jobId)).history ?? []).some((c) => c.unaligned) ? true : undefined,
    );
    const { savepoint } = await cancelWithSavepoint(cluster, client, jobId, path.join(work, 'savepoints'));
    const sp = ((await client.checkpoints(jobId)).history ?? []).find((c) => c.savepoint)!;
    assert.equal(sp.unaligned, undefined, 'the savepoint was taken aligned');
    const r2 = await cluster.run([
      'run',
      job,
      '--from-savepoint',
      savepoint,
      '--',
      String(records),
      out2,
      '0',
      'unaligned',
      '3',
    ]);
    assert.equal(r2.code, 0, r2.stderr);
    assertExact(lines(out1, out2), records);
  });

  test('damaged channel state: the restore fails naming the file, not silently without in-flight data', async () => {
    const records = 6000;
    const r = await cluster.run([
      'run',
      job,
      '--detached',
      '--',
      String(records),
      path.join(work, 'damaged-1'),
      '1000',
      'unaligned,retain',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    await until('a checkpoint with in-flight data', async () =>
      completed((await client.checkpoints(jobId)).history ?? []).some((c) => (c.persistedDataBytes ?? 0) > 0)
        ? true
        : undefined,
    );
    const c = await weir(['cancel', jobId, '--jobmanager', cluster.address]);
    assert.equal(c.code, 0, c.stderr);
    await until('canceled', async () =>
      (await client.status(jobId)).status === 'JOB_CANCELED' ? true : undefined,
    );
    const latest = (await client.checkpoints(jobId)).latestCompleted!;
    const chk = latest.path.replace(/^file:\/\//, '');
    const dir = path.join(chk, 'channel-state');
    const files = readdirSync(dir);
    assert.ok(files.length > 0, 'the checkpoint has channel state files');
    for (const f of files) writeFileSync(path.join(dir, f), 'WCS1 not what was written');
    const r2 = await cluster.run([
      'run',
      job,
      '--from-savepoint',
      chk,
      '--',
      String(records),
      path.join(work, 'damaged-2'),
      '0',
      'unaligned',
    ]);
    assert.notEqual(r2.code, 0, 'the job does not run on without its in-flight data');
    assert.match(r2.stdout + r2.stderr, /channel-state\/\d+-[0-9a-f-]+/);
  });
});
