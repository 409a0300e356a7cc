import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * Files whose existence means "done" (a checkpoint's `_metadata`, the job store's pointers) must
 * survive a power cut once the call returns: write to a unique temporary name, fsync the file,
 * rename it into place, then fsync the parent directory so the rename itself is on disk.
 *
 * Owner-only: checkpoint state is job data, so the files are created 0600 and the directories
 * this creates 0700 (other local users cannot read state or learn keys from it).
 */
export async function writeFileDurable(file: string, data: Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await fsyncDirectory(dir);
}

/** writes of a streamed file are gathered into blocks of this size (fewer system calls) */
const WRITE_BLOCK = 1 << 20;

/**
 * writeFileDurable for data produced piecewise (a snapshot serialized while it is written):
 * the chunks are written as they come, gathered into blocks of about 1 MiB, never held whole.
 * Returns the number of bytes written.
 */
export async function writeFileDurableChunks(
  file: string,
  chunks: AsyncIterable<Uint8Array>,
): Promise<number> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  let size = 0;
  try {
    const fh = await open(tmp, 'w', 0o600);
    try {
      const block = Buffer.allocUnsafe(WRITE_BLOCK);
      let pos = 0;
      const flush = async (): Promise<void> => {
        if (pos === 0) return;
        await fh.write(block, 0, pos);
        pos = 0;
      };
      for await (const c of chunks) {
        size += c.byteLength;
        if (c.byteLength >= WRITE_BLOCK / 4) {
          await flush();
          await fh.write(c);
          continue;
        }
        if (pos + c.byteLength > block.length) await flush();
        block.set(c, pos);
        pos += c.byteLength;
      }
      await flush();
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await fsyncDirectory(dir);
  return size;
}

/** Makes renames and creations inside `dir` durable (POSIX needs the directory synced too). */
export async function fsyncDirectory(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
