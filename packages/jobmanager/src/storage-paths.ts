import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileStorageUri } from '@weir/core';

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
  private readonly checkpointRoot: string;
  private readonly savepointRoot: string;
  private readonly allowed: string[];
  private readonly restrict: boolean;

  constructor(opts: {
    checkpointStorage: string;
    savepointDir: string;
    allowedDirs?: string[];
    restrict: boolean;
  }) {
    this.restrict = opts.restrict;
    this.checkpointRoot = canonical(opts.checkpointStorage);
    this.savepointRoot = canonical(opts.savepointDir);
    this.allowed = (opts.allowedDirs ?? []).map(canonical);
  }

  /** The storage URI a savepoint target names, or an error saying why it is refused. */
  savepointTarget(target: string | undefined): string {
    if (!target) return this.savepointRoot;
    const uri = this.resolve(target, 'Savepoint target');
    if (within(uri, this.checkpointRoot)) {
      throw new Error(
        `Savepoint target '${target}' is refused: it is inside the checkpoint storage ${this.checkpointRoot}, where the jobs' checkpoints live. Use the savepoint directory (${this.savepointRoot}) or another directory`,
      );
    }
    this.checkAllowed(uri, target, 'Savepoint target', [this.savepointRoot, ...this.allowed]);
    return uri;
  }

  /** A restore path (savepoint or retained checkpoint, directory or _metadata), checked the same way. */
  restorePath(p: string): string {
    const uri = this.resolve(p, 'Restore path');
    this.checkAllowed(uri, p, 'Restore path', [this.savepointRoot, this.checkpointRoot, ...this.allowed]);
    return uri.startsWith('file://') ? fileURLToPath(uri) : uri;
  }

  private resolve(p: string, what: string): string {
    if (p.includes('\0')) throw new Error(`${what} is refused: it contains a NUL character`);
    const rest = p.replace(/^(file|s3):\/\/[^/]*/, '');
    if (rest.split(/[/\\]+/).includes('..')) {
      throw new Error(
        `${what} '${p}' is refused: '..' segments are not allowed; give the directory without them`,
      );
    }
    if (/^s3:\/\//.test(p)) return p.replace(/\/+$/, '');
    if (/^file:\/\//.test(p)) return canonical(p);
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p))
      throw new Error(`${what} '${p}' is refused: only directories, file:// and s3:// URIs are supported`);
    if (path.isAbsolute(p)) return canonical(p);
    if (this.savepointRoot.startsWith('s3://'))
      return `${this.savepointRoot}/${p.replace(/^\.\/+/, '').replace(/\/+$/, '')}`;
    return canonical(path.join(fileURLToPath(this.savepointRoot), p));
  }

  private checkAllowed(uri: string, given: string, what: string, roots: string[]): void {
    if (!this.restrict) return;
    if (roots.some((r) => within(uri, r))) return;
    throw new Error(
      `${what} '${given}' is refused: it is outside the directories this cluster allows (${roots.join(', ')}); add it to security.storage.allowed-dirs`,
    );
  }
}

/** A directory or URI as a normalized storage URI without a trailing slash. */
function canonical(p: string): string {
  if (p.startsWith('s3://')) return p.replace(/\/+$/, '');
  const dir = p.startsWith('file://') ? fileURLToPath(p) : path.resolve(p);
  return fileStorageUri(path.normalize(dir)).replace(/\/+$/, '');
}

function within(uri: string, root: string): boolean {
  return uri === root || uri.startsWith(`${root}/`);
}
