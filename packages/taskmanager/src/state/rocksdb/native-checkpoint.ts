import {
  closeSync,
  createReadStream,
  createWriteStream,
  mkdirSync,
  openSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { RocksDBFileHandle, RocksDBNativeKeyedHandle } from '@weir/core/runtime';
import type { LocalFileWriter } from '../keyed-state-backend.js';
import { NO_OPTIONS, forEachInRange, openAtSequence, writeBatch, type RocksDB } from './binding.js';
import { groupBound, stateIdOf } from './key-layout.js';
import type { LocalCheckpointMeta } from './local-checkpoint.js';

/*
 * Native RocksDB checkpoints (Flink's incremental checkpoints of its RocksDB backend): a
 * checkpoint uploads the files of the database as they were at its synchronous part, taken as
 * a local checkpoint is (hard links and the recorded sizes of the appended files, see
 * local-checkpoint.ts), instead of reading every row out and writing it again. Table files never
 * change once written, so a checkpoint uploads only the table files the last completed
 * checkpoint did not have and references the others. Write-ahead logs only grow: a log the last
 * completed checkpoint uploaded is referenced in the parts that checkpoint listed and only its
 * tail (up to the recorded size) is uploaded, as one more part of the same name; the restore
 * joins a log's parts in order. The MANIFEST, CURRENT and OPTIONS are uploaded by every
 * checkpoint. A restore of the same key groups downloads the files and opens the database: no
 * row is written again.
 */

/**
 * The table files and write-ahead logs of an uploaded checkpoint by name, each as its parts in
 * order (a table file has one): what a later checkpoint may reference.
 */
export type UploadedFiles = ReadonlyMap<string, readonly RocksDBFileHandle[]>;

/**
 * At most this many parts per log: a log that lives long under few writes would otherwise
 * gather a part per checkpoint (each one more read at a restore); past it the log is uploaded
 * whole again, as one part.
 */
export const MAX_LOG_PARTS = 16;

const isTable = (name: string): boolean => name.endsWith('.sst');
const isLog = (name: string): boolean => name.endsWith('.log');

/**
 * The table files of the database's current version, from RocksDB's `rocksdb.sstables`
 * property (a line ` <number>:<size>[...` per file).
 */
export function liveTableFiles(sstables: string): Set<string> {
  const out = new Set<string>();
  for (const m of sstables.matchAll(/^\s*(\d+):\d+\[/gm)) out.add(`${m[1]!.padStart(6, '0')}.sst`);
  return out;
}

/**
 * What a later checkpoint may reference of `h`: its logs, and its table files that `live` (the
 * table files of a version of the database, see liveTableFiles) names, all of them without it.
 * A checkpoint links every table file in the directory, so it can hold a flush's output still
 * being written, at the size it had then; RocksDB may later finish it, or (in a restored
 * database) write another file under that number. Only a file some version named is complete
 * and can stand for its name again.
 */
export function uploadedFilesOf(h: RocksDBNativeKeyedHandle, live?: ReadonlySet<string>): UploadedFiles {
  const out = new Map<string, RocksDBFileHandle[]>();
  for (const f of h.files)
    if ((isTable(f.name) && (live === undefined || live.has(f.name))) || isLog(f.name)) {
      const parts = out.get(f.name);
      if (parts) parts.push(f);
      else out.set(f.name, [f]);
    }
  return out;
}

/**
 * The table files of `h` that database directory `dir` holds under the same name and size, and
 * that the database's current version names (`live`, see liveTableFiles): after
 * a restore from a local copy of the same checkpoint, the files the next checkpoint may reference
 * instead of uploading them again. A name cannot stand for other bytes there: the local copy is
 * taken after the native checkpoint's files in the same synchronous part, so every file the
 * restored database creates is numbered past those `h` lists. Logs are left out (the restored
 * database writes new ones).
 */
export function tablesStillIn(
  h: RocksDBNativeKeyedHandle,
  dir: string,
  live: ReadonlySet<string>,
): UploadedFiles {
  const out = new Map<string, RocksDBFileHandle[]>();
  for (const f of h.files)
    if (
      isTable(f.name) &&
      live.has(f.name) &&
      statSync(path.join(dir, f.name), { throwIfNoEntry: false })?.size === f.size
    )
      out.set(f.name, [f]);
  return out;
}

/** Copies bytes from..to of `file` into `into`, in the streams' chunks (a log's tail is never whole in memory). */
async function copyRange(file: string, from: number, to: number, into: string): Promise<void> {
  await pipeline(
    createReadStream(file, { start: from, end: to - 1 }),
    createWriteStream(into, { flags: 'wx' }),
  );
}

/** Opens a downloaded native checkpoint; throws unless it shows the checkpoint's sequence number. */
export async function openNative(
  dir: string,
  opts: { blockCacheSize: number; writeBufferSize: number },
  h: RocksDBNativeKeyedHandle,
): Promise<RocksDB> {
  const opened = await openAtSequence(dir, opts, h.sequence);
  if ('db' in opened) return opened.db;
  throw new Error(
    `the native RocksDB checkpoint opened at sequence number ${opened.shown}, not ${h.sequence}: its files are incomplete`,
  );
}

/** files uploaded at the same time: their writes, fsyncs and checksums overlap */
const PARALLEL_UPLOADS = 4;

/**
 * Uploads the staged copy in `staged` (files linked at the synchronous part, sizes in `meta`):
 * table files that `previous` holds under the same name and size are referenced, a log that it
 * holds no longer than now is referenced and only its tail written, every other file is
 * written with `write`. Returns the handle.
 */
export async function uploadNativeCheckpoint(o: {
  staged: string;
  meta: LocalCheckpointMeta;
  checkpointId: number;
  keyGroups: [number, number];
  previous: UploadedFiles;
  write: LocalFileWriter;
  isClosed: () => boolean;
}): Promise<RocksDBNativeKeyedHandle> {
  // per staged file its parts, joined in order at the end
  const parts: RocksDBFileHandle[][] = new Array(o.meta.files.length);
  let uploaded = 0;
  let next = 0;
  let failed: { error: unknown } | undefined;
  const put = async (name: string, file: string, size: number): Promise<RocksDBFileHandle> => {
    const h = await o.write(name, file, size);
    uploaded += h.size;
    return { ...h, name, checkpointId: o.checkpointId };
  };
  const upload = async (): Promise<void> => {
    while (next < o.meta.files.length && !failed) {
      const i = next++;
      const [name, size] = o.meta.files[i]!;
      if (o.isClosed()) throw new Error('the RocksDB state backend was disposed during the checkpoint');
      const file = path.join(o.staged, name);
      const before = isTable(name) || isLog(name) ? o.previous.get(name) : undefined;
      const had = before?.reduce((n, f) => n + f.size, 0) ?? 0;
      if (before && had === size) parts[i] = [...before];
      else if (before && isLog(name) && had > 0 && had < size && before.length < MAX_LOG_PARTS) {
        // the log grew by appends since: the parts uploaded before, then its tail
        const tail = `${file}.tail`;
        await copyRange(file, had, size, tail);
        parts[i] = [...before, await put(name, tail, size - had)];
      } else parts[i] = [await put(name, file, size)];
    }
  };
  // on a failure the uploads under way finish first: the caller then removes every file
  // written, none still being written
  await Promise.all(
    Array.from({ length: PARALLEL_UPLOADS }, () =>
      upload().catch((error: unknown) => {
        failed ??= { error };
      }),
    ),
  );
  if (failed) throw failed.error;
  const files = parts.flat();
  return {
    format: 'rocksdb-native',
    states: o.meta.states,
    keyGroups: o.keyGroups,
    sequence: o.meta.sequence,
    files,
    checkpointedSize: uploaded,
    fullSize: files.reduce((n, f) => n + f.size, 0),
  };
}

/** bytes of files a restore downloads at the same time, whole in memory (one larger file alone) */
const DOWNLOAD_BYTES_IN_FLIGHT = 128 << 20;

/**
 * Downloads the files of a native checkpoint into `dbDir` (created; must not exist), `read`
 * at most `parallel` at a time and at most `budget` bytes at a time (each file verified
 * against its checksum by `read`); the parts of a log go to their places in it, whichever
 * arrives first. On a failure the downloads under way finish, the directory is removed and the
 * first error thrown. Returns the bytes.
 */
export async function downloadNativeCheckpoint(
  h: RocksDBNativeKeyedHandle,
  dbDir: string,
  read: (f: RocksDBFileHandle) => Promise<Buffer>,
  parallel = 4,
  budget = DOWNLOAD_BYTES_IN_FLIGHT,
): Promise<number> {
  mkdirSync(dbDir, { recursive: true });
  // each entry's place in its file: the sizes of the parts of the same name before it
  const offsets = new Array<number>(h.files.length);
  const lengths = new Map<string, number>();
  h.files.forEach((f, i) => {
    offsets[i] = lengths.get(f.name) ?? 0;
    lengths.set(f.name, offsets[i]! + f.size);
  });
  const created = new Set<string>();
  let next = 0;
  let bytes = 0;
  let running = 0;
  let inFlight = 0;
  let failed: { error: unknown } | undefined;
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (
        !failed &&
        next < h.files.length &&
        running < parallel &&
        (running === 0 || inFlight + h.files[next]!.size <= budget)
      ) {
        const i = next++;
        const f = h.files[i]!;
        running++;
        inFlight += f.size;
        read(f)
          .then((data) => {
            if (data.byteLength !== f.size)
              throw new Error(`${f.path} has ${data.byteLength} bytes, its checkpoint recorded ${f.size}`);
            // the first part to arrive creates the file (a name twice in one directory fails)
            const fd = openSync(path.join(dbDir, f.name), created.has(f.name) ? 'r+' : 'wx');
            created.add(f.name);
            try {
              writeSync(fd, data, 0, data.byteLength, offsets[i]!);
            } finally {
              closeSync(fd);
            }
            bytes += data.byteLength;
          })
          .catch((error: unknown) => {
            failed ??= { error };
          })
          .finally(() => {
            running--;
            inFlight -= f.size;
            pump();
          });
      }
      if (running === 0 && (failed || next >= h.files.length)) resolve();
    };
    pump();
  });
  if (failed) {
    rmSync(dbDir, { recursive: true, force: true });
    throw failed.error;
  }
  return bytes;
}

/**
 * Copies the rows of key groups first..last out of `src` (a downloaded native checkpoint of
 * other key groups: a rescale) into `dst`, each row's state id mapped through `ids` (the
 * source's id - 1 -> the id in `dst`).
 */
export function copyRows(
  src: RocksDB,
  dst: RocksDB,
  first: number,
  last: number,
  ids: readonly number[],
): void {
  let rows: Buffer[] = [];
  const put = (): void => {
    writeBatch(dst, (b) => {
      for (let i = 0; i < rows.length; i += 2) b._put(rows[i]!, rows[i + 1]!, NO_OPTIONS);
    });
    rows = [];
  };
  forEachInRange(src, { gte: groupBound(first), lt: groupBound(last + 1) }, (key, value) => {
    const from = stateIdOf(key);
    const id = ids[from - 1];
    if (id === undefined)
      throw new Error(`a row of state id ${from}, which the native RocksDB checkpoint does not list`);
    // each row is a copy of its own (see binding.ts), so it is changed in place
    key.writeUInt16BE(id, 2);
    rows.push(key, value);
    if (rows.length >= 20_000) put();
  });
  if (rows.length > 0) put();
}
