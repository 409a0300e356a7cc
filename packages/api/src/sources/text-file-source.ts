import { readdirSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { AVAILABLE, InputStatus, type ReaderOutput, type Source, type SourceReader } from '../source.js';
import type { TaskInfo } from '../runtime-context.js';

const CHUNK = 64 * 1024;
const NEWLINE = 0x0a;

interface FileSplit {
  path: string;
  /** bytes [start, end) of the file; a line belongs here when its first byte does */
  start: number;
  end: number;
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

  createReader(ctx: TaskInfo): SourceReader<string> {
    return new TextFileReader(path.resolve(ctx.workingDirectory, this.path), ctx.subtaskIndex, ctx.parallelism);
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
  private lineHead = 0;
  private reading: Promise<void> | undefined;
  private error: Error | undefined;
  private done = false;

  constructor(private readonly root: string, private readonly subtask: number, private readonly parallelism: number) {}

  start(): void {
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
  /** Position of the next unread line (restoring a text-file source is not implemented yet). */
  position(): { fileIndex: number; offset: number } {
    return { fileIndex: this.fileIndex, offset: this.leftoverStart };
  }

  pollNext(out: ReaderOutput<string>): InputStatus {
    if (this.error) throw this.error;
    if (this.lineHead < this.lines.length) {
      const stop = Math.min(this.lines.length, this.lineHead + 512);
      for (let i = this.lineHead; i < stop; i++) out.collect(this.lines[i]!);
      this.lineHead = stop;
      if (stop === this.lines.length) {
        this.lines.length = 0;
        this.lineHead = 0;
      }
      return InputStatus.MORE_AVAILABLE;
    }
    if (this.done) return InputStatus.END_OF_INPUT;
    this.reading ??= this.readChunk().then(
      () => { this.reading = undefined; },
      (e: Error) => { this.error = e; this.reading = undefined; },
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
      this.skipFirst = split.start > 0;
      this.readPos = split.start > 0 ? split.start - 1 : 0;
      this.leftover = Buffer.alloc(0);
      this.leftoverStart = this.readPos;
    }
    const buf = Buffer.allocUnsafe(CHUNK);
    const { bytesRead } = await this.handle.read(buf, 0, CHUNK, this.readPos);
    this.readPos += bytesRead;
    const data = this.leftover.length > 0 ? Buffer.concat([this.leftover, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
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
        this.pushLine(data, s, nl);
      }
      s = nl + 1;
    }
    if (!splitDone && base + s >= split.end && !this.skipFirst) splitDone = true;
    this.leftover = Buffer.from(data.subarray(s));
    this.leftoverStart = base + s;
    if (!splitDone && bytesRead === 0) {
      if (this.leftover.length > 0 && !this.skipFirst && this.leftoverStart < split.end) this.pushLine(this.leftover, 0, this.leftover.length);
      splitDone = true;
    }
    if (splitDone) {
      await this.handle.close();
      this.handle = undefined;
      this.fileIndex++;
      if (this.fileIndex >= this.splits.length) this.done = true;
    }
  }

  private pushLine(data: Buffer, start: number, end: number): void {
    if (end > start && data[end - 1] === 0x0d) end--;
    this.lines.push(data.toString('utf8', start, end));
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
  }
}
