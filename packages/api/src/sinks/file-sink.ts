import { closeSync, fsyncSync, openSync, readdirSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { SinkWriter } from '../sink.js';
import type { TaskInfo } from '../runtime-context.js';
import {
  TwoPhaseCommittingSink,
  type Committer,
  type PrecommittingWriter,
  type TransactionContext,
} from './committing-sink.js';
import { fsyncDirectory, linkExclusive, mkdirDurable } from './durable-files.js';

export interface FileSinkOptions {
  path: string;
  /** lines: strings as they are, other values as JSON; json: JSON lines */
  format?: 'lines' | 'json';
  /** roll to a new part file past this size (default 128 MiB) */
  rollingSizeBytes?: number;
}

/**
 * What a checkpoint keeps for the files one writer wrote between two barriers: their hidden
 * names and, fixed when each file was opened, their final names, so a restore commits them
 * under the same names.
 */
export interface FileSinkCommittable {
  dir: string;
  subtask: number;
  /** the writer that wrote them, unique per task attempt */
  writer: string;
  /** the job that wrote them; a recovering writer cleans up only its own job's leftovers */
  job: string;
  files: Array<{ inProgress: string; final: string }>;
}

interface OpenFile {
  /** opened with the first write to disk */
  fd: number | undefined;
  name: string;
  final: string;
  buf: string;
  size: number;
}

const FLUSH_AT = 64 * 1024;

/** `.part-<subtask>-<writer>-<n>.<job>.inprogress`: the committed name, hidden, tagged with the job that writes it. */
const IN_PROGRESS = /^\.part-(\d+)-([0-9a-z]+)-\d+\.([0-9A-Za-z_]*)\.inprogress$/;

/**
 * Part files in a directory, exactly once, on the SDK's two-phase-commit sink (writer,
 * committer, committables in checkpoints). A file being written is hidden
 * (`.part-<subtask>-<writer>-<n>.<job>.inprogress`); at a checkpoint barrier it is flushed,
 * fsynced and closed (pre-commit), and when that checkpoint completes it gets its final name
 * `part-<subtask>-<writer>-<n>` (commit). The writer id is random (128 bits) for every task
 * attempt, as Flink's FileSink puts a UUID in part names, so names never collide across jobs,
 * restores, rescales and attempts. A commit never replaces an existing file (see
 * `linkExclusive`) and is synced to disk before the checkpoint's committable is dropped.
 * Readers only ever see whole, committed files, and after a failure exactly the files of the
 * restored checkpoint are committed; what earlier attempts of this job left in progress is
 * removed, and files of other jobs are never touched. Without checkpointing, files are
 * committed when the input ends or the task closes.
 */
export class FileSink<T> extends TwoPhaseCommittingSink<T, FileSinkCommittable> {
  constructor(readonly options: FileSinkOptions) {
    super();
    if (!options?.path) throw new Error('FileSink needs a path, e.g. new FileSink({ path: "out/results" })');
  }

  /** The directory as given (relative to the job's working directory), for the JobManager's checks. */
  get outputPath(): string {
    return this.options.path;
  }

  /** Where the output goes, for the client to print. */
  describe(workingDirectory: string): string {
    return `FileSink: ${path.resolve(workingDirectory, this.options.path)}/part-*`;
  }

  private dirOf(ctx: TaskInfo): string {
    return path.resolve(ctx.workingDirectory, this.options.path);
  }

  /** Checkpoints written before the FileSink was on the SDK keep each item's files under `txn`. */
  override createWriter(info: TaskInfo, restoredState?: unknown[]): SinkWriter<T> {
    return super.createWriter(
      info,
      restoredState?.map((item) => {
        const old = item as { owner: number; checkpointId: number; txn?: FileSinkCommittable };
        return old.txn !== undefined && !('committable' in old)
          ? { owner: old.owner, checkpointId: old.checkpointId, committable: old.txn }
          : item;
      }),
    );
  }

  createPrecommittingWriter(ctx: TransactionContext): PrecommittingWriter<T, FileSinkCommittable> {
    return new FileSinkWriter<T>(
      ctx,
      this.dirOf(ctx),
      this.options.format === 'json',
      this.options.rollingSizeBytes ?? 128 * 1024 * 1024,
    );
  }

  createCommitter(): Committer<FileSinkCommittable> {
    return {
      commit: (committables) => {
        for (const c of committables) commitFiles(c);
        return Promise.resolve();
      },
    };
  }

  /**
   * Commits what the restored checkpoint names, then, on a restore or a restart, removes the
   * in-progress files earlier attempts of this job left for the subtasks this one stands in
   * for. Files of other jobs (an earlier run this one was restored from included) are never
   * touched: such a job may still be running, or its savepoint restored.
   */
  protected async recover(
    ctx: TransactionContext,
    committables: FileSinkCommittable[],
    committer: Committer<FileSinkCommittable>,
  ): Promise<void> {
    await committer.commit(committables);
    if (ctx.restoredCheckpointId === undefined && ctx.attemptNumber === 0) return;
    const owned = new Set([ctx.subtaskIndex, ...committables.map((c) => c.subtask)]);
    const dir = this.dirOf(ctx);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    const job = jobTag(ctx.jobId);
    for (const name of names) {
      const m = IN_PROGRESS.exec(name);
      if (!m || m[2] === ctx.writerId || m[3] !== job) continue;
      const owner = Number(m[1]);
      if (owned.has(owner) || (owner >= ctx.parallelism && owner % ctx.parallelism === ctx.subtaskIndex)) {
        try {
          unlinkSync(path.join(dir, name));
        } catch {
          /* removed meanwhile */
        }
      }
    }
  }
}

/**
 * One subtask's part files. Synchronous: writes go to the file between records and the
 * pre-commit (flush, fsync of each file and of the directory) runs at the barrier, so a
 * checkpoint is acknowledged only once its files are on disk.
 */
class FileSinkWriter<T> implements PrecommittingWriter<T, FileSinkCommittable> {
  /** the files written since the last barrier; begun with the first record */
  private current: FileSinkCommittable | undefined;
  private file: OpenFile | undefined;
  /** makes names unique within a writer; the writer id makes them unique everywhere */
  private fileCounter = 0;

  constructor(
    private readonly ctx: TransactionContext,
    private readonly dir: string,
    private readonly json: boolean,
    private readonly rollingSizeBytes: number,
  ) {}

  write(r: T): void {
    const f = this.file ?? this.newFile();
    const line = (this.json || typeof r !== 'string' ? JSON.stringify(r) : r) + '\n';
    f.buf += line;
    f.size += line.length;
    if (f.buf.length >= FLUSH_AT) {
      this.flushFile(f);
      if (f.size >= this.rollingSizeBytes) this.closeFile();
    }
  }

  private newFile(): OpenFile {
    const ctx = this.ctx;
    this.current ??= {
      dir: this.dir,
      subtask: ctx.subtaskIndex,
      writer: ctx.writerId,
      job: jobTag(ctx.jobId),
      files: [],
    };
    const final = `part-${ctx.subtaskIndex}-${ctx.writerId}-${this.fileCounter++}`;
    return (this.file = {
      fd: undefined,
      name: `.${final}.${this.current.job}.inprogress`,
      final,
      buf: '',
      size: 0,
    });
  }

  private flushFile(f: OpenFile): void {
    if (!f.buf) return;
    const dir = this.dir;
    if (f.fd === undefined) {
      try {
        mkdirDurable(dir);
        // exclusive: a name is never reused, and an existing file is never truncated
        f.fd = openSync(path.join(dir, f.name), 'wx');
      } catch (e) {
        throw new Error(`FileSink cannot write to ${dir}: ${(e as Error).message}`);
      }
      this.current!.files.push({ inProgress: f.name, final: f.final });
    }
    try {
      writeSync(f.fd, f.buf);
    } catch (e) {
      throw new Error(`FileSink cannot write ${path.join(dir, f.name)}: ${(e as Error).message}`);
    }
    f.buf = '';
  }

  /** Flushes, fsyncs and closes: a closed file is complete on disk, whether rolled or pre-committed. */
  private closeFile(): void {
    const f = this.file;
    if (!f) return;
    this.flushFile(f);
    this.file = undefined;
    if (f.fd === undefined) return;
    try {
      fsyncSync(f.fd);
    } finally {
      closeSync(f.fd);
    }
  }

  /** Every file of the committable and its directory entry are on disk before the barrier is acknowledged. */
  prepareCommit(): FileSinkCommittable | undefined {
    const c = this.current;
    if (c === undefined) return undefined;
    this.closeFile();
    if (c.files.length > 0) fsyncDirectory(c.dir);
    this.current = undefined;
    return c;
  }

  preCommitted(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Without checkpoints, what was written is committed (there is no checkpoint to replay from);
   * with them, the files since the last barrier are removed and the pre-committed ones stay
   * for the restore to commit.
   */
  close(): Promise<void> {
    if (!this.ctx.checkpointingEnabled) {
      const c = this.prepareCommit();
      if (c) commitFiles(c);
      return Promise.resolve();
    }
    const f = this.file;
    if (f) {
      if (f.fd !== undefined) closeSync(f.fd);
      this.file = undefined;
    }
    for (const file of this.current?.files ?? []) {
      try {
        unlinkSync(path.join(this.dir, file.inProgress));
      } catch {
        /* already gone */
      }
    }
    this.current = undefined;
    return Promise.resolve();
  }
}

/**
 * Idempotent: each file gets its final name without replacing anything (a file committed
 * before is recognised as done, a different file under its name is an error), the directory
 * is synced, and only then are the hidden names removed.
 */
function commitFiles(c: FileSinkCommittable): void {
  if (c.files.length === 0) return;
  const linked: string[] = [];
  for (const file of c.files) {
    const from = path.join(c.dir, file.inProgress);
    if (linkExclusive(from, path.join(c.dir, file.final), 'FileSink')) linked.push(from);
  }
  fsyncDirectory(c.dir);
  for (const from of linked) {
    try {
      unlinkSync(from);
    } catch {
      /* removed meanwhile (a zombie attempt committing the same files) */
    }
  }
}

/** The job id as it appears in file names. */
function jobTag(jobId: string): string {
  return jobId.replace(/[^0-9A-Za-z_]/g, '_');
}
