import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { TwoPhaseCommitSink, type TransactionContext } from './two-phase-commit-sink.js';

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
  files: Array<{ inProgress: string; final?: string }>;
}

interface OpenFile {
  /** opened with the first write to disk */
  fd: number | undefined;
  name: string;
  buf: string;
  size: number;
}

const FLUSH_AT = 64 * 1024;

/**
 * Part files in a directory, exactly once. A file being written is hidden
 * (`.part-<subtask>-<writer>-<n>.inprogress`); at a checkpoint barrier it is flushed, synced and
 * closed (pre-commit), and when that checkpoint completes it is renamed to
 * `part-<subtask>-<checkpoint>-<n>` (commit). Readers only ever see whole, committed files, and
 * after a failure exactly the files of the restored checkpoint are committed; the rest is
 * removed. Without checkpointing, files are committed as `part-<subtask>-<n>` when the input
 * ends or the task closes.
 */
export class FileSink<T> extends TwoPhaseCommitSink<T, FileSinkTransaction> {
  /** open files by transaction; runtime handles never go into checkpoints */
  private readonly open = new WeakMap<FileSinkTransaction, OpenFile>();
  private readonly sequence = new Map<number, number>();
  private fileCounter = 0;

  constructor(readonly options: FileSinkOptions) {
    super();
    if (!options?.path) throw new Error('FileSink needs a path, e.g. new FileSink({ path: "out/results" })');
  }

  /** Where the output goes, for the client to print. */
  describe(workingDirectory: string): string {
    return `FileSink: ${path.resolve(workingDirectory, this.options.path)}/part-*`;
  }

  private dirOf(ctx: TransactionContext): string {
    return path.resolve(ctx.workingDirectory, this.options.path);
  }

  protected beginTransaction(ctx: TransactionContext): FileSinkTransaction {
    return { dir: this.dirOf(ctx), subtask: ctx.subtaskIndex, writer: ctx.writerId, files: [] };
  }

  private newFile(txn: FileSinkTransaction): OpenFile {
    const f: OpenFile = {
      fd: undefined,
      name: `.part-${txn.subtask}-${txn.writer}-${(this.fileCounter++).toString(36)}.inprogress`,
      buf: '',
      size: 0,
    };
    this.open.set(txn, f);
    return f;
  }

  private flushFile(txn: FileSinkTransaction, f: OpenFile): void {
    if (!f.buf) return;
    if (f.fd === undefined) {
      try {
        mkdirSync(txn.dir, { recursive: true });
        f.fd = openSync(path.join(txn.dir, f.name), 'w');
      } catch (e) {
        throw new Error(`FileSink cannot write to ${txn.dir}: ${(e as Error).message}`);
      }
      txn.files.push({ inProgress: f.name });
    }
    try {
      writeSync(f.fd, f.buf);
    } catch (e) {
      throw new Error(`FileSink cannot write ${path.join(txn.dir, f.name)}: ${(e as Error).message}`);
    }
    f.buf = '';
  }

  private closeFile(txn: FileSinkTransaction, sync: boolean): void {
    const f = this.open.get(txn);
    if (!f) return;
    this.flushFile(txn, f);
    this.open.delete(txn);
    if (f.fd === undefined) return;
    if (sync) fsyncSync(f.fd);
    closeSync(f.fd);
  }

  protected invoke(txn: FileSinkTransaction, r: T): void {
    const f = this.open.get(txn) ?? this.newFile(txn);
    const line = (this.options.format === 'json' || typeof r !== 'string' ? JSON.stringify(r) : r) + '\n';
    f.buf += line;
    f.size += line.length;
    if (f.buf.length >= FLUSH_AT) {
      this.flushFile(txn, f);
      if (f.size >= (this.options.rollingSizeBytes ?? 128 * 1024 * 1024)) this.closeFile(txn, false);
    }
  }

  protected preCommit(txn: FileSinkTransaction, checkpointId: number): void {
    this.closeFile(txn, checkpointId > 0);
    txn.files.forEach((file, k) => {
      if (checkpointId > 0) {
        file.final = `part-${txn.subtask}-${checkpointId}-${k}`;
      } else {
        const n = this.sequence.get(txn.subtask) ?? 0;
        this.sequence.set(txn.subtask, n + 1);
        file.final = `part-${txn.subtask}-${n}`;
      }
    });
  }

  /** Idempotent: a file already renamed is done; one missing in both places is data lost, and said so. */
  protected commit(txn: FileSinkTransaction): void {
    for (const file of txn.files) {
      const from = path.join(txn.dir, file.inProgress);
      const to = path.join(txn.dir, file.final!);
      try {
        renameSync(from, to);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' && existsSync(to)) continue;
        throw new Error(`FileSink cannot commit ${from} as ${file.final}: ${(e as Error).message}`);
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

  /** In-progress files of the subtasks this one recovered, written by earlier attempts, are removed. */
  protected override recoveryFinished(ctx: TransactionContext, ownedSubtasks: number[]): void {
    const dir = this.dirOf(ctx);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const m = /^\.part-(\d+)-([^-]+)-.*\.inprogress$/.exec(name);
      if (!m || m[2] === ctx.writerId) continue;
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
