/**
 * The keyed count of bench/jobs/keyed-count.ts without the cluster: one subtask's record loop
 * driving a keyed state backend directly, the way the task does it (prefetch an input buffer,
 * then per record setCurrentKey, value(), update()), with a snapshot every second whose
 * asynchronous part runs between the buffers. Heap and RocksDB in the same process, so the
 * ratio is the state backend's alone; run it with `--cpu-prof` to profile the record path.
 *
 *   node --import tsx bench/keyed-state-loop.ts
 *   LOOP_KEYS=500000 LOOP_RECORDS=3000000 LOOP_BACKENDS=heap,rocksdb LOOP_INCREMENTAL=1
 *   LOOP_READ_CACHE=<bytes> (default: managed memory of a one-slot TaskManager, see memory-budget.ts)
 *   LOOP_CHECKPOINT_MS=<interval> (default 1000), LOOP_WRITE_BUFFER=<bytes of memtables>
 *   LOOP_RESTORED=1: RocksDB reads as after a restore (every cache miss read from RocksDB)
 */
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createCheckpointStorage, writeLocalFile } from '../packages/core/src/index.js';
import { ValueStateDescriptor, type ValueState } from '../packages/api/src/index.js';
import { HeapKeyedStateBackend } from '../packages/taskmanager/src/state/heap-keyed-state-backend.js';
import type { KeyedStateBackend } from '../packages/taskmanager/src/state/keyed-state-backend.js';
import { RocksDBKeyedStateBackend } from '../packages/taskmanager/src/state/rocksdb-keyed-state-backend.js';
import {
  databaseMemory,
  managedMemoryPerSlot,
} from '../packages/taskmanager/src/state/rocksdb/memory-budget.js';

const MAX_P = 128;
/** records per input buffer handed to prefetch (a 32 KiB network buffer of small records) */
const BUFFER = 2048;

export interface LoopResult {
  backend: string;
  recordsPerSecond: number;
  /** records per second of this process's CPU time (every thread, RocksDB's own included) */
  recordsPerCpuSecond: number;
  checkpoints: number;
}

/** One subtask's keyed count over `keys` uniform keys; records/s over the whole run. */
export async function keyedLoop(
  kind: 'heap' | 'rocksdb' | 'rocksdb-incremental' | 'rocksdb-native',
  keys: number,
  records: number,
  memory = databaseMemory({ perSlot: managedMemoryPerSlot(undefined, 0.4, 1) }),
  checkpointMs = 1000,
): Promise<LoopResult> {
  const dir = path.join(os.tmpdir(), `weir-keyed-loop-${process.pid}-${kind}`);
  rmSync(dir, { recursive: true, force: true });
  const backend: KeyedStateBackend =
    kind === 'heap'
      ? new HeapKeyedStateBackend()
      : new RocksDBKeyedStateBackend({
          directory: dir,
          maxParallelism: MAX_P,
          ...memory,
          incremental: kind === 'rocksdb-incremental',
          ...(kind === 'rocksdb-native' ? { nativeCheckpoints: [0, MAX_P - 1] as [number, number] } : {}),
        });
  // native checkpoints copy the database's files into a directory, as to file:// storage
  const storage = createCheckpointStorage(pathToFileURL(`${dir}-checkpoints`).href);
  await backend.open();
  // as after a restore, or once the cache has evicted: a miss may be in RocksDB, so reads are
  // prefetched (see ReadCache.complete)
  if (process.env.LOOP_RESTORED && backend instanceof RocksDBKeyedStateBackend)
    backend.restoreEntries({}, []);
  const acc: ValueState<[number, number]> = backend.getState(
    new ValueStateDescriptor<[number, number]>('count-sum'),
  );
  const keyOf = (r: unknown): unknown => (r as [number, number])[0];
  const buffer: Array<[number, number]> = Array.from({ length: BUFFER }, () => [0, 0]);
  let out = 0;
  let checkpoints = 0;
  let running: Promise<unknown> | undefined;
  let checkpointId = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  let nextCheckpoint = start + checkpointMs;
  for (let i = 0; i < records;) {
    const n = Math.min(BUFFER, records - i);
    for (let j = 0; j < n; j++) {
      const idx = i + j;
      const r = buffer[j]!;
      r[0] = (Math.imul(idx, 0x9e3779b1) >>> 0) % keys;
      r[1] = idx & 0xff;
    }
    const batch = n === BUFFER ? buffer : buffer.slice(0, n);
    backend.prefetch?.(batch, keyOf);
    for (let j = 0; j < n; j++) {
      const r = batch[j]!;
      backend.setCurrentKey(r[0]);
      const a = acc.value() ?? [0, 0];
      a[0] += 1;
      a[1] += r[1];
      acc.update(a);
      if ((a[0] & 3) === 0) out++;
    }
    i += n;
    const now = performance.now();
    if (now >= nextCheckpoint && running === undefined) {
      nextCheckpoint = now + checkpointMs;
      const id = ++checkpointId;
      const triggered = performance.now();
      const done = (h?: unknown): void => {
        if (process.env.LOOP_VERBOSE) {
          const size = h as { checkpointedSize?: number; fullSize?: number } | undefined;
          console.log(
            `checkpoint ${id}: ${Math.round(performance.now() - triggered)} ms` +
              (size?.fullSize ? `, uploaded ${size.checkpointedSize} of ${size.fullSize} bytes` : ''),
          );
        }
        checkpoints++;
        backend.notifyCheckpointComplete?.(id);
        running = undefined;
      };
      if (kind === 'rocksdb-incremental')
        running = backend.snapshotIncremental!(
          id,
          MAX_P,
        )(async (_name, parts) => ({
          path: 'x',
          size: parts.reduce((n, p) => n + p.byteLength, 0),
          sha256: '',
        })).then(done);
      else if (kind === 'rocksdb-native')
        running = backend.snapshotNative!(id, MAX_P)!((name, file, size) =>
          writeLocalFile(storage, `shared/${id}-${name}`, file, size),
        ).then(done);
      else running = backend.snapshot(MAX_P)().then(done);
    }
    // the task loop yields between buffers; the snapshot's reads complete there
    if (running !== undefined) await new Promise((r) => setImmediate(r));
  }
  await running;
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await backend.dispose();
  rmSync(dir, { recursive: true, force: true });
  rmSync(`${dir}-checkpoints`, { recursive: true, force: true });
  if (out < 0) console.log(out);
  return {
    backend: kind,
    recordsPerSecond: records / seconds,
    recordsPerCpuSecond: records / ((cpu.user + cpu.system) / 1e6),
    checkpoints,
  };
}

