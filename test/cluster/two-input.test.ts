import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { runWithTaskManagerKills } from '../helpers/kill-run.js';
import { ROOT, TestCluster, cancelWithSavepoint, tempDir, until } from '../helpers/cli.js';
import { RULE_COUNT, reference } from '../jobs/two-input-data.js';

const job = path.join(ROOT, 'test/jobs/two-input.ts');
const RECORDS = 6000;

/** Every committed line of a FileSink directory, sorted. */
function lines(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const f of readdirSync(dir).filter((n) => n.startsWith('part-')))
    for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) if (line) out.push(line);
  return out.sort();
}

/** Every output equals the reference exactly: nothing lost, nothing twice. */
function assertExact(outs: string[], skip: string[] = [], only?: string[]): void {
  const ref = reference(RECORDS, 2);
  assert.ok(ref.late!.length > 3, `the input has late left records (${ref.late!.length})`);
  for (const [dir, expected] of Object.entries(ref)) {
    if (only && !only.includes(dir)) continue;
    assert.ok(expected.length > 0, `${dir}: the reference is not empty`);
    const got = outs.flatMap((o) => lines(path.join(o, dir))).sort();
    const drop = (ls: string[]): string[] => ls.filter((l) => !skip.some((p) => l.startsWith(p)));
    assert.deepEqual(drop(got), drop([...expected].sort()), dir);
  }
}

function runJob(
  cluster: TestCluster,
  out: string,
  rate: number,
  backend: string,
  kills: number,
): Promise<number> {
  return runWithTaskManagerKills(cluster, job, [String(RECORDS), String(rate), out, backend], kills);
}

describe('two-input operators on a cluster: connect, joins, broadcast state, exactly once', () => {
  let cluster: TestCluster;
  const work = tempDir();

  before(async () => {
    cluster = await new TestCluster({ taskManagers: 3, slots: 2 }).start();
  });
  after(async () => {
    await cluster?.stop();
  });

  test('undisturbed run equals the reference (heap)', async () => {
    const out = path.join(work, 'plain');
    await runJob(cluster, out, 100_000, 'heap', 0);
    assertExact([out]);
  });

  test('kill -9 of TaskManagers mid-run: output still equals the reference (rocksdb)', async () => {
    const out = path.join(work, 'killed');
    const hits = await runJob(cluster, out, 1500, 'rocksdb', 2);
    assert.ok(hits >= 1, 'at least one kill hit the running job');
    assertExact([out]);
  });

  test('stop with a savepoint at parallelism 2, restore at 3: broadcast state, interval join and timers rescale exactly', async () => {
    const out1 = path.join(work, 'rescale-1');
    const out2 = path.join(work, 'rescale-2');
    const client = await ClusterClient.connect(cluster.address);
    try {
      const r = await cluster.run([
        'run',
        job,
        '--detached',
        '--',
        String(RECORDS),
        '500',
        out1,
        'heap',
        '2',
        'ij,late,bc',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
      await until('every task running, records flowing', async () => {
        const s = await client.status(jobId);
        return s.vertices.every((v) => v.subtasks.every((t) => t.state === 'RUNNING')) &&
          Number(s.recordsIn) > 1000
          ? true
          : undefined;
      });
      const { savepoint } = await cancelWithSavepoint(cluster, client, jobId, path.join(work, 'savepoints'));
      const r2 = await cluster.run([
        'run',
        job,
        '--from-savepoint',
        savepoint,
        '--',
        String(RECORDS),
        '100000',
        out2,
        'heap',
        '3',
        'ij,late,bc',
      ]);
      assert.equal(r2.code, 0, r2.stderr);
      assert.ok(lines(path.join(out2, 'ij')).length > 0, 'the restored run joined records');
      // rules echoed once per subtask: twice before the savepoint, three times after, each rule once overall
      const echoes = (out: string, copies: number): Set<string> => {
        const counts = new Map<string, number>();
        for (const l of lines(path.join(out, 'bc')).filter((x) => x.startsWith('["rule"')))
          counts.set(l, (counts.get(l) ?? 0) + 1);
        for (const [l, c] of counts) assert.equal(c, copies, `${l} echoed by every subtask`);
        return new Set(counts.keys());
      };
      const before = echoes(out1, 2);
      const afterRestore = echoes(out2, 3);
      assert.ok(before.size > 0 && afterRestore.size > 0, 'rules arrived before and after the savepoint');
      assert.equal(before.size + afterRestore.size, RULE_COUNT);
      // the keyed side reports the final rules on 3 subtasks: the restored broadcast state plus the rest
      assertExact([out1, out2], ['["rule"'], ['ij', 'late', 'bc']);
    } finally {
      client.close();
    }
  });
});
