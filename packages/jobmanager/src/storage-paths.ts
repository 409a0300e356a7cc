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
 *   retained checkpoints under the checkpoint storage).
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

  /** The storage URI a savepoint target names, or an error saying why it is refused. */
  savepointTarget(target: string | undefined): string {
    if (!target) return storageUri(this.savepointRoot);
    const loc = this.resolve(target, 'Savepoint target');
    if (isWithinLocation(loc, this.checkpointRoot)) {
      throw new Error(
        `Savepoint target '${target}' is refused: it is inside the checkpoint storage ${storageUri(this.checkpointRoot)}, where the jobs' checkpoints live. Use the savepoint directory (${storageUri(this.savepointRoot)}) or another directory`,
      );
    }
    this.checkAllowed(loc, target, 'Savepoint target', [this.savepointRoot, ...this.allowed]);
    return storageUri(loc);
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
