import { readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeFileDurable } from './durable-fs.js';
import { S3CheckpointStorage } from './s3-checkpoint-storage.js';
import { sha256, type CheckpointStorage, type StateHandle } from './storage-handle.js';

export { sha256, type CheckpointStorage, type StateHandle } from './storage-handle.js';

function safeRelative(rel: string): string {
  const norm = path.posix.normalize(rel);
  if (norm.startsWith('..') || path.posix.isAbsolute(norm))
    throw new Error(`Checkpoint path escapes the storage root: ${rel}`);
  return norm;
}

export class FileCheckpointStorage implements CheckpointStorage {
  readonly dir: string;
  constructor(readonly root: string) {
    this.dir = fileURLToPath(root);
  }

  async write(relPath: string, data: Uint8Array): Promise<StateHandle> {
    const file = path.join(this.dir, safeRelative(relPath));
    try {
      // write, fsync, rename, fsync the directory: a reader never sees half a file, and a
      // completed checkpoint's files survive a power cut
      await writeFileDurable(file, data);
    } catch (e) {
      throw new Error(`Cannot write checkpoint file ${file}: ${(e as Error).message}`);
    }
    return { path: relPath, size: data.byteLength, sha256: sha256(data) };
  }

  async read(relPath: string, expectedSha256?: string): Promise<Buffer> {
    const file = path.join(this.dir, safeRelative(relPath));
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch (e) {
      throw new Error(`Cannot read checkpoint file ${file}: ${(e as Error).message}`);
    }
    if (expectedSha256 && sha256(data) !== expectedSha256)
      throw new Error(`Checksum mismatch in checkpoint file ${file}: the file is corrupt`);
    return data;
  }

  async list(relDir: string): Promise<string[]> {
    try {
      return (await readdir(path.join(this.dir, safeRelative(relDir)))).sort();
    } catch {
      return [];
    }
  }

  async delete(relPath: string): Promise<void> {
    await rm(path.join(this.dir, safeRelative(relPath)), { force: true });
  }

  async deleteDir(relDir: string): Promise<void> {
    await rm(path.join(this.dir, safeRelative(relDir)), { recursive: true, force: true });
  }
}

export function createCheckpointStorage(uri: string): CheckpointStorage {
  if (uri.startsWith('file:///')) return new FileCheckpointStorage(uri);
  if (uri.startsWith('s3://')) return new S3CheckpointStorage(uri);
  throw new Error(`Checkpoint storage must be file:///path or s3://bucket/prefix, got '${uri}'`);
}

/**
 * A handle path relative to a checkpoint's directory may climb out of it (`../shared/<file>`, the
 * files of incremental checkpoints): the storage root to read it from, and the path under that.
 */
export function resolveStoragePath(rootUri: string, relPath: string): { root: string; path: string } {
  let root = rootUri.replace(/\/+$/, '');
  let rel = path.posix.normalize(relPath);
  while (rel.startsWith('../')) {
    const cut = root.lastIndexOf('/');
    if (cut < 0 || /^[a-z0-9]+:\/\/?$/i.test(root.slice(0, cut + 1)))
      throw new Error(`Checkpoint path ${relPath} escapes ${rootUri}`);
    root = root.slice(0, cut);
    rel = rel.slice(3);
  }
  return { root, path: rel };
}

export function fileStorageUri(dir: string): string {
  return pathToFileURL(path.resolve(dir)).href;
}
