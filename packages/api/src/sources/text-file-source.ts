import { readdirSync, statSync } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { AVAILABLE, InputStatus, type SourceReader, type SplitRequester } from '../source.js';
import type { TaskInfo } from '../runtime-context.js';
import { currentPlanner } from '../planner.js';
import {
  CoordinatedSplitSourceReader,
  SplitSource,
  SplitSourceReader,
  type SourceSplit,
  type SplitReader,
  type SplitReaderOutput,
} from '../split-source.js';
import type { SplitEnumerator, SplitEnumeratorContext } from '../split-enumerator.js';

const CHUNK = 64 * 1024;
const NEWLINE = 0x0a;
const MiB = 1024 * 1024;
/** files a subtask reads at once; a restored subtask may hold many splits (one per file) */
const OPEN_FILES = 4;

/**
 * A block of a text file (Flink's FileSourceSplit): a line belongs to the split its first byte
 * falls in, so blocks need not start at line starts. The position is the byte offset of the
 * next line to read.
 */
export interface FileSourceSplit extends SourceSplit {
  /** absolute path of the file */
  path: string;
  /** where reading goes on: the first byte of a line when `exact`, else the block's start */
  start: number;
  /** lines whose first byte is before `end` belong to this split */
  end: number;
  /** `start` is known to be the first byte of a line (a position after emitted lines) */
  exact?: boolean;
}

/** The enumerator's checkpoint: the splits not handed out yet, once the files were listed. */
export interface TextFileEnumeratorState {
  listed: boolean;
  pending: FileSourceSplit[];
}

export interface TextFileSourceOptions {
  /**
   * Files larger than this are read as several splits (default: the total size over the
   * parallelism, between 1 MiB and 32 MiB), so one large file is read in parallel.
   */
  blockSizeBytes?: number;
}

interface ListedFile {
  path: string;
  size: number;
}

/** A `*` or `?` in the last part of the path selects the files of its directory that match. */
function globOf(p: string): RegExp | undefined {
  const name = basename(p);
  if (!/[*?]/.test(name)) return undefined;
  const re = name
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`);
}

const visible = (name: string): boolean => !name.startsWith('.') && !name.startsWith('_');

function missing(p: string): Error {
  return new Error(
    `Text file source: no such file or directory: ${p} (a relative path resolves against the job's working directory, which \`weir run --working-dir\` sets)`,
  );
}

/** The files of `p` (a file, a directory or a glob), sorted by name; hidden ones are skipped. */
async function listFiles(p: string): Promise<ListedFile[]> {
  const glob = globOf(p);
  const dir = glob ? dirname(p) : p;
  let st;
  try {
    st = await stat(dir);
  } catch {
    throw missing(dir);
  }
  if (!glob && st.isFile()) return [{ path: p, size: st.size }];
  const names = (await readdir(dir)).filter((n) => visible(n) && (!glob || glob.test(n))).sort();
  const out: ListedFile[] = [];
  for (const n of names) {
    const f = join(dir, n);
    const s = await stat(f);
    if (s.isFile()) out.push({ path: f, size: s.size });
  }
  if (glob && out.length === 0) throw new Error(`Text file source: no file matches ${p}`);
  return out;
}

/** `listFiles` for a reader that lists for itself (no enumerator in reach). */
function listFilesSync(p: string): ListedFile[] {
  const glob = globOf(p);
  const dir = glob ? dirname(p) : p;
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw missing(dir);
  }
  if (!glob && st.isFile()) return [{ path: p, size: st.size }];
  return readdirSync(dir)
    .filter((n) => visible(n) && (!glob || glob.test(n)))
    .sort()
    .map((n) => join(dir, n))
    .map((f) => ({ path: f, st: statSync(f) }))
    .filter((f) => f.st.isFile())
    .map((f) => ({ path: f.path, size: f.st.size }));
}

