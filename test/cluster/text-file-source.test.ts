import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { runWithTaskManagerKills } from '../helpers/kill-run.js';
import { ROOT, TestCluster, cancelWithSavepoint, tempDir, until } from '../helpers/cli.js';

const job = path.join(ROOT, 'test/jobs/text-files.ts');
/** microseconds of work per line: about 6 s of the job's time at parallelism 2 */
const MICROS = '300';
/** 64 KiB blocks: the larger files are read as several splits that start inside lines */
const BLOCK = String(64 * 1024);

/**
 * Twelve files of unique lines (some with `\r\n`, some without a newline at the end, some
 * large enough for several blocks) and two that are skipped (`.hidden`, `_SUCCESS`); gives
 * every line the source must emit, computed from the files' bytes.
 */
function makeInput(dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const expected: string[] = [];
  for (let f = 0; f < 12; f++) {
    const n = 1500 + ((f * 977) % 2500);
    const lines = Array.from({ length: n }, (_, i) => `f${f} line ${i} ${'ü✓x'.repeat((i * 7 + f) % 11)}`);
    const eol = f % 3 === 0 ? '\r\n' : '\n';
    const text = lines.join(eol) + (f % 4 === 1 ? '' : eol);
    writeFileSync(path.join(dir, `part-${String(f).padStart(2, '0')}.txt`), text);
    // the reference reads the bytes back, independently of the source
    const back = readFileSync(path.join(dir, `part-${String(f).padStart(2, '0')}.txt`), 'utf8').split(
      /\r?\n/,
    );
    if (back.at(-1) === '') back.pop();
    expected.push(...back);
  }
  writeFileSync(path.join(dir, '.hidden'), 'never read\n');
  writeFileSync(path.join(dir, '_SUCCESS'), 'never read\n');
  return expected.sort();
}

/** Every committed line of a FileSink directory, sorted. */
function committedLines(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const f of readdirSync(dir).filter((n) => n.startsWith('part-')))
    for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) if (line) out.push(line);
  return out.sort();
}

/** The output equals the reference: no line lost or repeated, nothing left uncommitted. */
function assertExact(out: string, expected: string[]): void {
  const got = committedLines(out);
  if (got.length !== expected.length) {
    const seen = new Map<string, number>();
    for (const l of got) seen.set(l, (seen.get(l) ?? 0) + 1);
    const twice = [...seen].filter(([, c]) => c > 1).slice(0, 3);
    const lost = expected.filter((l) => !seen.has(l)).slice(0, 3);
    assert.fail(
      `${got.length} lines, expected ${expected.length}; repeated: ${JSON.stringify(twice)}, lost: ${JSON.stringify(lost)}`,
    );
  }
  assert.deepEqual(got, expected);
  assert.deepEqual(
    readdirSync(out).filter((n) => n.startsWith('.')),
    [],
    'no in-progress file left',
  );
}

interface Metadata {
  operators: Record<
    string,
    {
      coordinatorState?: {
        enumerator: { listed: boolean; pending: Array<Record<string, unknown>> };
        assigned: Record<string, Array<Record<string, unknown>>>;
      };
      subtasks: Record<
        string,
        {
          operatorState?: Array<Record<string, unknown>>;
          lists?: Record<string, { items: Array<Record<string, unknown>> }>;
        }
      >;
    }
  >;
}

/**
 * Rewrites a savepoint as the text file source and FileSink of earlier versions wrote it:
 * every byte range still to read in the readers' state (the splits not handed out, too), no
 * split ids, no enumerator state, and the sink's pending files under `txn`.
 */
function toEarlierFormat(savepoint: string): void {
  const file = path.join(savepoint, '_metadata');
  const md = JSON.parse(readFileSync(file, 'utf8')) as Metadata;
  let ranges = 0;
  let transactions = 0;
  for (const op of Object.values(md.operators)) {
    const subtasks = Object.keys(op.subtasks).sort();
    const cs = op.coordinatorState;
    if (cs) {
      const untaken = [...Object.values(cs.assigned).flat(), ...cs.enumerator.pending];
      untaken.forEach((split, k) =>
        (op.subtasks[subtasks[k % subtasks.length]!]!.operatorState ??= []).push(split),
      );
      delete op.coordinatorState;
    }
    for (const st of Object.values(op.subtasks)) {
      if (cs)
        st.operatorState = (st.operatorState ?? []).map(({ splitId: _, ...range }) => {
          ranges++;
          return range;
        });
      for (const list of Object.values(st.lists ?? {}))
        list.items = list.items.map(({ committable, ...item }) => {
          if (committable === undefined) return item;
          transactions++;
          return { ...item, txn: committable };
        });
    }
  }
  assert.ok(ranges > 0 && transactions > 0, `rewrote ${ranges} ranges and ${transactions} sink transactions`);
  writeFileSync(file, JSON.stringify(md));
}

