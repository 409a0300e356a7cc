/**
 * `BENCH_ONLY=rocksdb-native`: the write throughput of a checkpoint of RocksDB state, native
 * (the database's files uploaded, state.backend.rocksdb.native-checkpoints) against canonical
 * (every row read out and written as snapshot batches, the default), on the TaskManager's own
 * parts in this process (RocksDBKeyedStateBackend, the checkpoint writer, file and S3 storage),
 * beside the raw write bandwidth of the same storage measured in the same run: one fsynced
 * write, and one PutObject to the S3 test server, of the native checkpoint's size. Each
 * checkpoint uploads everything (none completes, so none references an earlier one's files).
 * Native checkpoints and raw writes alternate after one native checkpoint not counted.
 * BENCH_NATIVE_KEYS (default 2,000,000) and BENCH_NATIVE_CHECKPOINTS (default 5) scale it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { S3Client } from '@aws-sdk/client-s3';
import { ValueStateDescriptor } from '@weir/api';
import {
  S3CheckpointStorage,
  createCheckpointStorage,
  writeChunks,
  writeLocalFile,
  type CheckpointStorage,
} from '@weir/core';
import { RocksDBKeyedStateBackend } from '../packages/taskmanager/src/state/rocksdb-keyed-state-backend.js';
import type { SharedFileWriter } from '../packages/taskmanager/src/state/keyed-state-backend.js';
import { mbps, median, rawFileWrite, rawS3Put, s3Config } from './heap-snapshot.js';

const KEYS = Number(process.env.BENCH_NATIVE_KEYS ?? 2_000_000);
const CHECKPOINTS = Number(process.env.BENCH_NATIVE_CHECKPOINTS ?? 5);
const CANONICAL_CHECKPOINTS = 3;
const MAX_P = 128;

interface Run {
  ms: number;
  bytes: number;
}

/** A shared-file writer into `storage`, as the task's checkpoint coordinator writes them. */
function writer(storage: CheckpointStorage, prefix: string): SharedFileWriter {
  return async (name: string, parts: readonly Uint8Array[]) => {
    const rel = `${prefix}-${name}`;
    const h = await writeChunks(
      storage,
      rel,
      (async function* () {
        yield* parts;
      })(),
    );
    return { ...h, path: rel };
  };
}

/** One checkpoint of `kind` with id `id`: its duration and the bytes it wrote. */
async function checkpoint(
  b: RocksDBKeyedStateBackend,
  storage: CheckpointStorage,
  kind: 'native' | 'canonical',
  id: number,
): Promise<Run> {
  const t0 = performance.now();
  if (kind === 'native') {
    const h = await b.snapshotNative(id, MAX_P)!((name, file, size) =>
      writeLocalFile(storage, `native/${id}-${name}`, file, size),
    );
    return { ms: performance.now() - t0, bytes: h.checkpointedSize };
  }
  const h = await b.snapshotStreamed(id, MAX_P)(writer(storage, `canonical/${id}`));
  return { ms: performance.now() - t0, bytes: h?.checkpointedSize ?? 0 };
}

export async function rocksdbNativeBench(s3Env: Record<string, string>): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-bench-native-'));
  const b = new RocksDBKeyedStateBackend({
    directory: path.join(dir, 'db'),
    maxParallelism: MAX_P,
    blockCacheSize: 64 << 20,
    writeBufferSize: 64 << 20,
    nativeCheckpoints: [0, MAX_P - 1],
  });
  await b.open();
  try {
    const count = b.getState(new ValueStateDescriptor<[number, number]>('count'));
    for (let k = 0; k < KEYS; k++) {
      b.setCurrentKey(k);
      count.update([1, k]);
      if (k % 500_000 === 0) process.stderr.write(`\r\x1b[2K  writing keys: ${k}/${KEYS}`);
    }
    process.stderr.write('\n');
    const fileDir = mkdtempSync(path.join(os.tmpdir(), 'weir-bench-native-chk-'));
    const storages: Array<[string, CheckpointStorage, (data: Buffer) => Promise<number>]> = [
      [
        'file://',
        createCheckpointStorage(pathToFileURL(fileDir).href),
        (d) => rawFileWrite(fileDir, d, true),
      ],
      [
        's3:// (s3rver)',
        new S3CheckpointStorage('s3://weir/bench-native', s3Config(s3Env)),
        (d) => rawS3Put(new S3Client(s3Config(s3Env)), d),
      ],
    ];
    console.log('');
    console.log(
      `| checkpoint of ${KEYS.toLocaleString('en-US')} keys of RocksDB state, one subtask, medians of ${CHECKPOINTS} (canonical: ${CANONICAL_CHECKPOINTS}) | checkpoint | size | MB/s | raw write of that size (baseline) | checkpoint / raw |`,
    );
    console.log('|---|---:|---:|---:|---:|---:|');
    let id = 1;
    for (const [name, storage, raw] of storages) {
      // a first native checkpoint not counted: it starts the hashing thread and meets the
      // flushes and compactions the load left running
      await checkpoint(b, storage, 'native', id++);
      const size = (await checkpoint(b, storage, 'native', id++)).bytes;
      const data = randomBytes(size);
      // native checkpoints and raw writes alternate, so both meet the disk in the same state
      const native: Run[] = [];
      const rawMs: number[] = [];
      for (let i = 0; i < CHECKPOINTS; i++) {
        native.push(await checkpoint(b, storage, 'native', id++));
        rawMs.push(await raw(data));
        process.stderr.write(`\r\x1b[2K  ${name}: native checkpoint and raw write ${i + 1}/${CHECKPOINTS}`);
      }
      const canonical: Run[] = [];
      for (let i = 0; i < CANONICAL_CHECKPOINTS; i++) {
        canonical.push(await checkpoint(b, storage, 'canonical', id++));
        process.stderr.write(`\r\x1b[2K  ${name}: canonical checkpoint ${i + 1}/${CANONICAL_CHECKPOINTS}`);
      }
      process.stderr.write('\n');
      const rawRate = mbps(size, median(rawMs));
      for (const [kind, runs] of [
        ['native (the database files)', native],
        ['canonical (rows read out, the default)', canonical],
      ] as const) {
        const ms = median(runs.map((r) => r.ms));
        const bytes = median(runs.map((r) => r.bytes));
        const rate = mbps(bytes, ms);
        console.log(
          `| ${name}, ${kind} | ${ms.toFixed(0)} ms | ${(bytes / 1e6).toFixed(1)} MB | ${rate.toFixed(0)} | ${rawRate.toFixed(0)} MB/s | ${((rate / rawRate) * 100).toFixed(0)}% |`,
        );
      }
      console.log(
        `|   runs (ms): native ${native.map((r) => r.ms.toFixed(0)).join(', ')}; canonical ${canonical.map((r) => r.ms.toFixed(0)).join(', ')}; raw ${rawMs.map((m) => m.toFixed(0)).join(', ')} | | | | | |`,
      );
    }
    console.log('');
    rmSync(fileDir, { recursive: true, force: true });
  } finally {
    await b.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
