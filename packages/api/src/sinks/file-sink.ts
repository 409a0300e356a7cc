import { closeSync, fsyncSync, openSync, readdirSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { TwoPhaseCommitSink, type TransactionContext } from './two-phase-commit-sink.js';
import { fsyncDirectory, linkExclusive, mkdirDurable } from './durable-files.js';

export interface FileSinkOptions {
  path: string;
  /** lines: strings as they are, other values as JSON; json: JSON lines */
  format?: 'lines' | 'json';
  /** roll to a new part file past this size (default 128 MiB) */
  rollingSizeBytes?: number;
}

/** One transaction: the in-progress files it wrote and, once pre-committed, their final names. */
export interface FileSinkTransaction {
  dir: string;
  subtask: number;
  /** the writer that opened it, unique per task attempt */
  writer: string;
  /** the job that opened it; a recovering writer cleans up only its own job's leftovers */
  job: string;
  /** hidden while written; `final` is fixed when the file is opened, so a restore commits it under the same name */
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
 * Part files in a directory, exactly once. A file being written is hidden
 * (`.part-<subtask>-<writer>-<n>.<job>.inprogress`); at a checkpoint barrier it is flushed,
 * fsynced and closed (pre-commit), and when that checkpoint completes it gets its final name
 * `part-<subtask>-<writer>-<n>` (commit). The writer id is random (128 bits) for every task
 * attempt, as Flink's FileSink puts a UUID in part names, so names never collide across jobs,
 * restores, rescales and attempts. A commit never replaces an existing file (see
 * `linkExclusive`) and is synced to disk before the checkpoint's transaction is dropped.
 * Readers only ever see whole, committed files, and after a failure exactly the files of the
 * restored checkpoint are committed; what earlier attempts of this job left in progress is
 * removed, and files of other jobs are never touched. Without checkpointing, files are
 * committed when the input ends or the task closes.
 */
export class FileSink<T> extends TwoPhaseCommitSink<T, FileSinkTransaction> {
  /** open files by transaction; runtime handles never go into checkpoints */
  private readonly open = new WeakMap<FileSinkTransaction, OpenFile>();
  /** makes names unique within a writer; the writer id makes them unique everywhere */
  private fileCounter = 0;

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

  private dirOf(ctx: TransactionContext): string {
    return path.resolve(ctx.workingDirectory, this.options.path);
  }

  protected beginTransaction(ctx: TransactionContext): FileSinkTransaction {
    return {
      dir: this.dirOf(ctx),
      subtask: ctx.subtaskIndex,
      writer: ctx.writerId,
      job: jobTag(ctx.jobId),
      files: [],
    };
  }

  private newFile(txn: FileSinkTransaction): OpenFile {
    const final = `part-${txn.subtask}-${txn.writer}-${this.fileCounter++}`;
    const f: OpenFile = { fd: undefined, name: `.${final}.${txn.job}.inprogress`, final, buf: '', size: 0 };
    this.open.set(txn, f);
    return f;
  }

  private flushFile(txn: FileSinkTransaction, f: OpenFile): void {
    if (!f.buf) return;
    if (f.fd === undefined) {
      try {
        mkdirDurable(txn.dir);
        // exclusive: a name is never reused, and an existing file is never truncated
        f.fd = openSync(path.join(txn.dir, f.name), 'wx');
      } catch (e) {
        throw new Error(`FileSink cannot write to ${txn.dir}: ${(e as Error).message}`);
      }
      txn.files.push({ inProgress: f.name, final: f.final });
    }
    try {
      writeSync(f.fd, f.buf);
    } catch (e) {
      throw new Error(`FileSink cannot write ${path.join(txn.dir, f.name)}: ${(e as Error).message}`);
    }
    f.buf = '';
  }

  /** Flushes, fsyncs and closes: a closed file is complete on disk, whether rolled or pre-committed. */
  private closeFile(txn: FileSinkTransaction): void {
    const f = this.open.get(txn);
    if (!f) return;
    this.flushFile(txn, f);
    this.open.delete(txn);
    if (f.fd === undefined) return;
    try {
      fsyncSync(f.fd);
    } finally {
      closeSync(f.fd);
    }
  }

  protected invoke(txn: FileSinkTransaction, r: T): void {
    const f = this.open.get(txn) ?? this.newFile(txn);
    const line = (this.options.format === 'json' || typeof r !== 'string' ? JSON.stringify(r) : r) + '\n';
    f.buf += line;
    f.size += line.length;
    if (f.buf.length >= FLUSH_AT) {
      this.flushFile(txn, f);
      if (f.size >= (this.options.rollingSizeBytes ?? 128 * 1024 * 1024)) this.closeFile(txn);
    }
  }

  /** Every file of the transaction and its directory entry are on disk before the barrier is acknowledged. */
  protected preCommit(txn: FileSinkTransaction): void {
    this.closeFile(txn);
    if (txn.files.length > 0) fsyncDirectory(txn.dir);
  }

  /**
   * Idempotent: each file gets its final name without replacing anything (a file committed
   * before is recognised as done, a different file under its name is an error), the directory
   * is synced, and only then are the hidden names removed.
   */
  protected commit(txn: FileSinkTransaction): void {
    if (txn.files.length === 0) return;
    const linked: string[] = [];
    for (const file of txn.files) {
      const from = path.join(txn.dir, file.inProgress);
      if (linkExclusive(from, path.join(txn.dir, file.final), 'FileSink')) linked.push(from);
    }
    fsyncDirectory(txn.dir);
    for (const from of linked) {
      try {
        unlinkSync(from);
      } catch {
        /* removed meanwhile (a zombie attempt committing the same transaction) */
      }
    }
  }

  protected abort(txn: FileSinkTransaction): void {
    const f = this.open.get(txn);
    if (f) {
      if (f.fd !== undefined) closeSync(f.fd);
      this.open.delete(txn);
    }
    for (const file of txn.files) {
      try {
        unlinkSync(path.join(txn.dir, file.inProgress));
      } catch {
        /* already gone */
      }
    }
  }

  /**
   * In-progress files that earlier attempts of this job left for the subtasks this one
   * recovered are removed. Files of other jobs (an earlier run this one was restored from
   * included) are never touched: such a job may still be running, or its savepoint restored.
   */
  protected override recoveryFinished(ctx: TransactionContext, ownedSubtasks: number[]): void {
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
      if (
        ownedSubtasks.includes(owner) ||
        (owner >= ctx.parallelism && owner % ctx.parallelism === ctx.subtaskIndex)
      ) {
        try {
          unlinkSync(path.join(dir, name));
        } catch {
          /* removed meanwhile */
        }
      }
    }
  }
}

/** The job id as it appears in file names. */
function jobTag(jobId: string): string {
  return jobId.replace(/[^0-9A-Za-z_]/g, '_');
}
