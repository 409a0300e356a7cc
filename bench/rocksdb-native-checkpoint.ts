/**
 * `BENCH_ONLY=rocksdb-native`: the write throughput of a checkpoint of RocksDB state, native
 * (the database's files uploaded, state.backend.rocksdb.native-checkpoints) against canonical
 * (every row read out and written as snapshot batches, the default), on the TaskManager's own
 * parts in this process (RocksDBKeyedStateBackend, the checkpoint writer, file and S3 storage),
 * beside the raw write bandwidth of the same storage measured in the same run: one fsynced
 * write, and one PutObject to the S3 test server, of the native checkpoint's size. Each
 * checkpoint uploads everything (none completes, so none references an earlier one's files).
 * BENCH_NATIVE_KEYS (default 2,000,000) and BENCH_NATIVE_CHECKPOINTS (default 3) scale it.
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
  type CheckpointStorage,
} from '@weir/core';
import { RocksDBKeyedStateBackend } from '../packages/taskmanager/src/state/rocksdb-keyed-state-backend.js';
import type {
  SharedFileStreamWriter,
  SharedFileWriter,
} from '../packages/taskmanager/src/state/keyed-state-backend.js';
import { mbps, median, rawFileWrite, rawS3Put, s3Config } from './heap-snapshot.js';

const KEYS = Number(process.env.BENCH_NATIVE_KEYS ?? 2_000_000);
const CHECKPOINTS = Number(process.env.BENCH_NATIVE_CHECKPOINTS ?? 3);
const MAX_P = 128;

interface Run {
  ms: number;
  bytes: number;
}

/** A shared-file writer into `storage`, as the task's checkpoint coordinator writes them. */
function writer(storage: CheckpointStorage, prefix: string): SharedFileStreamWriter & SharedFileWriter {
  return async (name: string, parts: readonly Uint8Array[] | AsyncIterable<Uint8Array>) => {
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

async function checkpoints(
  b: RocksDBKeyedStateBackend,
  storage: CheckpointStorage,
  kind: 'native' | 'canonical',
  first: number,
): Promise<Run[]> {
  const runs: Run[] = [];
  for (let i = 0; i < CHECKPOINTS; i++) {
    const id = first + i;
    const t0 = performance.now();
    if (kind === 'native') {
      const h = await b.snapshotNative(id, MAX_P)!(writer(storage, `native/${id}`));
      runs.push({ ms: performance.now() - t0, bytes: h.checkpointedSize });
    } else {
      const h = await b.snapshotStreamed(id, MAX_P)(writer(storage, `canonical/${id}`));
      runs.push({ ms: performance.now() - t0, bytes: h?.checkpointedSize ?? 0 });
    }
    process.stderr.write(`\r\x1b[2K  ${kind} checkpoint ${i + 1}/${CHECKPOINTS}`);
  }
  process.stderr.write('\n');
  return runs;
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
      ['file://', createCheckpointStorage(pathToFileURL(fileDir).href), (d) => rawFileWrite(fileDir, d)],
      [
        's3:// (s3rver)',
        new S3CheckpointStorage('s3://weir/bench-native', s3Config(s3Env)),
        (d) => rawS3Put(new S3Client(s3Config(s3Env)), d),
      ],
    ];
    console.log('');
    console.log(
      `| checkpoint of ${KEYS.toLocaleString('en-US')} keys of RocksDB state, one subtask, medians of ${CHECKPOINTS} | checkpoint | size | MB/s | raw write of that size (baseline) | checkpoint / raw |`,
    );
    console.log('|---|---:|---:|---:|---:|---:|');
    let id = 1;
    for (const [name, storage, raw] of storages) {
      const native = await checkpoints(b, storage, 'native', id);
      id += CHECKPOINTS;
      const canonical = await checkpoints(b, storage, 'canonical', id);
      id += CHECKPOINTS;
      const size = median(native.map((r) => r.bytes));
      const data = randomBytes(size);
      const rawMs: number[] = [];
      for (let i = 0; i < CHECKPOINTS; i++) rawMs.push(await raw(data));
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
