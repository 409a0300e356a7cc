/**
 * `BENCH_ONLY=heap-snapshot`: checkpoints of 1M keys of heap state while records are processed,
 * on the TaskManager's own parts (HeapKeyedStateBackend, the checkpoint writer, file and S3
 * storage) in this process, beside the raw write bandwidth of the same storage measured in the
 * same run. A record loop plays the task: buffers of 1,000 records (a count per key, as
 * bench/jobs/count.ts), the event loop handed back between buffers; a checkpoint is taken every
 * second at a buffer boundary, as a barrier would be. Reported per storage:
 *  - the longest gap between the starts of two buffers while a checkpoint is in progress (the
 *    record-loop stall), beside the longest gap with no checkpoint;
 *  - checkpoint duration (barrier to durable file) and size, throughput = size / duration, and
 *    the write stage alone (first batch serialized to durable file);
 *  - the same copy-on-write snapshot with each key group in one batch at the end (no segments
 *    stored while the rest is encoded), and with the serialization made blocking (the whole
 *    state serialized on the task thread at the barrier, as before snapshots were
 *    copy-on-write; same encoder).
 * BENCH_HEAP_KEYS (default 1,000,000) and BENCH_HEAP_CHECKPOINTS (default 3) scale it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import path from 'node:path';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { ValueStateDescriptor } from '@weir/api';
import { S3CheckpointStorage, createCheckpointStorage, type CheckpointStorage } from '@weir/core';
import { HeapKeyedStateBackend, writeKeyedSnapshot } from '@weir/taskmanager';
import { KeyGroupRange } from '@weir/core';
import { eventTimeStores } from '../packages/taskmanager/src/eventtime/event-time-stores.js';
import {
  InternalTimerService,
  VOID_NAMESPACE_SERIALIZER,
} from '../packages/taskmanager/src/eventtime/internal-timer-service.js';
import { DEFAULT_SLICING } from '../packages/taskmanager/src/state/heap-snapshot.js';

const KEYS = Number(process.env.BENCH_HEAP_KEYS ?? 1_000_000);

/** /proc's scheduler statistics of this (the main) thread: its first field is the time on a CPU in ns */
const schedstat = (() => {
  try {
    return openSync(`/proc/self/task/${process.pid}/schedstat`, 'r');
  } catch {
    return undefined;
  }
})();
const schedBuf = Buffer.alloc(128);

/**
 * CPU time of the task (main) thread in ms: a stall in which it ran is its own work; one in
 * which it did not is the machine's (other processes, such as the S3 test server, on the same
 * cores). The whole process's time where /proc has no such file.
 */
function threadCpuMs(): number {
  if (schedstat !== undefined) {
    const n = readSync(schedstat, schedBuf, 0, schedBuf.length, 0);
    return Number(schedBuf.toString('latin1', 0, n).split(' ')[0]) / 1e6;
  }
  const cu = process.cpuUsage();
  return (cu.user + cu.system) / 1000;
}
const CHECKPOINTS = Number(process.env.BENCH_HEAP_CHECKPOINTS ?? 3);
const MAX_P = 128;
const BUFFER = 1000;

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

interface CheckpointRun {
  syncMs: number;
  durationMs: number;
  writeMs: number;
  size: number;
  stallMs: number;
  /**
   * the longest gap counting only the time the task thread ran (its CPU time over the gap,
   * capped at the gap): the wall-clock gaps include time the OS gave other processes and threads
   */
  cpuStallMs: number;
  /** the longest garbage collection pause during the checkpoint */
  gcMs: number;
  /** every gap between buffers during the checkpoint */
  gaps: number[];
}

/** The task: processes buffers of records and records the gaps between them. */
class RecordLoop {
  private readonly backend = new HeapKeyedStateBackend();
  private readonly count = this.backend.getState(new ValueStateDescriptor<number>('count'));
  private readonly payload = this.backend.getState(new ValueStateDescriptor<string>('payload'));
  /** large-value runs: each record replaces its key's value with one of these */
  private readonly values: string[];
  private next = 0;
  private stopped = false;
  private last = 0;
  records = 0;
  /** the longest gap since the last reset, and the longest with no checkpoint in progress */
  maxGap = 0;
  idleMaxGap = 0;
  inCheckpoint = false;
  private done: Promise<void> = Promise.resolve();

