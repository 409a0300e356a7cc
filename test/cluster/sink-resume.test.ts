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
          String(RATE),
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
      // the resumed job left nothing in progress
      const leftovers = readdirSync(out).filter((f) => f.startsWith('.') && f.includes(`.${secondJob}.`));
      assert.deepEqual(leftovers, []);
      // files of another job in the directory are never touched
      assert.deepEqual(changed(Object.keys(FOREIGN)), [], 'files of another job changed or removed');
    });
  }
});
