import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RocksDBFileHandle, RocksDBNativeKeyedHandle } from '@weir/core';
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
 * checkpoint did not have and references the others; the MANIFEST, CURRENT, OPTIONS and the
 * write-ahead logs (up to their recorded size) are uploaded by every checkpoint. A restore of
 * the same key groups downloads the files and opens the database: no row is written again.
 */

/** The table files of an uploaded checkpoint by name: what a later checkpoint may reference. */
export type UploadedTables = ReadonlyMap<string, RocksDBFileHandle>;

export function tablesOf(h: RocksDBNativeKeyedHandle): UploadedTables {
  return new Map(h.files.filter((f) => f.name.endsWith('.sst')).map((f) => [f.name, f]));
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
 * table files that `previous` holds under the same name and size are referenced, every other
 * file is written with `write`. Returns the handle.
 */
export async function uploadNativeCheckpoint(o: {
  staged: string;
  meta: LocalCheckpointMeta;
  checkpointId: number;
  keyGroups: [number, number];
  previous: UploadedTables;
  write: LocalFileWriter;
  isClosed: () => boolean;
}): Promise<RocksDBNativeKeyedHandle> {
  const files: RocksDBFileHandle[] = new Array(o.meta.files.length);
  let uploaded = 0;
  let full = 0;
  let next = 0;
  let failed: { error: unknown } | undefined;
  const upload = async (): Promise<void> => {
    while (next < o.meta.files.length && !failed) {
      const i = next++;
      const [name, size] = o.meta.files[i]!;
      if (o.isClosed()) throw new Error('the RocksDB state backend was disposed during the checkpoint');
      const table = name.endsWith('.sst');
      const before = table ? o.previous.get(name) : undefined;
      let f: RocksDBFileHandle;
      if (before && before.size === size) f = before;
      else {
        const h = await o.write(name, path.join(o.staged, name), size);
        f = { ...h, name, checkpointId: o.checkpointId };
        uploaded += h.size;
      }
      full += f.size;
      files[i] = f;
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
  return {
    format: 'rocksdb-native',
    states: o.meta.states,
    keyGroups: o.keyGroups,
    sequence: o.meta.sequence,
    files,
    checkpointedSize: uploaded,
    fullSize: full,
  };
}

/** bytes of files a restore downloads at the same time, whole in memory (one larger file alone) */
const DOWNLOAD_BYTES_IN_FLIGHT = 128 << 20;

/**
 * Downloads the files of a native checkpoint into `dbDir` (created; must not exist), `read`
 * at most `parallel` at a time and at most `budget` bytes at a time (each file verified
 * against its checksum by `read`). On a failure the downloads under way finish, the directory
 * is removed and the first error thrown. Returns the bytes.
 */
export async function downloadNativeCheckpoint(
  h: RocksDBNativeKeyedHandle,
  dbDir: string,
  read: (f: RocksDBFileHandle) => Promise<Buffer>,
  parallel = 4,
  budget = DOWNLOAD_BYTES_IN_FLIGHT,
): Promise<number> {
  mkdirSync(dbDir, { recursive: true });
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
        const f = h.files[next++]!;
        running++;
        inFlight += f.size;
        read(f)
          .then((data) => {
            if (data.byteLength !== f.size)
              throw new Error(`${f.path} has ${data.byteLength} bytes, its checkpoint recorded ${f.size}`);
            writeFileSync(path.join(dbDir, f.name), data, { flag: 'wx' });
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
