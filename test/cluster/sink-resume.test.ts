import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { ROOT, TestCluster, cancelWithSavepoint, tempDir, until } from '../helpers/cli.js';

const job = path.join(ROOT, 'test/jobs/keyed-updates.ts');
const RECORDS = 60_000;
const RATE = 6_000;
// the resumed run reads the rest at full speed: only the first run needs the rate, to be
// stopped with a savepoint mid-stream
const RESUME_RATE = 10_000_000;
const KEYS = 500;

/** Every update the job emits, as FileSink writes it: one JSON line per record. */
function referenceLines(): string[] {
  const count = new Array<number>(KEYS).fill(0);
  const sum = new Array<number>(KEYS).fill(0);
  const lines: string[] = [];
  for (let i = 0; i < RECORDS; i++) {
    const k = i % KEYS;
    lines.push(JSON.stringify([k, ++count[k]!, (sum[k]! += i)]));
  }
  return lines.sort();
}

const committedFiles = (dir: string): string[] => readdirSync(dir).filter((f) => f.startsWith('part-'));
const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Files another job left in the directory, under the names older versions gave committed files. */
const FOREIGN: Record<string, string> = {
  'part-0-1-0': '["another job",1]\n',
  'part-1-2-0': '["another job",2]\n',
  'part-2-1-0': '["another job",3]\n',
  [`.part-0-${'ab'.repeat(16)}-0.anotherjob.inprogress`]: '["another job",4]\n',
};