/** One split per block of each non-empty file, in file order. */
function planSplits(files: ListedFile[], parallelism: number, blockSizeBytes?: number): FileSourceSplit[] {
  const total = files.reduce((s, f) => s + f.size, 0);
  const block = Math.max(
    1,
    blockSizeBytes ?? Math.min(32 * MiB, Math.max(MiB, Math.ceil(total / Math.max(1, parallelism)))),
  );
  const splits: FileSourceSplit[] = [];
  for (const f of files)
    for (let start = 0; start < f.size; start += block)
      splits.push({
        splitId: `${f.path}@${start}`,
        path: f.path,
        start,
        end: Math.min(f.size, start + block),
      });
  return splits;
}

/**
 * Lines of a file, of the files of a directory, or of the files a glob in the file name
 * matches (`logs/*.txt`), on the split SDK after Flink's FileSource: the enumerator on the
 * JobManager lists the files once (sorted by name, hidden `.`/`_` files skipped), cuts them
 * into splits (one per file, or per block of a large file) and hands them to readers as they
 * ask, so fast readers take more. A split's position is the byte offset of the next line,
 * kept in every checkpoint; the splits not handed out yet are the enumerator's checkpoint.
 */
export class TextFileSource extends SplitSource<string, FileSourceSplit> {
  readonly boundedness = 'BOUNDED' as const;
  /**
   * Resolved against the job's working directory while the job module is planned (the same
   * directory on the client, the JobManager and the TaskManagers).
   */
  private readonly resolved: string | undefined;

  constructor(
    readonly path: string,
    private readonly options: TextFileSourceOptions = {},
  ) {
    super();
    if (!path) throw new Error('readTextFile needs a path');
    const wd = currentPlanner()?.workingDirectory;
    this.resolved = wd !== undefined ? resolve(wd, path) : undefined;
  }

  private root(workingDirectory = process.cwd()): string {
    return this.resolved ?? resolve(workingDirectory, this.path);
  }

  /** Sources without an enumerator in reach list the files themselves (see createReader). */
  createSplits(parallelism: number): FileSourceSplit[] {
    return planSplits(listFilesSync(this.root()), parallelism, this.options.blockSizeBytes);
  }

  override createEnumerator(
    ctx: SplitEnumeratorContext<FileSourceSplit>,
    restored?: unknown,
  ): SplitEnumerator<FileSourceSplit, TextFileEnumeratorState> {
    return new TextFileEnumerator(
      ctx,
      this.root(),
      this.options.blockSizeBytes,
      restored as TextFileEnumeratorState | undefined,
    );
  }

  /**
   * A checkpoint written before this source had an enumerator holds every byte range still to
   * read in its readers' state (each subtask computed its ranges when it started), so the
   * enumerator has nothing to hand out.
   */
  override legacyEnumeratorState(): TextFileEnumeratorState {
    return { listed: true, pending: [] };
  }

  createSplitReader(split: FileSourceSplit): SplitReader<string, FileSourceSplit> {
    return new TextFileSplitReader(split, new OpenFileLimit(1));
  }

  override createReader(
    context: TaskInfo,
    restored?: unknown[],
    requester?: SplitRequester,
  ): SourceReader<string> {
    // checkpoints written before this was a split source keep ranges without an id
    const splits = restored?.map((raw) => {
      const s = raw as Omit<FileSourceSplit, 'splitId'> & { splitId?: string };
      return { ...s, splitId: s.splitId ?? `${s.path}@${s.start}` };
    });
    // one limit per subtask: its splits wait for a turn instead of opening every file at once
    const limit = new OpenFileLimit(OPEN_FILES);
    const create = (s: FileSourceSplit): SplitReader<string, FileSourceSplit> =>
      new TextFileSplitReader(s, limit);
    if (requester)
      return new CoordinatedSplitSourceReader((splits ?? []).map(create), true, create, requester);
    // driven without an enumerator (in-process): the subtask lists the files itself
    const mine =
      splits ??
      planSplits(
        listFilesSync(this.root(context.workingDirectory)),
        context.parallelism,
        this.options.blockSizeBytes,
      ).filter((_, k) => k % context.parallelism === context.subtaskIndex);
    return new SplitSourceReader(mine.map(create), true);
  }
}