/**
 * BENCH_ONLY=keyed-state-loop: the loop on the heap (the baseline), on RocksDB with a full
 * snapshot every second, and on RocksDB without checkpoints (the record path alone), one after
 * the other in this process; LOOP_KEYS, LOOP_RECORDS scale it.
 */
export async function keyedLoopBench(): Promise<void> {
  const keys = Number(process.env.LOOP_KEYS ?? 500_000);
  const records = Number(process.env.LOOP_RECORDS ?? 2_000_000);
  const f = (n: number): string => Math.round(n).toLocaleString('en-US');
  const rows: Array<[string, LoopResult]> = [
    ['heap, snapshot every second', await keyedLoop('heap', keys, records)],
    ['RocksDB, full snapshot every second', await keyedLoop('rocksdb', keys, records)],
    [
      'RocksDB, no checkpoints (the record path alone)',
      await keyedLoop('rocksdb', keys, records, undefined, 1e12),
    ],
  ];
  console.log('');
  console.log(
    `| one subtask's keyed count in one process, ${f(keys)} uniform keys, ${f(records)} records | records/s | records per CPU second |`,
  );
  console.log('|---|---:|---:|');
  for (const [what, r] of rows)
    console.log(`| ${what} | ${f(r.recordsPerSecond)} | ${f(r.recordsPerCpuSecond)} |`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const keys = Number(process.env.LOOP_KEYS ?? 500_000);
  const records = Number(process.env.LOOP_RECORDS ?? 3_000_000);
  const env = (name: string): number | undefined =>
    process.env[name] === undefined ? undefined : Number(process.env[name]);
  const memory = databaseMemory({
    perSlot: managedMemoryPerSlot(undefined, 0.4, 1),
    readCacheSize: env('LOOP_READ_CACHE'),
    writeBufferSize: env('LOOP_WRITE_BUFFER'),
  });
  for (const kind of (process.env.LOOP_BACKENDS ?? 'heap,rocksdb').split(',')) {
    const r = await keyedLoop(
      kind as 'heap',
      keys,
      records,
      memory,
      Number(process.env.LOOP_CHECKPOINT_MS ?? 1000),
    );
    const f = (n: number): string => Math.round(n).toLocaleString('en-US');
    console.log(
      `${r.backend}: ${f(r.recordsPerSecond)} records/s, ${f(r.recordsPerCpuSecond)} per CPU second (${keys.toLocaleString('en-US')} keys, ${records.toLocaleString('en-US')} records, ${r.checkpoints} checkpoints)`,
    );
  }
}
