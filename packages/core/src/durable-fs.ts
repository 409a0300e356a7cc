import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/**
 * Files whose existence means "done" (a checkpoint's `_metadata`, the job store's pointers) must
 * survive a power cut once the call returns: write to a unique temporary name, fsync the file,
 * rename it into place, then fsync the parent directory so the rename itself is on disk.
 *
 * Owner-only: checkpoint state is job data, so the files are created 0600 and the directories
 * this creates 0700 (other local users cannot read state or learn keys from it).
 */
export function writeFileDurable(file: string, data: Uint8Array): Promise<void> {
  return installDurably(file, async (tmp) => {
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
  });
}

/**
 * The durable steps around `fill`, which writes and fsyncs the temporary file it is given:
 * the directories made (0700), the rename into place and the directory's fsync; the temporary
 * file removed when anything fails.
 */
async function installDurably<T>(file: string, fill: (tmp: string) => Promise<T>): Promise<T> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  let result: T;
  try {
    result = await fill(tmp);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await fsyncDirectory(dir);
  return result;
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
export function writeFileDurableChunks(file: string, chunks: AsyncIterable<Uint8Array>): Promise<number> {
  return installDurably(file, async (tmp) => {
    let size = 0;
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
    return size;
  });
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

/** per directory: the fsync running, and the one queued behind it that later callers join */
const directorySyncs = new Map<string, { running: Promise<void>; queued?: Promise<void> }>();

/**
 * Makes renames and creations inside `dir` durable (POSIX needs the directory synced too).
 * Calls for the same directory share fsyncs (a group commit): a call joins the fsync queued
 * behind the running one, which starts after the call's rename, so a checkpoint's many files
 * in `shared/` cost a few directory fsyncs, not one each.
 */
export function fsyncDirectory(dir: string): Promise<void> {
  const s = directorySyncs.get(dir);
  if (!s) {
    const running = syncDirectoryOnce(dir).finally(() => advance(dir));
    directorySyncs.set(dir, { running });
    return running;
  }
  s.queued ??= s.running.then(
    () => syncDirectoryOnce(dir),
    () => syncDirectoryOnce(dir),
  );
  return s.queued;
}

/** the running fsync of `dir` ended: the queued one (if any) becomes the running one */
function advance(dir: string): void {
  const s = directorySyncs.get(dir)!;
  if (!s.queued) {
    directorySyncs.delete(dir);
    return;
  }
  const running = s.queued.finally(() => advance(dir));
  // failures reach the callers through `queued`; this chain only moves the queue on
  running.catch(() => {});
  directorySyncs.set(dir, { running });
}

async function syncDirectoryOnce(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * writeFileDurable for the first `size` bytes of a local file that stays as it is meanwhile (a
 * RocksDB table file, or a log appended to past `size`): the kernel copies it (copy_file_range,
 * or a clone where the file system can), so the bytes never pass through JavaScript.
 */
export function copyFileDurable(source: string, file: string, size: number): Promise<void> {
  return installDurably(file, async (tmp) => {
    await copyFile(source, tmp, constants.COPYFILE_FICLONE);
    const fh = await open(tmp, 'r+');
    try {
      // the copy takes the source's mode; checkpoint files are owner-only
      await fh.chmod(0o600);
      const copied = (await fh.stat()).size;
      if (copied < size)
        throw Object.assign(
          new Error(`${source} is shorter (${copied} bytes) than the ${size} bytes recorded`),
          { code: 'ESHORT' },
        );
      if (copied > size) await fh.truncate(size);
      await fh.sync();
    } finally {
      await fh.close();
    }
  });
}
