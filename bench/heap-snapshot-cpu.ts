/**
 * `BENCH_ONLY=heap-snapshot-cpu`: where the time of a heap checkpoint goes, counted in CPU time
 * (which load on a shared machine does not inflate, unlike the wall clock): heap snapshots
 * written to file and S3 storage with no record loop running, each reporting the CPU time of
 * the task thread (Linux: /proc/self/task/<pid>/schedstat) and of the whole process (its other
 * threads: file writes, the hashing thread, GC helpers), beside the timeline barrier -> first
 * batch -> encoding done -> durable. BENCH_HEAP_CPU_CHECKPOINTS (default 5) per row; the first
 * checkpoint of each row warms up and is left out.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { ValueStateDescriptor } from '@weir/api';
import { S3CheckpointStorage, createCheckpointStorage, type CheckpointStorage } from '@weir/core';
import { HeapKeyedStateBackend, writeKeyedSnapshot } from '@weir/taskmanager';

const CHECKPOINTS = Number(process.env.BENCH_HEAP_CPU_CHECKPOINTS ?? 5);
const MAX_P = 128;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** CPU time (ms) of this thread, or NaN where /proc does not tell it */
function threadCpuMs(): number {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return NaN;
  }
}

function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

interface Run {
  firstBatch: number;
  encoded: number;
  durable: number;
  thread: number;
  process: number;
  size: number;
}

async function checkpoint(backend: HeapKeyedStateBackend, storage: CheckpointStorage): Promise<Run> {
  const c0 = threadCpuMs();
  const p0 = processCpuMs();
  const t0 = performance.now();
  const kb = backend.snapshot(MAX_P).batches!();
  let first = 0;
  let last = 0;
  const timed = (async function* () {
    for await (const b of kb.batches) {
      first ||= performance.now();
      yield b;
    }
    last = performance.now();
  })();
  const out = await writeKeyedSnapshot(storage, `bench-cpu/${randomUUID()}`, { ...kb, batches: timed });
  const end = performance.now();
  const run = {
    firstBatch: first - t0,
    encoded: last - t0,
    durable: end - t0,
    thread: threadCpuMs() - c0,
    process: processCpuMs() - p0,
    size: out!.handle.size,
  };
  await storage.delete(out!.handle.path);
  return run;
}

export async function heapSnapshotCpuBench(s3Env: Record<string, string>): Promise<void> {
  const s3Config: S3ClientConfig = {
    endpoint: s3Env.WEIR_S3_ENDPOINT,
    region: s3Env.WEIR_S3_REGION ?? 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s3Env.AWS_ACCESS_KEY_ID!, secretAccessKey: s3Env.AWS_SECRET_ACCESS_KEY! },
  };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-heap-cpu-'));
  const storages: Array<[string, CheckpointStorage]> = [
    ['file://', createCheckpointStorage(`file://${dir}`)],
    ['s3:// (s3rver)', new S3CheckpointStorage('s3://weir/bench-heap-cpu', s3Config)],
  ];
  console.log('');
  console.log(
    `heap snapshots with no record loop, CPU time per checkpoint (medians of ${CHECKPOINTS - 1} after one warm-up; measured under load: the wall-clock columns include time the OS gave other processes)`,
  );
  console.log('');
  console.log(
    '| state | storage | task thread CPU | process CPU | first batch | encoding done | durable (checkpoint duration) |',
  );
  console.log('|---|---|---:|---:|---:|---:|---:|');
  try {
    for (const [keys, valueBytes] of [
      [Number(process.env.BENCH_HEAP_KEYS ?? 1_000_000), 0],
      [Number(process.env.BENCH_HEAP_BIG_KEYS ?? 100_000), 1000],
    ] as const) {
      if (keys === 0) continue;
      const backend = new HeapKeyedStateBackend();
      const count = backend.getState(new ValueStateDescriptor<number>('count'));
      const payload = backend.getState(new ValueStateDescriptor<string>('payload'));
      const values = Array.from({ length: 16 }, (_, i) => String.fromCharCode(97 + i).repeat(valueBytes));
      for (let k = 0; k < keys; k++) {
        backend.setCurrentKey(k);
        if (valueBytes > 0) payload.update(values[k % 16]!);
        else count.update(k);
      }
      for (const [name, storage] of storages) {
        const runs: Run[] = [];
        for (let i = 0; i < CHECKPOINTS; i++) runs.push(await checkpoint(backend, storage));
        runs.shift();
        const m = (f: (r: Run) => number): string => `${median(runs.map(f)).toFixed(1)} ms`;
        console.log(
          `| ${keys.toLocaleString('en-US')} keys, ${valueBytes > 0 ? `${valueBytes}-character strings` : 'a number each'} (${(runs[0]!.size / 1e6).toFixed(1)} MB) | ${name} | ${m((r) => r.thread)} | ${m((r) => r.process)} | ${m((r) => r.firstBatch)} | ${m((r) => r.encoded)} | ${m((r) => r.durable)} |`,
        );
        console.log(
          `  runs (task thread / process CPU / durable): ${runs.map((r) => `${r.thread.toFixed(0)}/${r.process.toFixed(0)}/${r.durable.toFixed(0)}`).join(', ')} ms`,
        );
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
