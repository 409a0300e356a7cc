// The fault suite's checks (test/chaos/check.ts) must catch what they claim to: a repeated
// update, a lost one, a wrong sum, and files an ended job left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KEYS, checkOutput, findOrphans } from '../chaos/check.js';
import { tempDir } from '../helpers/cli.js';

const RECORDS = 3 * KEYS;

/** Exactly-once output of test/chaos/job.ts for RECORDS records, in two part files, records of a key in the order given. */
function write(
  dir: string,
  order: (k: number) => number[],
  edit: (lines: string[]) => string[] = (l) => l,
): void {
  mkdirSync(dir, { recursive: true });
  const lines: string[] = [];
  for (let k = 0; k < KEYS; k++) {
    let sum = 0;
    order(k).forEach((i, c) => lines.push(JSON.stringify([k, c + 1, (sum += i)])));
  }
  const all = edit(lines);
  const half = Math.floor(all.length / 2);
  writeFileSync(path.join(dir, 'part-0-1-0'), all.slice(0, half).join('\n') + '\n');
  writeFileSync(path.join(dir, 'part-1-1-0'), all.slice(half).join('\n') + '\n');
}

const ascending = (k: number): number[] => [k, k + KEYS, k + 2 * KEYS];

test('exact output passes, in any arrival order of a key', () => {
  const a = tempDir();
  write(a, ascending);
  assert.deepEqual(checkOutput(a, RECORDS), { exact: true, problems: [] });
  const b = tempDir();
  write(b, (k) => ascending(k).reverse());
  assert.deepEqual(checkOutput(b, RECORDS), { exact: true, problems: [] });
});

test('a repeated update, a lost one and a wrong sum are each caught, naming key and file', () => {
  const rep = tempDir();
  write(rep, ascending, (l) => [...l, l[5]!]);
  const r1 = checkOutput(rep, RECORDS);
  assert.equal(r1.exact, false);
  assert.match(
    r1.problems.join('\n'),
    /key 1: 1 counts repeated \(e\.g\. count 3 in part-0-1-0, part-1-1-0\)/,
  );

  const lost = tempDir();
  write(lost, ascending, (l) => l.filter((_, i) => i !== 7));
  assert.match(checkOutput(lost, RECORDS).problems.join('\n'), /key 2: 1 counts missing \(e\.g\. 2\)/);

  const sum = tempDir();
  // the same counts, but key 4 saw record 4 twice and never 1004
  write(sum, (k) => (k === 4 ? [4, 4, 2004] : ascending(k)));
  assert.match(
    checkOutput(sum, RECORDS).problems.join('\n'),
    /key 4: 1 wrong sums \(e\.g\. count 2 in part-0-1-0\)/,
  );
});

test("orphans: in-progress sink files, anything under an ended job's checkpoint directory, its job store entry", () => {
  const dir = tempDir();
  const sink = path.join(dir, 'out');
  write(sink, ascending);
  writeFileSync(path.join(sink, '.part-0-abc-0.inprogress'), '');
  mkdirSync(path.join(dir, 'chk', 'job1', 'chk-5', 'uid-x'), { recursive: true });
  writeFileSync(path.join(dir, 'chk', 'job1', 'chk-5', 'uid-x', '0-u'), '');
  mkdirSync(path.join(dir, 'chk', 'job2', 'shared'), { recursive: true });
  writeFileSync(path.join(dir, 'chk', 'job2', 'shared', 'f._S3rver_object'), '');
  writeFileSync(path.join(dir, 'chk', 'job2', 'shared', 'f._S3rver_metadata.json'), '');
  mkdirSync(path.join(dir, 'ha', 'jobs', 'job2'), { recursive: true });
  assert.deepEqual(
    findOrphans({
      sinkDir: sink,
      checkpointRoot: path.join(dir, 'chk'),
      jobStore: path.join(dir, 'ha'),
      jobIds: ['job1', 'job2'],
    }),
    [
      'sink: .part-0-abc-0.inprogress',
      'checkpoints: job1/chk-5/uid-x/0-u',
      'checkpoints: job2/shared/f',
      'job store: jobs/job2 ()',
    ],
  );
});
