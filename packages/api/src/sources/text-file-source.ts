import { readdirSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { AVAILABLE, InputStatus, type ReaderOutput, type Source, type SourceReader } from '../source.js';
import type { TaskInfo } from '../runtime-context.js';

const CHUNK = 64 * 1024;
const NEWLINE = 0x0a;

export interface FileSplit {
  path: string;
  /** bytes [start, end) of the file; a line belongs here when its first byte does */
  start: number;
  end: number;
  /** start is known to be the first byte of a line (a restored position) */
  exact?: boolean;
}

function listFiles(p: string): Array<{ path: string; size: number }> {
  let st;
  try {
    st = statSync(p);
  } catch {
    throw new Error(`Text file source: no such file or directory: ${p}`);
  }
  if (st.isFile()) return [{ path: p, size: st.size }];
  return readdirSync(p)
    .filter((n) => !n.startsWith('.') && !n.startsWith('_'))
    .sort()
    .map((n) => path.join(p, n))
    .filter((f) => statSync(f).isFile())
    .map((f) => ({ path: f, size: statSync(f).size }));
}

/**
 * Lines of a file or of the files of a directory. The bytes of all files, one after the
 * other, are split into one contiguous range per subtask (Hadoop-style splits), so a single
 * large file is read in parallel and every line is emitted by exactly one subtask.
 */
export class TextFileSource implements Source<string> {
  readonly boundedness = 'BOUNDED' as const;
  constructor(readonly path: string) {
    if (!path) throw new Error('readTextFile needs a path');
  }

  createReader(ctx: TaskInfo, restored?: unknown[]): SourceReader<string> {
    return new TextFileReader(
      path.resolve(ctx.workingDirectory, this.path),
      ctx.subtaskIndex,
      ctx.parallelism,
      restored as FileSplit[] | undefined,
    );
  }
}

class TextFileReader implements SourceReader<string> {
  private splits: FileSplit[] = [];
  private fileIndex = 0;
  private handle: FileHandle | undefined;
  /** next byte of the current file to read */
  private readPos = 0;
  private leftover: Buffer = Buffer.alloc(0);
  private leftoverStart = 0;
  private skipFirst = false;
  private readonly lines: string[] = [];
  /** for each queued line, the offset of the byte after it: where reading resumes once it is emitted */
  private readonly lineEnds: number[] = [];
  private lineHead = 0;
  /** resume offset in the current split after the last emitted line; -1 before the first */
  private emittedUpTo = -1;
  private splitRead = false;
  private reading: Promise<void> | undefined;
  private error: Error | undefined;
  private done = false;

  constructor(
    private readonly root: string,
    private readonly subtask: number,
    private readonly parallelism: number,
    private readonly restored?: FileSplit[],
  ) {}

  start(): void {
    if (this.restored) {
      this.splits = this.restored.filter((s) => s.start < s.end);
      if (this.splits.length === 0) this.done = true;
      return;
    }
    const files = listFiles(this.root);
    const total = files.reduce((s, f) => s + f.size, 0);
    const rs = Math.floor((total * this.subtask) / this.parallelism);
    const re = Math.floor((total * (this.subtask + 1)) / this.parallelism);
    let offset = 0;
    for (const f of files) {
      const start = Math.max(0, rs - offset);
      const end = Math.min(f.size, re - offset);
      if (start < end) this.splits.push({ path: f.path, start, end });
      offset += f.size;
    }
    if (this.splits.length === 0) this.done = true;
  }

  /** The position checkpointing will keep: file index and the offset of the next unread line. */
  /** The splits still to read, the current one from just after the last emitted line. */
  snapshotState(): FileSplit[] {
    const rest = this.splits.slice(this.fileIndex).map((s) => ({ ...s }));
    if (rest.length > 0 && this.emittedUpTo >= 0)
      rest[0] = { ...rest[0]!, start: this.emittedUpTo, exact: true };
    return rest.filter((s) => s.start < s.end);
  }

  pollNext(out: ReaderOutput<string>): InputStatus {
    if (this.error) throw this.error;
    if (this.lineHead < this.lines.length) {
      const stop = Math.min(this.lines.length, this.lineHead + 512);
      for (let i = this.lineHead; i < stop; i++) out.collect(this.lines[i]!);
      this.emittedUpTo = this.lineEnds[stop - 1]!;
      this.lineHead = stop;
      if (stop === this.lines.length) {
        this.lines.length = 0;
        this.lineEnds.length = 0;
        this.lineHead = 0;
        if (this.splitRead) this.nextSplit();
      }
      return InputStatus.MORE_AVAILABLE;
    }
    if (this.done) return InputStatus.END_OF_INPUT;
    this.reading ??= this.readChunk().then(
      () => {
        this.reading = undefined;
      },
      (e: Error) => {
        this.error = e;
        this.reading = undefined;
      },
    );
    return InputStatus.NOTHING_AVAILABLE;
  }

  isAvailable(): Promise<void> {
    return this.reading ?? AVAILABLE;
  }

  private async readChunk(): Promise<void> {
    const split = this.splits[this.fileIndex]!;
    if (!this.handle) {
      try {
        this.handle = await open(split.path, 'r');
      } catch (e) {
        throw new Error(`Text file source: cannot open ${split.path}: ${(e as Error).message}`);
      }
      // start one byte early: if that byte ends a line, our first line starts exactly at split.start
      this.skipFirst = split.start > 0 && !split.exact;
      this.readPos = this.skipFirst ? split.start - 1 : split.start;
      this.emittedUpTo = -1;
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
      // the split's last lines may still be queued: move on once they are emitted
      this.splitRead = true;
      if (this.lines.length === 0) this.nextSplit();
    }
  }

  private nextSplit(): void {
    this.splitRead = false;
    this.fileIndex++;
    this.emittedUpTo = -1;
    if (this.fileIndex >= this.splits.length) this.done = true;
  }

  private pushLine(data: Buffer, start: number, end: number, resumeAt: number): void {
    if (end > start && data[end - 1] === 0x0d) end--;
    this.lines.push(data.toString('utf8', start, end));
    this.lineEnds.push(resumeAt);
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
  }
}
