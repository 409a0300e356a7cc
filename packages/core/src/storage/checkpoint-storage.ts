import { createHash } from 'node:crypto';
import path from 'node:path';
import type { StorageLocation } from './location.js';
import { BackgroundSha256 } from './background-sha256.js';
import { fileChunks } from './file-chunks.js';
import { StorageError } from './storage-error.js';

/** Where a written file is, how big it is, and its checksum, so restore can verify it. */
export interface StateHandle {
  path: string;
  size: number;
  sha256: string;
}

/**
 * The blob store checkpoints, savepoints and the job store are written to: files (objects)
 * addressed by slash-separated paths relative to the storage root, in the design guide's layout
 * `<jobId>/chk-<n>/_metadata`, `<jobId>/chk-<n>/<operator>/<subtask>-<uuid>`,
 * `<jobId>/shared/<file>`. Failures are StorageErrors whose reason says whether the data is
 * missing or damaged, or the storage unreachable.
 */
export interface CheckpointStorage {
  /** the canonical URI of the root (no trailing slash) */
  readonly root: string;
  readonly location: StorageLocation;
  write(relPath: string, data: Uint8Array): Promise<StateHandle>;
  /**
   * Writes a file produced piecewise, as its chunks arrive (bounded memory); the checksum is
   * computed on the way. Storages without it are written through writeChunks' fallback.
   */
  writeStream?(relPath: string, chunks: AsyncIterable<Uint8Array>): Promise<StateHandle>;
  /**
   * Writes the first `size` bytes of a local file that does not change meanwhile (appends past
   * `size` aside), without reading it into JavaScript where the storage can (a kernel copy);
   * storages without it are written through writeLocalFile's fallback.
   */
  copyFile?(relPath: string, localFile: string, size: number): Promise<StateHandle>;
  /** the file's bytes, verified against `expectedSha256` when given */
  read(relPath: string, expectedSha256?: string): Promise<Buffer>;
  /** names directly under a directory, sorted; [] when it does not exist */
  list(relDir: string): Promise<string[]>;
  /** whether anything (a file, or a directory with files in it) exists at the path ('' for the root) */
  exists(relPath: string): Promise<boolean>;
  delete(relPath: string): Promise<void>;
  deleteDir(relDir: string): Promise<void>;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Passes chunks through, hashing them on the hashing thread (BackgroundSha256); `digest()` once
 * the iteration has ended, `abort()` when the write fails after it (no digest will be asked).
 */
export class HashingChunks implements AsyncIterable<Uint8Array> {
  private readonly hash = new BackgroundSha256();

  constructor(private readonly chunks: AsyncIterable<Uint8Array>) {}

  get size(): number {
    return this.hash.size;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    let complete = false;
    try {
      for await (const c of this.chunks) {
        this.hash.update(c);
        yield c;
      }
      complete = true;
    } finally {
      if (!complete) this.hash.abort();
    }
  }

  digest(): Promise<string> {
    return this.hash.digest();
  }

  abort(): void {
    this.hash.abort();
  }
}

/** A file produced piecewise: streamed when the storage can, else gathered and written whole. */
export async function writeChunks(
  storage: CheckpointStorage,
  relPath: string,
  chunks: AsyncIterable<Uint8Array>,
): Promise<StateHandle> {
  if (storage.writeStream) return storage.writeStream(relPath, chunks);
  const all: Uint8Array[] = [];
  for await (const c of chunks) all.push(c);
  return storage.write(relPath, Buffer.concat(all));
}

/** A local file's first `size` bytes: copied where the storage can, else streamed in chunks. */
export function writeLocalFile(
  storage: CheckpointStorage,
  relPath: string,
  localFile: string,
  size: number,
): Promise<StateHandle> {
  if (storage.copyFile) return storage.copyFile(relPath, localFile, size);
  return writeChunks(storage, relPath, fileChunks(localFile, size));
}

/**
 * A path under a storage root, normalized; refuses absolute paths and `..` (handle paths that
 * climb out of a checkpoint's directory are resolved with resolveHandlePath first). '' and '.'
 * name the root itself.
 */
export function checkedRelativePath(rel: string): string {
  const norm = path.posix.normalize(rel === '' ? '.' : rel);
  if (norm === '..' || norm.startsWith('../') || path.posix.isAbsolute(norm))
    throw new StorageError('INVALID_LOCATION', `Checkpoint path escapes the storage root: ${rel}`);
  return norm === '.' ? '' : norm.replace(/\/+$/, '');
}