/**
 * Lists the files when the job (attempt) starts, unless the restored state has them, and
 * hands out one split per request, in file order; a reader that asks when none is left is
 * told no more will come.
 */
class TextFileEnumerator implements SplitEnumerator<FileSourceSplit, TextFileEnumeratorState> {
  private listed: boolean;
  private readonly pending: FileSourceSplit[];
  /** readers that asked before the listing was done */
  private readonly waiting = new Set<number>();

  constructor(
    private readonly ctx: SplitEnumeratorContext<FileSourceSplit>,
    private readonly root: string,
    private readonly blockSizeBytes: number | undefined,
    restored: TextFileEnumeratorState | undefined,
  ) {
    this.listed = restored?.listed ?? false;
    this.pending = restored?.pending.map((s) => ({ ...s })) ?? [];
  }

  /** Lists before any reader registers (the JobManager awaits it), without blocking its event loop. */
  async start(): Promise<void> {
    if (this.listed) return;
    const files = await listFiles(this.root);
    this.pending.push(...planSplits(files, this.ctx.currentParallelism, this.blockSizeBytes));
    this.listed = true;
    const waiting = [...this.waiting];
    this.waiting.clear();
    for (const subtask of waiting) this.handleSplitRequest(subtask);
  }

  handleSplitRequest(subtask: number): void {
    if (!this.listed) {
      this.waiting.add(subtask);
      return;
    }
    const split = this.pending.shift();
    if (split) this.ctx.assignSplit(split, subtask);
    else this.ctx.signalNoMoreSplits(subtask);
  }

  addSplitsBack(splits: FileSourceSplit[]): void {
    this.pending.unshift(...splits);
  }

  addReader(): void {}

  snapshotState(): TextFileEnumeratorState {
    return { listed: this.listed, pending: this.pending.map((s) => ({ ...s })) };
  }
}

/** How many of a subtask's splits may have their file open (and a chunk of lines queued) at once. */
class OpenFileLimit {
  private open = 0;
  private waiters: Array<() => void> = [];
  private free: Promise<void> | undefined;

  constructor(private readonly max: number) {}

  tryAcquire(): boolean {
    if (this.open >= this.max) return false;
    this.open++;
    return true;
  }

  /** resolves when a split gave its turn back */
  available(): Promise<void> {
    return (this.free ??= new Promise<void>((resolve) => this.waiters.push(resolve)));
  }

