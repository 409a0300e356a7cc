import { afterEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import fs, {
  copyFileSync,
  existsSync,
  linkSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { FileSink, type SinkWriter, type TaskInfo } from '../../packages/api/src/index.js';
import { tempDir } from '../helpers/cli.js';

type Row = [number, number];
interface StateItem {
  owner: number;
  checkpointId: number;
  committable: { dir: string; files: Array<{ inProgress: string; final: string }> };
}

const info = (dir: string, over: Partial<TaskInfo> = {}): TaskInfo => ({
  jobId: 'job1',
  taskName: 'Sink: FileSink',
  subtaskIndex: 0,
  parallelism: 1,
  attemptNumber: 0,
  workingDirectory: dir,
  checkpointingEnabled: true,
  ...over,
});

const sink = (): FileSink<Row> => new FileSink<Row>({ path: 'out', format: 'json' });

function writeRows(w: SinkWriter<Row>, from: number, n: number): void {
  for (let i = from; i < from + n; i++) w.write([i, i * 2]);
}

const committed = (out: string): string[] =>
  readdirSync(out)
    .filter((f) => f.startsWith('part-'))
    .sort();
const hidden = (out: string): string[] => readdirSync(out).filter((f) => f.startsWith('.'));
const rows = (out: string): string[] =>
  committed(out)
    .flatMap((f) => readFileSync(path.join(out, f), 'utf8').split('\n'))
    .filter(Boolean)
    .sort();

/** Pre-commits `n` rows at checkpoint `id` and returns the writer's checkpoint state. */
function checkpoint(w: SinkWriter<Row>, id: number, from: number, n: number): StateItem[] {
  writeRows(w, from, n);
  return w.snapshotState!(id) as StateItem[];
}

describe('FileSink names', () => {
  test('two runs committing the same checkpoint ids into one directory keep both outputs (names never collide)', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'out');
    // a job, and the job resumed from its savepoint: checkpoint ids start again at 1
    for (const jobId of ['first', 'resumed']) {
      const w = sink().createWriter(info(dir, { jobId }));
      checkpoint(w, 1, jobId === 'first' ? 0 : 100, 100);
      await w.notifyCheckpointComplete!(1);
      checkpoint(w, 2, jobId === 'first' ? 1000 : 1100, 100);
      await w.notifyCheckpointComplete!(2);
      await w.close!();
    }
    const names = committed(out);
    assert.equal(names.length, 4, `four committed files: ${names.join(', ')}`);
    for (const n of names) assert.match(n, /^part-0-[0-9a-f]{32}-\d+$/);
    assert.equal(rows(out).length, 400, 'no committed row lost');
    assert.deepEqual(hidden(out), []);
  });

  test('without checkpointing, files are committed at the end under unique names too', async () => {
    const dir = tempDir();
    for (let run = 0; run < 2; run++) {
      const w = sink().createWriter(info(dir, { checkpointingEnabled: false }));
      writeRows(w, run * 10, 10);
      await w.flush!(true);
      await w.close!();
    }
    assert.equal(committed(path.join(dir, 'out')).length, 2);
    assert.equal(rows(path.join(dir, 'out')).length, 20);
  });
});

