import path from 'node:path';
import {
  childLocation,
  describeLocation,
  isStorageUri,
  isWithinLocation,
  parseStorageLocation,
  storageUri,
  type StorageLocation,
} from '@weir/core';
import type { SinkPath } from '@weir/api/internal';

/** A directory a job's sink writes to, on the cluster's file system. */
export interface OutputDirectory {
  /** canonical file:// URI */
  uri: string;
  location: StorageLocation;
  /** the absolute path, for messages */
  dir: string;
  operatorName: string;
  operatorId: string;
}

/** Jobs whose output directories a new job or a savepoint must stay out of. */
export interface JobOutputs {
  jobId: string;
  jobName: string;
  outputs: OutputDirectory[];
}

/** The job's sink directories, absolute: relative ones are taken against the job's working directory, as the TaskManagers do. */
export function outputDirectories(
  sinkPaths: SinkPath[] | undefined,
  workingDirectory: string | undefined,
): OutputDirectory[] {
  return (sinkPaths ?? []).flatMap((s) => {
    if (typeof s?.path !== 'string' || s.path.includes('\0')) return [];
    if (!path.isAbsolute(s.path) && !workingDirectory) return [];
    const dir = path.resolve(workingDirectory ?? '/', s.path);
    const location = parseStorageLocation(dir, { baseDir: '/', what: 'FileSink path' });
    return [
      {
        uri: storageUri(location),
        location,
        dir,
        operatorName: String(s.operatorName),
        operatorId: String(s.operatorId),
      },
    ];
  });
}

/**
 * Where clients may make the JobManager write savepoints and read restore state from. Requests
 * name paths on the JobManager's machine (or in its bucket), so they are checked:
 *
 * - a path with a `..` segment is refused outright (it is how a relative path escapes a root);
 * - a relative path is taken under the savepoint directory;
 * - a savepoint may not go inside the checkpoint storage, where the jobs' checkpoints live
 *   (`<root>/<jobId>/...`), so it can neither overwrite nor be discarded with them;
 * - when `restrict` is set (a secured cluster, or `security.storage.allowed-dirs` given), the
 *   path must be under the savepoint directory or an allowed directory (restores may also read
 *   retained checkpoints under the checkpoint storage);
 * - a savepoint may not go into a running job's output directory, and a job's output
 *   directories may not be inside the checkpoint storage or shared with another running job
 *   (`checkOutputs`), so output, savepoints and checkpoints never mix.
 */
export class StoragePathPolicy {
  private readonly checkpointRoot: StorageLocation;
  private readonly savepointRoot: StorageLocation;
  private readonly allowed: StorageLocation[];
  private readonly restrict: boolean;

  constructor(opts: {
    checkpointStorage: string;
    savepointDir: string;
    allowedDirs?: string[];
    restrict: boolean;
  }) {
    this.restrict = opts.restrict;
    const base = { baseDir: process.cwd() };
    this.checkpointRoot = parseStorageLocation(opts.checkpointStorage, {
      ...base,
      what: 'Checkpoint storage',
    });
    this.savepointRoot = parseStorageLocation(opts.savepointDir, { ...base, what: 'Savepoint directory' });
    this.allowed = (opts.allowedDirs ?? []).map((d) =>
      parseStorageLocation(d, { ...base, what: 'security.storage.allowed-dirs entry' }),
    );
  }