  release(): void {
    this.open--;
    this.free = undefined;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/**
 * Reads the lines of one split in 64 KiB chunks: the first line is the one starting at or
 * after `start` (a block that starts inside a line leaves it to the block before), the last
 * is the one starting before `end`, read to its newline even past `end`. `\r\n` ends a line
 * as `\n` does.
 */
class TextFileSplitReader implements SplitReader<string, FileSourceSplit> {
  private readonly split: FileSourceSplit;
  private handle: FileHandle | undefined;
  /** next byte of the file to read */
  private readPos = 0;
  private leftover: Buffer = Buffer.alloc(0);
  private leftoverStart = 0;
  private skipFirst = false;
  private readonly lines: string[] = [];
  /** for each queued line, the offset of the byte after it: where reading resumes once it is emitted */
  private readonly lineEnds: number[] = [];
  private lineHead = 0;
  /** resume offset after the last emitted line; -1 before the first */
  private emittedUpTo = -1;
  /** every line of the split is queued or emitted */
  private allRead = false;
  private reading: Promise<void> | undefined;
  private error: Error | undefined;
  /** this split holds one of the subtask's open-file turns */
  private turn = false;

  constructor(
    split: FileSourceSplit,
    private readonly limit: OpenFileLimit,
  ) {
    this.split = { ...split };
  }

  fetch(out: SplitReaderOutput<string>, budget: number): InputStatus {
    if (this.error) throw this.error;
    if (this.lineHead < this.lines.length) {
      const stop = Math.min(this.lines.length, this.lineHead + budget);
      for (let i = this.lineHead; i < stop; i++) out.collect(this.lines[i]!);
      this.emittedUpTo = this.lineEnds[stop - 1]!;
      this.lineHead = stop;
      if (stop < this.lines.length) return InputStatus.MORE_AVAILABLE;
      this.lines.length = 0;
      this.lineEnds.length = 0;
      this.lineHead = 0;
      if (this.allRead) return InputStatus.END_OF_INPUT;
      this.read();
      return InputStatus.MORE_AVAILABLE;
    }
    if (this.allRead) return InputStatus.END_OF_INPUT;
    if (!this.turn && !(this.turn = this.limit.tryAcquire())) return InputStatus.NOTHING_AVAILABLE;
    this.read();
    return InputStatus.NOTHING_AVAILABLE;
  }

  /** the next chunk, read while the task emits what it has */
  private read(): void {
    this.reading ??= this.readChunk().then(
      () => {
        this.reading = undefined;
      },
      (e: Error) => {
        this.error = e;
        this.reading = undefined;
      },
    );
  }

  isAvailable(): Promise<void> {
    if (this.reading) return this.reading;
    return this.turn || this.allRead ? AVAILABLE : this.limit.available();
  }

  private giveTurnBack(): void {
    if (!this.turn) return;
    this.turn = false;
    this.limit.release();
  }

  snapshot(): FileSourceSplit {
    return this.emittedUpTo >= 0
      ? { ...this.split, start: this.emittedUpTo, exact: true }
      : { ...this.split };
  }

  private async readChunk(): Promise<void> {
    const split = this.split;
    if (!this.handle) {
      try {
        this.handle = await open(split.path, 'r');
      } catch (e) {
        throw new Error(`Text file source: cannot open ${split.path}: ${(e as Error).message}`);
      }
      // start one byte early: if that byte ends a line, our first line starts exactly at split.start
      this.skipFirst = split.start > 0 && !split.exact;
      this.readPos = this.skipFirst ? split.start - 1 : split.start;
      this.leftover = Buffer.alloc(0);
      this.leftoverStart = this.readPos;
    }
    const buf = Buffer.allocUnsafe(CHUNK);
    const { bytesRead } = await this.handle.read(buf, 0, CHUNK, this.readPos);
    this.readPos += bytesRead;
    const data =
      this.leftover.length > 0
        ? Buffer.concat([this.leftover, buf.subarray(0, bytesRead)])
        : buf.subarray(0, bytesRead);
    const base = this.leftoverStart;
    let s = 0;
    let splitDone = false;
    for (let nl = data.indexOf(NEWLINE, s); nl !== -1; nl = data.indexOf(NEWLINE, s)) {
      if (this.skipFirst) {
        this.skipFirst = false;
      } else {
        if (base + s >= split.end) {
          splitDone = true;
          break;
        }
        this.pushLine(data, s, nl, base + nl + 1);
      }
      s = nl + 1;
    }
    if (!splitDone && base + s >= split.end && !this.skipFirst) splitDone = true;
    this.leftover = Buffer.from(data.subarray(s));
    this.leftoverStart = base + s;
    if (!splitDone && bytesRead === 0) {
      if (this.leftover.length > 0 && !this.skipFirst && this.leftoverStart < split.end) {
        this.pushLine(this.leftover, 0, this.leftover.length, this.leftoverStart + this.leftover.length);
      }
      splitDone = true;
    }
    if (splitDone) {
      await this.handle.close();
      this.handle = undefined;
      this.allRead = true;
      this.giveTurnBack();
    }
  }

  private pushLine(data: Buffer, start: number, end: number, resumeAt: number): void {
    if (end > start && data[end - 1] === 0x0d) end--;
    this.lines.push(data.toString('utf8', start, end));
    this.lineEnds.push(resumeAt);
  }

  async close(): Promise<void> {
    this.giveTurnBack();
    await this.handle?.close();
    this.handle = undefined;
  }
}