describe('FileSink exclusive commit', () => {
  test('an existing file with the committed name is never overwritten: the commit fails naming it', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'out');
    const w = sink().createWriter(info(dir));
    const [item] = checkpoint(w, 1, 0, 50);
    const { final, inProgress } = item!.committable.files[0]!;
    writeFileSync(path.join(out, final), 'not ours\n');
    await assert.rejects(
      async () => w.notifyCheckpointComplete!(1),
      new RegExp(
        `FileSink will not overwrite ${path.join(out, final)}: a different file already has that name \\(the pre-committed data stays in ${inProgress.replace(/\./g, '\\.')}\\)`,
      ),
    );
    assert.equal(readFileSync(path.join(out, final), 'utf8'), 'not ours\n', 'the existing file is unchanged');
    assert.equal(readFileSync(path.join(out, inProgress), 'utf8').split('\n').length, 51, 'the data is kept');
  });

  test('a restore commits pending transactions idempotently: twice, or after a commit stopped half way, gives the same files', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'out');
    const w = sink().createWriter(info(dir));
    const s1 = checkpoint(w, 1, 0, 30);
    await w.notifyCheckpointComplete!(1);
    const s2 = checkpoint(w, 2, 30, 30); // pending at the "crash"
    const after1 = committed(out);
    assert.equal(after1.length, 1);

    // checkpoint 2 committed by a restore, then by a second restore of the same checkpoint
    const { final, inProgress } = s2.at(-1)!.committable.files[0]!;
    for (let attempt = 1; attempt <= 2; attempt++) {
      const r = sink().createWriter(info(dir, { attemptNumber: attempt }), s2);
      await r.open!();
      await r.close!();
      assert.deepEqual(committed(out), [...after1, final].sort());
      assert.deepEqual(hidden(out), []);
    }
    const contents = committed(out).map((f) => readFileSync(path.join(out, f), 'utf8'));
    assert.equal(rows(out).length, 60);

    // restored from checkpoint 1, whose transaction was committed long ago: recognised as done
    const r1 = sink().createWriter(info(dir, { attemptNumber: 3 }), s1);
    await r1.open!();
    await r1.close!();
    assert.deepEqual(
      committed(out).map((f) => readFileSync(path.join(out, f), 'utf8')),
      contents,
      'no file rewritten or removed',
    );

    // a commit that stopped between link and unlink (both names, one file), and a copy that
    // did not keep the hard link: both recognised as done, the hidden name removed
    const w2 = sink().createWriter(info(dir, { jobId: 'job2' }));
    const s3 = checkpoint(w2, 1, 60, 10);
    const f3 = s3[0]!.committable.files[0]!;
    linkSync(path.join(out, f3.inProgress), path.join(out, f3.final));
    const s4 = checkpoint(w2, 2, 70, 10);
    const f4 = s4.at(-1)!.committable.files[0]!;
    copyFileSync(path.join(out, f4.inProgress), path.join(out, f4.final));
    const r = sink().createWriter(info(dir, { jobId: 'job2', attemptNumber: 1 }), s4);
    await r.open!();
    await r.close!();
    assert.deepEqual(hidden(out), []);
    assert.equal(rows(out).length, 80);
    assert.ok(!existsSync(path.join(out, inProgress)));
  });

  test('a pending file missing under both names fails the restore with the file named', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'out');
    const w = sink().createWriter(info(dir));
    const s = checkpoint(w, 1, 0, 5);
    const { final, inProgress } = s[0]!.committable.files[0]!;
    unlinkSync(path.join(out, inProgress));
    const r = sink().createWriter(info(dir, { attemptNumber: 1 }), s);
    await assert.rejects(
      async () => r.open!(),
      new RegExp(`FileSink cannot commit ${path.join(out, final)}: neither it nor its pre-committed file`),
    );
  });

  test('a restore into a directory with files of other jobs leaves them alone and removes only its own leftovers', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'out');
    // another job: committed output (also under the names older versions used) and an in-progress file
    const other = sink().createWriter(info(dir, { jobId: 'otherjob' }));
    checkpoint(other, 1, 0, 10);
    await other.notifyCheckpointComplete!(1);
    checkpoint(other, 2, 10, 10); // stays pending: the other job may still commit it
    writeFileSync(path.join(out, 'part-0-1-0'), '[1,1]\n');
    const before = new Map(readdirSync(out).map((f) => [f, readFileSync(path.join(out, f), 'utf8')]));

    // this job: an attempt that wrote past its last checkpoint, then failed
    const mine = sink().createWriter(info(dir));
    const s = checkpoint(mine, 1, 100, 10);
    writeRows(mine, 110, 10_000); // flushed into an in-progress file the checkpoint does not know
    assert.equal(hidden(out).length, 3);
    const restored = sink().createWriter(info(dir, { attemptNumber: 1 }), s);
    await restored.open!();
    await restored.close!();

    for (const [f, text] of before) {
      assert.ok(existsSync(path.join(out, f)), `${f} of the other job is still there`);
      assert.equal(readFileSync(path.join(out, f), 'utf8'), text, `${f} unchanged`);
    }
    assert.equal(hidden(out).length, 1, 'only the other job’s pending file stays hidden');
    assert.match(hidden(out)[0]!, /\.otherjob\.inprogress$/);
    assert.equal(committed(out).length, 3);
  });
});