  /**
   * The storage URI a savepoint target names, or an error saying why it is refused. `running`:
   * the output directories of the jobs that are not over, which the savepoint must stay out of.
   */
  savepointTarget(target: string | undefined, running: JobOutputs[] = []): string {
    const loc = target ? this.resolve(target, 'Savepoint target') : this.savepointRoot;
    const root = storageUri(this.savepointRoot);
    for (const job of running) {
      for (const out of job.outputs) {
        if (!isWithinLocation(loc, out.location)) continue;
        throw new Error(
          `Savepoint target '${target ?? root}' is refused: it is inside ${out.dir}, the output directory of '${out.operatorName}' of job ${job.jobId} ('${job.jobName}'), where the savepoint would mix with the job's part files. Give a directory outside the jobs' output${target ? ` (or none, for the savepoint directory ${root})` : ', or set state.savepoints.dir elsewhere'}`,
        );
      }
    }
    if (!target) return root;
    if (isWithinLocation(loc, this.checkpointRoot)) {
      throw new Error(
        `Savepoint target '${target}' is refused: it is inside the checkpoint storage ${storageUri(this.checkpointRoot)}, where the jobs' checkpoints live. Use the savepoint directory (${root}) or another directory`,
      );
    }
    this.checkAllowed(loc, target, 'Savepoint target', [this.savepointRoot, ...this.allowed]);
    return storageUri(loc);
  }

  /**
   * Refuses a new job whose output directories collide: two sinks of the job in one directory,
   * a directory inside the checkpoint storage (the cluster's, or the job's own `checkpointStorage`),
   * or a directory a running job writes to. Part file names never collide, but two jobs in one
   * directory would mix their output with nothing to tell it apart.
   */
  checkOutputs(
    jobName: string,
    outputs: OutputDirectory[],
    running: JobOutputs[],
    checkpointStorage?: string,
  ): void {
    const roots = [this.checkpointRoot];
    if (checkpointStorage && isStorageUri(checkpointStorage))
      roots.push(parseStorageLocation(checkpointStorage, { baseDir: '/', what: 'Checkpoint storage' }));
    outputs.forEach((out, i) => {
      const twin = outputs.findIndex((o) => o.uri === out.uri);
      if (twin !== i) {
        throw new Error(
          `Job '${jobName}' is refused: its sinks '${outputs[twin]!.operatorName}' (${outputs[twin]!.operatorId}) and '${out.operatorName}' (${out.operatorId}) both write to ${out.dir}. Give each FileSink a directory of its own`,
        );
      }
      const root = roots.find((r) => isWithinLocation(out.location, r));
      if (root) {
        throw new Error(
          `Job '${jobName}' is refused: '${out.operatorName}' writes to ${out.dir}, inside the checkpoint storage ${storageUri(root)}, where checkpoint directories are deleted when newer ones complete. Write the output to another directory`,
        );
      }
      for (const job of running) {
        if (!job.outputs.some((o) => o.uri === out.uri)) continue;
        throw new Error(
          `Job '${jobName}' is refused: '${out.operatorName}' writes to ${out.dir}, where job ${job.jobId} ('${job.jobName}') is writing. Two running jobs in one directory mix their output; give this job another path, or stop job ${job.jobId} first (weir cancel ${job.jobId} --savepoint, to resume it later)`,
        );
      }
    });
  }

  /** A restore path (savepoint or retained checkpoint, directory or _metadata), checked the same way: a local path, or an s3:// URI. */
  restorePath(p: string): string {
    const loc = this.resolve(p, 'Restore path');
    this.checkAllowed(loc, p, 'Restore path', [this.savepointRoot, this.checkpointRoot, ...this.allowed]);
    return describeLocation(loc);
  }

  private resolve(p: string, what: string): StorageLocation {
    if (p.includes('\0')) throw new Error(`${what} is refused: it contains a NUL character`);
    const rest = p.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '');
    if (rest.split(/[/\\]+/).includes('..')) {
      throw new Error(
        `${what} '${p}' is refused: '..' segments are not allowed; give the directory without them`,
      );
    }
    if (isStorageUri(p) || path.isAbsolute(p)) return parseStorageLocation(p, { baseDir: '/', what });
    // relative: under the savepoint directory
    return childLocation(this.savepointRoot, p);
  }

  private checkAllowed(loc: StorageLocation, given: string, what: string, roots: StorageLocation[]): void {
    if (!this.restrict) return;
    if (roots.some((r) => isWithinLocation(loc, r))) return;
    throw new Error(
      `${what} '${given}' is refused: it is outside the directories this cluster allows (${roots.map(storageUri).join(', ')}); add it to security.storage.allowed-dirs`,
    );
  }
}
