import { readFile, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { sha256OfFile } from './background-sha256.js';
import { copyFileDurable, writeFileDurable, writeFileDurableChunks } from '../durable-fs.js';
import {
  HashingChunks,
  checkedRelativePath,
  sha256,
  type CheckpointStorage,
  type StateHandle,
} from './checkpoint-storage.js';
import { parseStorageLocation, storageUri, type FileLocation, type StorageLocation } from './location.js';
import { StorageError } from './storage-error.js';

/** Checkpoint files in a local (or mounted) directory; what marks completion is written durably. */
export class FileCheckpointStorage implements CheckpointStorage {
  readonly location: FileLocation;
  readonly root: string;
  /** the root directory */
  readonly dir: string;

  /** `root`: a file:// URI or a parsed file location */
  constructor(root: string | StorageLocation) {
    const loc = typeof root === 'string' ? parseStorageLocation(root, { what: 'Checkpoint storage' }) : root;
    if (loc.scheme !== 'file')
      throw new StorageError(
        'INVALID_LOCATION',
        `FileCheckpointStorage needs a file:// location, got ${storageUri(loc)}`,
      );
    this.location = loc;
    this.root = storageUri(loc);
    this.dir = loc.path;
  }

  private file(relPath: string): string {
    return path.join(this.dir, checkedRelativePath(relPath));
  }

  async write(relPath: string, data: Uint8Array): Promise<StateHandle> {
    const file = this.file(relPath);
    try {
      // write, fsync, rename, fsync the directory: a reader never sees half a file, and a
      // completed checkpoint's files survive a power cut
      await writeFileDurable(file, data);
    } catch (e) {
      throw new StorageError('UNAVAILABLE', `Cannot write checkpoint file ${file}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    return { path: relPath, size: data.byteLength, sha256: sha256(data) };
  }

  async writeStream(relPath: string, chunks: AsyncIterable<Uint8Array>): Promise<StateHandle> {
    const file = this.file(relPath);
    const hashed = new HashingChunks(chunks);
    try {
      await writeFileDurableChunks(file, hashed);
    } catch (e) {
      hashed.abort();
      // a failure of the producer (the snapshot) is its own, not the storage's
      if (!(e as NodeJS.ErrnoException).syscall) throw e;
      throw new StorageError('UNAVAILABLE', `Cannot write checkpoint file ${file}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    return { path: relPath, size: hashed.size, sha256: await hashed.digest() };
  }

  async copyFile(relPath: string, localFile: string, size: number): Promise<StateHandle> {
    const file = this.file(relPath);
    // the source is hashed as it is copied: its first `size` bytes do not change
    const [copied, hashed] = await Promise.allSettled([
      copyFileDurable(localFile, file, size),
      sha256OfFile(localFile, size),
    ]);
    if (copied.status === 'fulfilled' && hashed.status === 'fulfilled')
      return { path: relPath, size, sha256: hashed.value };
    if (copied.status === 'fulfilled') await rm(file, { force: true });
    const e =
      copied.status === 'rejected' ? (copied.reason as Error) : (hashed as PromiseRejectedResult).reason;
    // a source shorter than recorded is the producer's failure, not the storage's
    if ((e as NodeJS.ErrnoException).code === 'ESHORT' || copied.status === 'fulfilled') throw e;
    throw new StorageError('UNAVAILABLE', `Cannot write checkpoint file ${file}: ${(e as Error).message}`, {
      cause: e,
    });
  }

  async read(relPath: string, expectedSha256?: string): Promise<Buffer> {
    const file = this.file(relPath);
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // ENOTDIR: a part of the path is a file, so this file does not exist either
      const reason = code === 'ENOENT' || code === 'ENOTDIR' ? 'NOT_FOUND' : 'UNAVAILABLE';
      throw new StorageError(reason, `Cannot read checkpoint file ${file}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    if (expectedSha256 && sha256(data) !== expectedSha256)
      throw new StorageError('CORRUPT', `Checksum mismatch in checkpoint file ${file}: the file is corrupt`);
    return data;
  }

  async list(relDir: string): Promise<string[]> {
    try {
      return (await readdir(this.file(relDir))).sort();
    } catch {
      return [];
    }
  }

  async exists(relPath: string): Promise<boolean> {
    try {
      await stat(this.file(relPath));
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw new StorageError('UNAVAILABLE', `Cannot look at ${this.file(relPath)}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }

  async delete(relPath: string): Promise<void> {
    await rm(this.file(relPath), { force: true });
  }

  async deleteDir(relDir: string): Promise<void> {
    await rm(this.file(relDir), { recursive: true, force: true });
  }
}