  /** the gaps (ms) between buffers, with and without a checkpoint in progress */
  readonly gaps = { idle: [] as number[] };
  private current: number[] = [];
  private lastCpu = 0;
  private gcMax = 0;
  private readonly gc = new PerformanceObserver((list) => {
    if (this.inCheckpoint) for (const e of list.getEntries()) this.gcMax = Math.max(this.gcMax, e.duration);
  });
  private maxCpuGap = 0;
  idleMaxCpuGap = 0;

  constructor(
    readonly keys: number,
    readonly valueBytes: number,
  ) {
    this.values = Array.from({ length: 16 }, (_, i) => String.fromCharCode(97 + i).repeat(valueBytes));
    for (let k = 0; k < keys; k++) {
      this.backend.setCurrentKey(k);
      if (valueBytes > 0) this.payload.update(this.values[k % 16]!);
      else this.count.update(1);
    }
  }

  start(): void {
    this.stopped = false;
    this.gc.observe({ entryTypes: ['gc'] });
    this.last = performance.now();
    this.lastCpu = threadCpuMs();
    this.done = (async () => {
      while (!this.stopped) {
        const now = performance.now();
        const gap = now - this.last;
        this.last = now;
        const cpu = threadCpuMs();
        const cpuGap = Math.min(gap, cpu - this.lastCpu);
        this.lastCpu = cpu;
        if (this.inCheckpoint) this.maxCpuGap = Math.max(this.maxCpuGap, cpuGap);
        else this.idleMaxCpuGap = Math.max(this.idleMaxCpuGap, cpuGap);
        if (this.inCheckpoint) {
          this.maxGap = Math.max(this.maxGap, gap);
          this.current.push(gap);
        } else {
          this.idleMaxGap = Math.max(this.idleMaxGap, gap);
          this.gaps.idle.push(gap);
        }
        const big = this.valueBytes > 0;
        for (let i = 0; i < BUFFER; i++) {
          this.backend.setCurrentKey(this.next);
          if (big) this.payload.update(this.values[(this.next + this.records + i) % 16]!);
          else this.count.update((this.count.value() ?? 0) + 1);
          if (++this.next === this.keys) this.next = 0;
        }
        this.records += BUFFER;
        await tick();
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
    this.gc.disconnect();
  }

  /** One checkpoint at a buffer boundary (this runs between two buffers), written to `storage`. */
  async checkpoint(storage: CheckpointStorage, mode: Mode): Promise<CheckpointRun> {
    this.backend.snapshotSlicing = SLICING[mode];
    this.maxGap = 0;
    this.maxCpuGap = 0;
    this.gcMax = 0;
    this.current = [];
    this.inCheckpoint = true;
    const t0 = performance.now();
    const m = this.backend.snapshot(MAX_P);
    const syncMs = performance.now() - t0;
    const kb = m.batches!();
    let firstBatch = 0;
    const timed = (async function* () {
      for await (const b of kb.batches) {
        firstBatch ||= performance.now();
        yield b;
      }
    })();
    const out = await writeKeyedSnapshot(storage, `bench/chk/${randomUUID()}`, { ...kb, batches: timed });
    const end = performance.now();
    // the gap the loop sees after the last slice is part of the checkpoint too
    await tick();
    await tick();
    this.inCheckpoint = false;
    if (!out) throw new Error('the heap snapshot was empty');
    await storage.delete(out.handle.path).catch(() => {});
    return {
      syncMs,
      durationMs: end - t0,
      writeMs: end - firstBatch,
      size: out.handle.size,
      stallMs: this.maxGap,
      cpuStallMs: this.maxCpuGap,
      gcMs: this.gcMax,
      gaps: this.current,
    };
  }
}

/**
 * One fsynced write of `data` into a new file in `dir` (what FileCheckpointStorage does, minus
 * the checksum and rename): its duration. `keep`: the file stays (a removal's discards would
 * otherwise land on whatever writes next).
 */
export async function rawFileWrite(dir: string, data: Buffer, keep = false): Promise<number> {
  const file = path.join(dir, `raw-${randomUUID()}`);
  const t0 = performance.now();
  const fh = await open(file, 'w', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  const ms = performance.now() - t0;
  if (!keep) rmSync(file, { force: true });
  return ms;
}

/** One PutObject of `data` (no multipart) to the S3 test server. */
export async function rawS3Put(client: S3Client, data: Buffer): Promise<number> {
  const t0 = performance.now();
  await client.send(new PutObjectCommand({ Bucket: 'weir', Key: `bench/raw-${randomUUID()}`, Body: data }));
  return performance.now() - t0;
}

interface StorageResult {
  name: string;
  rawMs: number[];
  cow: CheckpointRun[];
  whole: CheckpointRun[];
  blocking: CheckpointRun[];
}

type Mode = 'cow' | 'whole' | 'blocking';
/** the TaskManager's slicing (DEFAULT_SLICING), without segments, and none */
const SLICING = {
  cow: DEFAULT_SLICING,
  whole: { ...DEFAULT_SLICING, minSegment: Infinity },
  blocking: { ms: Infinity, checkEvery: 2 ** 30 },
};
const MODE_NAMES: Record<Mode, string> = {
  cow: 'copy-on-write',
  whole: 'copy-on-write, no segments',
  blocking: 'blocking (at the barrier)',
};

async function onStorage(
  loop: RecordLoop,
  name: string,
  storage: CheckpointStorage,
  raw: (data: Buffer) => Promise<number>,
): Promise<StorageResult> {
  const result: StorageResult = { name, rawMs: [], cow: [], whole: [], blocking: [] };
  loop.start();
  try {
    for (const mode of ['cow', 'whole', 'blocking'] as const) {
      for (let i = 0; i < CHECKPOINTS; i++) {
        await sleep(1000);
        const r = await loop.checkpoint(storage, mode);
        result[mode].push(r);
        process.stderr.write(
          `\r\x1b[2K  heap snapshot to ${name}, ${MODE_NAMES[mode]}: ${i + 1}/${CHECKPOINTS}`,
        );
      }
    }
  } finally {
    await loop.stop();
  }
  process.stderr.write('\n');
  // the raw bandwidth with the same bytes count, the record loop stopped (storage alone)
  const data = randomBytes(median(result.cow.map((r) => r.size)));
  for (let i = 0; i < CHECKPOINTS; i++) result.rawMs.push(await raw(data));
  return result;
}

/** The S3 client settings of the test server's environment (WEIR_S3_*). */
export function s3Config(env: Record<string, string>): S3ClientConfig {
  return {
    endpoint: env.WEIR_S3_ENDPOINT,
    region: env.WEIR_S3_REGION ?? 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
  };
}

/** share of gaps over 20 ms, and the 99th percentile */
function gapStats(gaps: number[]): string {
  if (gaps.length === 0) return '-';
  const sorted = [...gaps].sort((a, b) => a - b);
  const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
  const over = gaps.filter((g) => g > 20).length;
  return `p99 ${p99.toFixed(1)} ms, ${over} of ${gaps.length} over 20 ms`;
}

/**
 * Heap timers at the barrier: the copy of the timer lists the synchronous part now takes
 * (`snapshotLater`), beside serializing them all there (`snapshot`, as before), one
 * event-time timer per key.
 */
function timerSnapshotSync(keys: number): { copy: number[]; serialize: number[] } {
  const key = { current: undefined as unknown };
  const range = new KeyGroupRange(0, MAX_P - 1);
  const service = new InternalTimerService<undefined>({
    operatorName: 'bench',
    maxParallelism: MAX_P,
    keyGroupRange: range,
    namespaceSerializer: VOID_NAMESPACE_SERIALIZER as never,
    keyContext: { getCurrentKey: () => key.current, setCurrentKey: (k: unknown) => (key.current = k) },
    processingTimeService: {
      getCurrentProcessingTime: () => 0,
      registerTimer: () => ({ cancel: () => {} }),
    },
    target: { onEventTime: () => {}, onProcessingTime: () => {} },
    timerQueues: eventTimeStores(undefined, {
      operatorName: 'bench',
      maxParallelism: MAX_P,
      keyGroupRange: range,
    }).timerQueues,
  });
  for (let k = 0; k < keys; k++) {
    key.current = k;
    service.registerEventTimeTimer(undefined, 1_000_000 + k);
  }
  const copy: number[] = [];
  const serialize: number[] = [];
  for (let i = 0; i < CHECKPOINTS; i++) {
    let t0 = performance.now();
    service.snapshotLater();
    copy.push(performance.now() - t0);
    t0 = performance.now();
    service.snapshot();
    serialize.push(performance.now() - t0);
  }
  service.close();
  return { copy, serialize };
}

export async function heapSnapshotBench(s3Env: Record<string, string>): Promise<void> {
  await heapSnapshotConfig(s3Env, KEYS, 0);
  const timerKeys = Number(process.env.BENCH_HEAP_TIMER_KEYS ?? KEYS);
  if (timerKeys > 0) {
    const { copy, serialize } = timerSnapshotSync(timerKeys);
    const runs = (xs: number[]): string => xs.map((m) => m.toFixed(1)).join('/');
    console.log(
      `heap event-time timers, ${timerKeys.toLocaleString('en-US')} (one per key), synchronous part: copy of the timer lists ${median(copy).toFixed(1)} ms (${runs(copy)}); serializing them at the barrier instead (before) ${median(serialize).toFixed(0)} ms (${runs(serialize)}); medians, measured under load`,
    );
  }
  // larger values: the same path with ~1 KB per entry, where bytes rather than entries dominate
  const bigKeys = Number(process.env.BENCH_HEAP_BIG_KEYS ?? 100_000);
  if (bigKeys > 0) await heapSnapshotConfig(s3Env, bigKeys, 1000);
}

async function heapSnapshotConfig(
  s3Env: Record<string, string>,
  keys: number,
  valueBytes: number,
): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-heap-snapshot-'));
  const s3 = new S3Client(s3Config(s3Env));
  const loop = new RecordLoop(keys, valueBytes);
  const results: StorageResult[] = [];
  try {
    results.push(
      await onStorage(loop, 'file://', createCheckpointStorage(`file://${dir}`), (d) => rawFileWrite(dir, d)),
    );
    results.push(
      await onStorage(
        loop,
        's3:// (s3rver)',
        new S3CheckpointStorage('s3://weir/bench-heap', s3Config(s3Env)),
        (d) => rawS3Put(s3, d),
      ),
    );
  } finally {
    s3.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
  const f = (n: number, d = 1): string => n.toFixed(d);
  console.log('');
  console.log(
    `heap snapshots of ${keys.toLocaleString('en-US')} keys (value state: ${valueBytes > 0 ? `${valueBytes}-character strings` : 'a count'}, ${MAX_P} key groups) while a record loop runs; medians of ${CHECKPOINTS} checkpoints each (measured under load)`,
  );
  console.log('');
  console.log(
    '| storage | snapshot | longest record-loop stall (wall) | longest stall (the task thread running) | sync part | checkpoint duration | size | checkpoint MB/s | write stage MB/s | raw write MB/s (same size, same run) | checkpoint / raw | write stage / raw |',
  );
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const raw = mbps(median(r.cow.map((c) => c.size)), median(r.rawMs));
    for (const [mode, runs] of [
      [MODE_NAMES.cow, r.cow],
      [MODE_NAMES.whole, r.whole],
      [MODE_NAMES.blocking, r.blocking],
    ] as const) {
      const size = median(runs.map((c) => c.size));
      const dur = median(runs.map((c) => c.durationMs));
      const write = median(runs.map((c) => c.writeMs));
      const tp = mbps(size, dur);
      const wtp = mbps(size, write);
      console.log(
        `| ${r.name} | ${mode} | ${f(Math.max(...runs.map((c) => c.stallMs)))} ms | ${f(Math.max(...runs.map((c) => c.cpuStallMs)))} ms | ${f(median(runs.map((c) => c.syncMs)), 2)} ms | ${f(dur, 0)} ms | ${f(size / 1e6)} MB | ${f(tp)} | ${f(wtp)} | ${f(raw)} | ${f((tp / raw) * 100, 0)}% | ${f((wtp / raw) * 100, 0)}% |`,
      );
    }
  }
  console.log('');
  const modes = ['cow', 'whole', 'blocking'] as const;
  console.log(
    `gaps between buffers: ${results.map((r) => `${r.name} ${modes.map((m) => `${MODE_NAMES[m]} ${gapStats(r[m].flatMap((c) => c.gaps))}`).join(', ')}`).join('; ')}; with no checkpoint in progress ${gapStats(loop.gaps.idle)}, longest ${f(loop.idleMaxGap)} ms (the task thread running: ${f(loop.idleMaxCpuGap)} ms); records processed: ${loop.records.toLocaleString('en-US')}`,
  );
  console.log(
    `all runs: ${results
      .map(
        (r) =>
          `${r.name} ${modes.map((m) => `${MODE_NAMES[m]}: stall ${r[m].map((c) => `${f(c.stallMs)}(${f(c.cpuStallMs)}, gc ${f(c.gcMs)})`).join('/')} ms, duration ${r[m].map((c) => f(c.durationMs, 0)).join('/')} ms`).join('; ')}; raw ${r.rawMs.map((m) => f(m, 0)).join('/')} ms`,
      )
      .join('; ')}`,
  );
}