describe('FileSink checkpoints of earlier versions', () => {
  test('items in the pre-SDK format (`txn` instead of `committable`) restore: committed under their final names, rescaled 2 -> 1', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'out');
    fs.mkdirSync(out);
    const writers = ['0f'.repeat(16), 'a1'.repeat(16)];
    // what a p=2 job wrote before the FileSink was on the SDK: one pre-committed file per subtask
    // (checkpoint 3, completed, not yet committed) and a leftover of subtask 1 after it
    const oldState = writers.map((writer, subtask) => ({
      owner: subtask,
      checkpointId: 3,
      txn: {
        dir: out,
        subtask,
        writer,
        job: 'job1',
        files: [
          {
            inProgress: `.part-${subtask}-${writer}-0.job1.inprogress`,
            final: `part-${subtask}-${writer}-0`,
          },
        ],
      },
    }));
    for (const item of oldState)
      writeFileSync(path.join(out, item.txn.files[0]!.inProgress), `[${item.owner},0]\n[${item.owner},1]\n`);
    writeFileSync(path.join(out, `.part-1-${writers[1]}-1.job1.inprogress`), '[1,2]\n');
    writeFileSync(path.join(out, `.part-0-${'bb'.repeat(16)}-0.otherjob.inprogress`), '[9,9]\n');
    const restored = JSON.parse(JSON.stringify(oldState)) as unknown[];

    const w = sink().createWriter(info(dir, { attemptNumber: 0, restoredCheckpointId: 3 }), restored);
    await w.open!();
    assert.deepEqual(committed(out), [`part-0-${writers[0]}-0`, `part-1-${writers[1]}-0`]);
    assert.deepEqual(rows(out), ['[0,0]', '[0,1]', '[1,0]', '[1,1]']);
    assert.deepEqual(
      hidden(out),
      [`.part-0-${'bb'.repeat(16)}-0.otherjob.inprogress`],
      'only the other job’s file stays',
    );
    // the new writer goes on in the new format
    const next = checkpoint(w, 4, 10, 2);
    assert.equal(next.length, 1);
    assert.ok(next[0]!.committable.files.length === 1 && !('txn' in next[0]!));
    await w.notifyCheckpointComplete!(4);
    await w.close!();
    assert.equal(rows(out).length, 6);
  });

  test('without checkpointing, a writer closed before the end of input commits what it wrote', async () => {
    const dir = tempDir();
    const w = sink().createWriter(info(dir, { checkpointingEnabled: false }));
    writeRows(w, 0, 5);
    await w.close!();
    assert.equal(rows(path.join(dir, 'out')).length, 5);
    assert.deepEqual(hidden(path.join(dir, 'out')), []);
  });
});

describe('FileSink durability', () => {
  let synced: Array<{ file: string; finalExists?: boolean; inProgressExists?: boolean }> = [];
  let watch: { dir: string; final: string; inProgress: string } | undefined;
  afterEach(() => {
    mock.restoreAll();
    syncBuiltinESMExports();
    synced = [];
    watch = undefined;
  });

  /** Records every fsync (real ones: the spy calls through) with the path of its descriptor. */
  function spyOnFsync(): void {
    const real = fs.fsyncSync;
    mock.method(fs, 'fsyncSync', (fd: number) => {
      const file = readlinkSync(`/proc/self/fd/${fd}`);
      synced.push(
        watch && file === watch.dir
          ? {
              file,
              finalExists: existsSync(path.join(watch.dir, watch.final)),
              inProgressExists: existsSync(path.join(watch.dir, watch.inProgress)),
            }
          : { file },
      );
      real(fd);
    });
    syncBuiltinESMExports();
  }

  test('pre-commit fsyncs every file (rolled ones too) and the directory; commit fsyncs the directory after the new names exist and before the hidden ones go', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'out');
    spyOnFsync();
    const w = new FileSink<Row>({ path: 'out', format: 'json', rollingSizeBytes: 64 * 1024 }).createWriter(
      info(dir),
    );
    writeRows(w, 0, 20_000); // several rolled files
    const [item] = w.snapshotState!(1) as StateItem[];
    const files = item!.committable.files;
    assert.ok(files.length >= 3, `rolled into several files: ${files.length}`);
    const preCommit = synced.map((s) => s.file);
    // the output directory was created: its parent is synced so the directory survives
    assert.ok(preCommit.includes(dir), 'the parent of the new output directory is fsynced');
    for (const f of files)
      assert.ok(preCommit.includes(path.join(out, f.inProgress)), `${f.inProgress} fsynced`);
    assert.equal(preCommit.at(-1), out, 'the directory is fsynced after the files, at the barrier');

    synced = [];
    watch = { dir: out, final: files.at(-1)!.final, inProgress: files.at(-1)!.inProgress };
    await w.notifyCheckpointComplete!(1);
    assert.deepEqual(
      synced,
      [{ file: out, finalExists: true, inProgressExists: true }],
      'one directory fsync, after the link and before the hidden name is removed',
    );
    assert.deepEqual(hidden(out), []);
    assert.equal(committed(out).length, files.length);
    for (const f of files) assert.ok(statSync(path.join(out, f.final)).size > 0);
  });

  test('without checkpointing, the files committed at the end are fsynced too', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'out');
    spyOnFsync();
    const w = sink().createWriter(info(dir, { checkpointingEnabled: false }));
    writeRows(w, 0, 10);
    await w.flush!(true);
    await w.close!();
    const [name] = committed(out);
    const files = synced.map((s) => s.file);
    // the file was synced under its hidden name, before the commit
    assert.ok(
      files.some((f) => f.startsWith(path.join(out, `.${name}`))),
      files.join(', '),
    );
    assert.equal(files.filter((f) => f === out).length, 2, 'the directory at pre-commit and at commit');
  });
});
