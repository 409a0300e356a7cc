import { closeSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Sink, SinkWriter } from '../sink.js';
import type { TaskInfo } from '../runtime-context.js';

export interface FileSinkOptions {
  path: string;
  /** lines: strings as they are, other values as JSON; json: JSON lines */
  format?: 'lines' | 'json';
  /** roll to a new part file past this size (default 128 MiB) */
  rollingSizeBytes?: number;
}

const FLUSH_AT = 64 * 1024;

/**
 * Part files in a directory. A file being written is named `.part-<subtask>-<n>.inprogress`
 * and renamed to `part-<subtask>-<n>` once complete, so readers only see whole files.
 */
export class FileSink<T> implements Sink<T> {
  constructor(readonly options: FileSinkOptions) {
    if (!options?.path) throw new Error('FileSink needs a path, e.g. new FileSink({ path: "out/results" })');
  }

  /** Where the output goes, for the client to print. */
  describe(workingDirectory: string): string {
    return `FileSink: ${path.resolve(workingDirectory, this.options.path)}/part-*`;
  }

  createWriter(ctx: TaskInfo): SinkWriter<T> {
    const dir = path.resolve(ctx.workingDirectory, this.options.path);
    const json = this.options.format === 'json';
    const rollAt = this.options.rollingSizeBytes ?? 128 * 1024 * 1024;
    let part = 0;
    let fd: number | undefined;
    let file = '';
    let buf = '';
    let size = 0;
    let written = 0;
    const name = (inProgress: boolean): string =>
      path.join(dir, inProgress ? `.part-${ctx.subtaskIndex}-${part}.inprogress` : `part-${ctx.subtaskIndex}-${part}`);
    const openPart = (): void => {
      try {
        mkdirSync(dir, { recursive: true });
        file = name(true);
        fd = openSync(file, 'w');
      } catch (e) {
        throw new Error(`FileSink cannot write to ${dir}: ${(e as Error).message}`);
      }
    };
    const flushBuf = (): void => {
      if (!buf) return;
      if (fd === undefined) openPart();
      try {
        writeSync(fd!, buf);
      } catch (e) {
        throw new Error(`FileSink cannot write ${file}: ${(e as Error).message}`);
      }
      buf = '';
    };
    const commit = (): void => {
      flushBuf();
      if (fd === undefined) return;
      closeSync(fd);
      fd = undefined;
      if (written === 0) unlinkSync(file);
      else renameSync(file, name(false));
      part++;
      size = 0;
      written = 0;
    };
    return {
      write: (r: T) => {
        const line = (json || typeof r !== 'string' ? JSON.stringify(r) : r) + '\n';
        buf += line;
        size += line.length;
        written++;
        if (buf.length >= FLUSH_AT) {
          flushBuf();
          if (size >= rollAt) commit();
        }
      },
      flush: flushBuf,
      close: commit,
    };
  }
}