describe('resuming a FileSink job from a savepoint into the same path', () => {
  let cluster: TestCluster;
  let client: ClusterClient;
  const work = tempDir();
  before(async () => {
    cluster = await new TestCluster({ taskManagers: 2, slots: 2 }).start();
    client = await ClusterClient.connect(cluster.address);
  });
  after(async () => {
    client?.close();
    await cluster?.stop();
  });

  for (const resumeAt of [3, 1]) {
    test(`weir cancel --savepoint at parallelism 2, weir run --from-savepoint at ${resumeAt} into the same path: every update exactly once, no committed file changed`, async () => {
      const out = path.join(work, `out-p${resumeAt}`);
      const r = await cluster.run([
        'run',
        job,
        '-p',
        '2',
        '--detached',
        '--',
        String(RECORDS),
        String(RATE),
        String(KEYS),
        out,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const firstJob = /submitted with id (\w+)/.exec(r.stdout)![1]!;
      await until(
        'a third of the input read and some output committed',
        async () => {
          const d = await client.status(firstJob);
          if (Number(d.recordsIn) < RECORDS / 3) return undefined;
          try {
            return committedFiles(out).length >= 2 ? true : undefined;
          } catch {
            return undefined;
          }
        },
        60_000,
      );
      const { savepoint, details } = await cancelWithSavepoint(
        cluster,
        client,
        firstJob,
        path.join(work, 'savepoints'),
      );
      assert.ok(Number(details.recordsIn) < RECORDS, 'the first run was stopped before its end');

      for (const [name, text] of Object.entries(FOREIGN)) writeFileSync(path.join(out, name), text);
      const before = new Map(readdirSync(out).map((f) => [f, sha256(path.join(out, f))]));
      const firstCommitted = committedFiles(out).filter((f) => !(f in FOREIGN));
      assert.ok(firstCommitted.length >= 2, `the first run committed files: ${firstCommitted.join(', ')}`);

      const r2 = await cluster.run(
        [
          'run',
          job,
          '-p',
          String(resumeAt),
          '--from-savepoint',
          savepoint,
          '--',
          String(RECORDS),
          String(RESUME_RATE),
          String(KEYS),
          out,
        ],
        { timeoutMs: 180_000 },
      );
      assert.equal(r2.code, 0, r2.stderr);
      const secondJob = /submitted with id (\w+)/.exec(r2.stdout)![1]!;

      // no committed file of the first run changed or went
      const changed = (names: string[]): string[] =>
        names.filter((f) => {
          try {
            return sha256(path.join(out, f)) !== before.get(f);
          } catch {
            return true;
          }
        });
      assert.deepEqual(changed(firstCommitted), [], 'committed files of the first run changed or removed');
      // the union of the committed output is the reference: every update exactly once
      const lines = committedFiles(out)
        .filter((f) => !(f in FOREIGN))
        .flatMap((f) => readFileSync(path.join(out, f), 'utf8').split('\n'))
        .filter(Boolean)
        .sort();
      assert.equal(lines.length, RECORDS, 'as many committed updates as input records');
      assert.deepEqual(lines, referenceLines());
      // nothing in progress is left but the other job's file: the savepoint's pending files were
      // committed by the resumed job, the canceled run's open ones removed when it closed
      assert.deepEqual(
        readdirSync(out).filter((f) => f.startsWith('.')),
        Object.keys(FOREIGN).filter((f) => f.startsWith('.')),
        `no in-progress file of ${firstJob} or ${secondJob} left`,
      );
      // files of another job in the directory are never touched
      assert.deepEqual(changed(Object.keys(FOREIGN)), [], 'files of another job changed or removed');
    });
  }

  describe('bad input', () => {
    const outA = path.join(work, 'bad-a');
    let jobA = '';
    before(async () => {
      const r = await cluster.run(['run', job, '-p', '1', '--detached', '--', '10000000', '500', '10', outA]);
      assert.equal(r.code, 0, r.stderr);
      jobA = /submitted with id (\w+)/.exec(r.stdout)![1]!;
      await until('job A running', async () =>
        (await client.status(jobA)).status === 'JOB_RUNNING' ? true : undefined,
      );
    });
    after(async () => {
      if (jobA) await cluster.run(['cancel', jobA]);
    });

    test("a second job writing to a running job's sink path is refused, naming both", async () => {
      const r = await cluster.run(['run', job, '-p', '1', '--', '100', '100', '10', outA]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        new RegExp(
          `Job 'keyed-updates' is refused: 'Sink: FileSink' writes to ${outA}, where job ${jobA} \\('keyed-updates'\\) is writing\\. Two running jobs in one directory mix their output; give this job another path, or stop job ${jobA} first`,
        ),
      );
      // a relative path resolving to the same directory is the same path
      const rel = await cluster.run(['run', job, '-p', '1', '--', '100', '100', '10', path.basename(outA)], {
        cwd: work,
      });
      assert.equal(rel.code, 1);
      assert.match(rel.stderr, /is refused: 'Sink: FileSink' writes to .*bad-a, where job/);
    });

    test('two sinks of one job in one directory, and output inside the checkpoint storage, are refused', async () => {
      const twin = path.join(work, 'twin');
      const r = await cluster.run(['run', job, '-p', '1', '--', '100', '100', '10', twin, twin]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /its sinks 'Sink: FileSink' \(uid-sink\) and 'Sink: FileSink' \(uid-sink-2\) both write to .*twin\. Give each FileSink a directory of its own/,
      );
      const inside = path.join(cluster.dir, 'checkpoints', 'out');
      const c = await cluster.run(['run', job, '-p', '1', '--', '100', '100', '10', inside]);
      assert.equal(c.code, 1);
      assert.match(
        c.stderr,
        /writes to .*checkpoints\/out, inside the checkpoint storage .*checkpoints, where checkpoint directories are deleted when newer ones complete/,
      );
    });

    test("a savepoint into a running job's output directory is refused, and the job keeps running", async () => {
      for (const target of [outA, path.join(outA, 'savepoints')]) {
        const r = await cluster.run(['cancel', jobA, '--savepoint', target]);
        assert.equal(r.code, 1);
        assert.match(
          r.stderr,
          new RegExp(
            `Savepoint target '${target}' is refused: it is inside ${outA}, the output directory of 'Sink: FileSink' of job ${jobA} \\('keyed-updates'\\)`,
          ),
        );
      }
      assert.equal((await client.status(jobA)).status, 'JOB_RUNNING');
      assert.deepEqual(
        readdirSync(outA).filter((f) => !/^\.?part-/.test(f)),
        [],
        'nothing but part files in the output directory',
      );
    });

    test('a restore from an output directory is refused: it holds no savepoint', async () => {
      const r = await cluster.run([
        'run',
        job,
        '-p',
        '1',
        '--from-savepoint',
        outA,
        '--',
        '100',
        '100',
        '10',
        path.join(work, 'bad-restore'),
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`No _metadata in ${outA}: not a savepoint or completed checkpoint`));
    });
  });
});
