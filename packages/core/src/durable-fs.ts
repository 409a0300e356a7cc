import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
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

/** chunks of a streamed file are gathered into writes of about this size (fewer system calls) */
const WRITE_BLOCK = 1 << 20;
/** bytes of a streamed file queued for writing before the producer waits for the disk */
const MAX_QUEUED = 8 << 20;

/**
 * writeFileDurable for data produced piecewise (a snapshot serialized while it is written):
 * the chunks are written as they come, gathered into vectored writes of about 1 MiB, never
 * held whole. Writes queue up (up to MAX_QUEUED bytes) while the next chunks are produced, so
 * the producer and the disk work at the same time: a chunk must not change once it has been
 * yielded. Returns the number of bytes written.
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
    let inFlight: Promise<unknown> | undefined;
    try {
      let gathered: Uint8Array[] = [];
      let bytes = 0;
      let queued = 0;
      const flush = async (): Promise<void> => {
        if (bytes === 0) return;
        const bufs = gathered;
        const n = bytes;
        gathered = [];
        bytes = 0;
        // writes queue up behind each other without holding the producer back, up to a bound
        if (queued > MAX_QUEUED && inFlight) await inFlight;
        queued += n;
        const prev = inFlight;
        inFlight = (async () => {
          if (prev) await prev;
          await writeAll(fh, bufs, n);
          queued -= n;
        })();
        // a failure surfaces where it is awaited; this only keeps it from being unhandled meanwhile
        inFlight.catch(() => {});
      };
      for await (const c of chunks) {
        if (c.byteLength === 0) continue;
        size += c.byteLength;
        gathered.push(c);
        bytes += c.byteLength;
        if (bytes >= WRITE_BLOCK) await flush();
      }
      await flush();
      if (inFlight) await inFlight;
      inFlight = undefined;
      await fh.sync();
    } finally {
      // a producer failure while a write is in flight: let it end before closing
      if (inFlight) await inFlight.catch(() => {});
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

/** A vectored write of `bufs` (`total` bytes), continued after a short write (which a full disk can cause). */
async function writeAll(fh: FileHandle, bufs: Uint8Array[], total: number): Promise<void> {
  let written = (await fh.writev(bufs)).bytesWritten;
  while (written < total) {
    const rest: Uint8Array[] = [];
    let skip = written;
    for (const b of bufs) {
      if (skip >= b.byteLength) {
        skip -= b.byteLength;
        continue;
      }
      rest.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
    const n = (await fh.writev(rest)).bytesWritten;
    if (n === 0)
      throw Object.assign(new Error(`a write of ${total - written} bytes made no progress`), {
        syscall: 'write',
      });
    bufs = rest;
    total -= written;
    written = n;
  }
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