describe('text file source into FileSink on a cluster, exactly once', () => {
  let cluster: TestCluster;
  const work = tempDir();

  before(async () => {
    cluster = await new TestCluster({ taskManagers: 3, slots: 2 }).start();
  });
  after(async () => {
    await cluster?.stop();
  });

  test('a directory of files into FileSink (p=2) under two kill -9 of TaskManagers: every line once', async () => {
    const input = path.join(work, 'in-kills');
    const expected = makeInput(input);
    const out = path.join(work, 'out-kills');
    const hits = await runWithTaskManagerKills(cluster, job, [input, out, '2', MICROS, BLOCK], 2);
    assert.ok(hits >= 1, `at least one kill hit the running job (${hits})`);
    assertExact(out, expected);
  });

  /** Runs the job at parallelism 2 and stops it with a savepoint once lines flow; gives the savepoint. */
  async function stopMidway(input: string, out: string, expected: string[]): Promise<string> {
    const client = await ClusterClient.connect(cluster.address);
    try {
      const r = await cluster.run(['run', job, '--detached', '--', input, out, '2', MICROS, BLOCK]);
      assert.equal(r.code, 0, r.stderr);
      const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
      await until('every task running, lines flowing', async () => {
        const s = await client.status(jobId);
        return s.vertices.every((v) => v.subtasks.every((t) => t.state === 'RUNNING')) &&
          Number(s.recordsIn) > 8000
          ? true
          : undefined;
      });
      const { savepoint, details } = await cancelWithSavepoint(
        cluster,
        client,
        jobId,
        path.join(work, 'savepoints'),
      );
      assert.equal(details.status, 'JOB_CANCELED');
      const before = committedLines(out).length;
      assert.ok(
        before < expected.length,
        `the savepoint was taken mid-way (${before} of ${expected.length} lines)`,
      );
      return savepoint;
    } finally {
      client.close();
    }
  }

  // the restored run reads the rest without the per-line work: only the first run must be slow
  // enough to be stopped mid-way
  const restoreAt3 = async (savepoint: string, input: string, out: string): Promise<void> => {
    const r = await cluster.run([
      'run',
      job,
      '--from-savepoint',
      savepoint,
      '--',
      input,
      out,
      '3',
      '0',
      BLOCK,
    ]);
    assert.equal(r.code, 0, r.stderr);
  };

  test('stopped with a savepoint at parallelism 2 and restored at 3: every line once', async () => {
    const input = path.join(work, 'in-rescale');
    const expected = makeInput(input);
    const out = path.join(work, 'out-rescale');
    const savepoint = await stopMidway(input, out, expected);
    const md = JSON.parse(readFileSync(path.join(savepoint, '_metadata'), 'utf8')) as Metadata;
    const source = Object.values(md.operators).find((o) => o.coordinatorState);
    assert.ok(source?.coordinatorState?.enumerator.listed, 'the enumerator state is in the savepoint');
    await restoreAt3(savepoint, input, out);
    assertExact(out, expected);
  });

  test('a savepoint in the format of earlier versions (byte ranges without split ids, no enumerator state, FileSink files under `txn`) restores at 3: every line once', async () => {
    const input = path.join(work, 'in-legacy');
    const expected = makeInput(input);
    const out = path.join(work, 'out-legacy');
    const savepoint = await stopMidway(input, out, expected);
    toEarlierFormat(savepoint);
    await restoreAt3(savepoint, input, out);
    assertExact(out, expected);
  });

  test('a missing input path fails the job at its start, naming the source and the path', async () => {
    const missing = path.join(work, 'no-such-dir');
    const r = await cluster.run([
      'run',
      path.join(ROOT, 'test/jobs/wordcount-file.ts'),
      '--',
      missing,
      path.join(work, 'out-missing'),
    ]);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stdout + r.stderr,
      new RegExp(
        `split enumerator of source 'Source: ${missing}' could not start: Text file source: no such file or directory: ${missing} \\(a relative path resolves against the job's working directory`,
      ),
    );
  });
});
