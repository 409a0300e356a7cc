/**
 * Restore of a RocksDB full snapshot into a fresh RocksDB (BENCH_ONLY=rocksdb-restore, or
 * `node --import tsx bench/rocksdb-restore.ts`): the part of a task's recovery that loads its
 * state. RESTORE_KEYS keys (default 2,000,000) of a [count, sum] value each, snapshotted as a
 * task snapshots them (streamed to file storage), then restored from the same file three ways,
 * alternating, medians of RESTORE_RUNS (default 3): batches decoded into entries and written
 * (restoreEntries), batches written from their bytes (restoreEntriesBytes, what tasks do), and
 * beside them the native batched puts of the same rows alone (the floor).
 */
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ValueStateDescriptor } from '@weir/api';
import { FileCheckpointStorage, decodeRecords, fileStorageUri } from '@weir/core';
import { RocksDBKeyedStateBackend } from '../packages/taskmanager/src/state/rocksdb-keyed-state-backend.js';
import {
  ITERATOR_OPTIONS,
  NO_OPTIONS,
  openRocksDB,
  writeBatch,
  type RocksDB,
} from '../packages/taskmanager/src/state/rocksdb/binding.js';
import type { IncrementalKeyedHandle } from '../packages/taskmanager/src/state/incremental-snapshot.js';

const MAX_P = 128;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f = (n: number): string => Math.round(n).toLocaleString('en-US');

async function backend(dir: string): Promise<RocksDBKeyedStateBackend> {
  const b = new RocksDBKeyedStateBackend({
    directory: dir,
    maxParallelism: MAX_P,
    blockCacheSize: 64 << 20,
    writeBufferSize: 64 << 20,
  });
  await b.open();
  return b;
}

/** every full batch of the snapshot's files, as a task reads them */
function batchesOf(
  root: string,
  handle: IncrementalKeyedHandle,
): { kinds: Record<string, string>; batches: Buffer[] } {
  const files = handle.files.map((file) => readFileSync(path.join(root, file.path)));
  const batches: Buffer[] = [];
  for (const chain of Object.values(handle.groups))
    for (const [file, offset, length] of chain) batches.push(files[file]!.subarray(offset, offset + length));
  return { kinds: handle.kinds, batches };
}

export async function rocksdbRestoreBench(): Promise<void> {
  const keys = Number(process.env.RESTORE_KEYS ?? 2_000_000);
  const runs = Number(process.env.RESTORE_RUNS ?? 3);
  const root = path.join(os.tmpdir(), `weir-bench-restore-${process.pid}`);
  rmSync(root, { recursive: true, force: true });
  try {
    const storage = new FileCheckpointStorage(fileStorageUri(path.join(root, 'checkpoints')));
    const source = await backend(path.join(root, 'source'));
    const state = new ValueStateDescriptor<[number, number]>('count-sum');
    for (let k = 0; k < keys; k++) {
      source.setCurrentKey(k);
      source.getState(state).update([k & 0xff, k * 3]);
    }
    const handle = (await source.snapshotStreamed(
      1,
      MAX_P,
    )(async (name, data) => {
      const h = await storage.write(`chk-1/${name}`, Buffer.concat(data));
      return { ...h, path: name };
    }))!;
    await source.dispose();
    const { kinds, batches } = batchesOf(path.join(root, 'checkpoints', 'chk-1'), handle);
    const bytes = batches.reduce((n, b) => n + b.length, 0);
    // the rows as the restore writes them, for the native floor
    const rows: Array<[Buffer, Buffer]> = [];
    {
      const probe = await backend(path.join(root, 'probe'));
      for (const b of batches) probe.restoreEntriesBytes(kinds, b);
      probe.flush();
      // the backend's own database (private): read back what the restore wrote
      const db = (probe as unknown as { rdb: RocksDB }).rdb;
      const it = db.iterator(ITERATOR_OPTIONS);
      for (;;) {
        const { rows: r, finished } = it._nextvSync(16_384, NO_OPTIONS);
        for (let j = 0; j < r.length; j += 2) rows.push([r[j]!, r[j + 1]!]);
        if (finished) break;
      }
      await it.close();
      await probe.dispose();
      if (rows.length !== keys) throw new Error(`the probe restore wrote ${rows.length} rows, not ${keys}`);
    }
    const times = { decoded: [] as number[], bytes: [] as number[], native: [] as number[] };
    for (let r = 0; r < runs; r++) {
      for (const how of ['decoded', 'bytes', 'native'] as const) {
        const dir = path.join(root, `into-${how}-${r}`);
        let ms: number;
        if (how === 'native') {
          const db = await openRocksDB(dir, { blockCacheSize: 64 << 20, writeBufferSize: 64 << 20 });
          const t0 = performance.now();
          for (let i = 0; i < rows.length; i += 50_000)
            writeBatch(db, (batch) => {
              for (const [k, v] of rows.slice(i, i + 50_000)) batch._put(k, v, NO_OPTIONS);
            });
          ms = performance.now() - t0;
          await db.close();
        } else {
          const into = await backend(dir);
          const t0 = performance.now();
          for (const b of batches)
            if (how === 'bytes') into.restoreEntriesBytes(kinds, b);
            else into.restoreEntries(kinds, decodeRecords(b));
          into.flush();
          ms = performance.now() - t0;
          into.setCurrentKey(keys - 1);
          const v = into.getState(state).value();
          if (!v || v[1] !== (keys - 1) * 3)
            throw new Error(`restore (${how}) lost key ${keys - 1}: ${JSON.stringify(v)}`);
          await into.dispose();
        }
        times[how].push(ms);
        rmSync(dir, { recursive: true, force: true });
      }
    }
    console.log('');
    console.log(
      `| restore of ${f(keys)} keys of RocksDB state (${(bytes / 1e6).toFixed(1)} MB of snapshot batches), one thread | ms (median of ${runs}) | rows/s |`,
    );
    console.log('|---|---:|---:|');
    const row = (what: string, ms: number[]): void =>
      console.log(`| ${what} | ${f(median(ms))} | ${f(keys / (median(ms) / 1000))} |`);
    row('batches decoded into entries, then written', times.decoded);
    row('batches written from their bytes (restoreEntriesBytes)', times.bytes);
    row('baseline: the same rows as native batched puts alone', times.native);
    console.log(
      `all runs (ms): decoded ${times.decoded.map(f).join(', ')}; bytes ${times.bytes.map(f).join(', ')}; native ${times.native.map(f).join(', ')}`,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await rocksdbRestoreBench();
