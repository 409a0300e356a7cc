/**
 * Large RocksDB state in bounded memory (BENCH_ONLY=rocksdb-100m): BENCH_KEYS keys (default 5M;
 * the bar is 100M) of about 100 bytes each on one TaskManager with one slot, started with
 * --max-old-space-size=512 and a managed-memory budget (BENCH_MANAGED, default 256mb) or a whole
 * process budget (BENCH_PROCESS: taskmanager.memory.process.size, which sizes the slot's heap and
 * managed memory and which the resident set is compared with), full
 * checkpoints (BENCH_ROCKS_MODE=incremental for incremental ones, native for native ones) every BENCH_ROCKS_INTERVAL_MS.
 * The source writes BENCH_ROCKS_RATE records/s (default 200,000; 0: as fast as it goes), cycling
 * over the keys. Samples the TaskManager's resident set (/proc/<pid>/status) while every key is
 * written and BENCH_ROCKS_CHECKPOINTS checkpoints complete after that. Baselines from the same
 * run: the same process's resident set before the job, and a raw fsynced write of 256 MiB to
 * the checkpoint directory's disk. Linux only (reads /proc).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { ClusterClient } from '../packages/client/src/index.js';
import { LocalCluster } from '@weir/cli';
import { submitDetached } from './submit.js';

const KEYS = Number(process.env.BENCH_KEYS ?? 5_000_000);
const MANAGED = process.env.BENCH_MANAGED ?? '256mb';
/** when set, the TaskManager's taskmanager.memory.process.size; managed memory then comes from it */
const PROCESS = process.env.BENCH_PROCESS;
const HEAP_MB = 512;
const INTERVAL_MS = Number(process.env.BENCH_ROCKS_INTERVAL_MS ?? 10_000);
const CHECKPOINTS = Number(process.env.BENCH_ROCKS_CHECKPOINTS ?? 2);
/** full, incremental, or native (state.backend.rocksdb.native-checkpoints: the databases' files) */
const MODE_ASKED = process.env.BENCH_ROCKS_MODE ?? 'full';
const NATIVE = MODE_ASKED === 'native';
const MODE = MODE_ASKED === 'incremental' ? 'incremental' : 'full';
const RATE = Number(process.env.BENCH_ROCKS_RATE ?? 200_000);
const TIMEOUT_MS = Number(process.env.BENCH_ROCKS_TIMEOUT_S ?? 3600) * 1000;

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** Resident set and its high-water mark of a process, in bytes. */
function rss(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number =>
    Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

function parseMb(size: string, name = 'BENCH_MANAGED'): number {
  const m = /^(\d+(?:\.\d+)?)\s*(k|m|g)?b?$/i.exec(size.trim());
  if (!m) throw new Error(`${name} must be a size like 256mb, got '${size}'`);
  const unit = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 }[(m[2] ?? '').toLowerCase() as 'k' | 'm' | 'g'] ?? 1;
  return Number(m[1]) * unit;
}

/** Raw write bandwidth of the disk under dir: 256 MiB in 8 MiB writes, fsynced, in bytes/s. */
function rawWriteRate(dir: string): number {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'raw-write-baseline');
  const chunk = Buffer.alloc(8 << 20, 7);
  const t0 = performance.now();
  const fd = openSync(file, 'w');
  try {
    for (let i = 0; i < 32; i++) writeSync(fd, chunk);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const s = (performance.now() - t0) / 1000;
  rmSync(file, { force: true });
  return (32 * chunk.length) / s;
}

export async function rocksdbLarge(here: string): Promise<void> {
  const budget = parseMb(MANAGED);
  const processBudget = PROCESS ? parseMb(PROCESS, 'BENCH_PROCESS') : undefined;
  if (PROCESS) process.env.WEIR_TASKMANAGER_MEMORY_PROCESS_SIZE = PROCESS;
  else process.env.WEIR_TASKMANAGER_MEMORY_MANAGED_SIZE = MANAGED;
  process.env.WEIR_STATE_BACKEND_ROCKSDB_NATIVE_CHECKPOINTS = String(NATIVE);
  const cluster = new LocalCluster({
    taskManagers: 1,
    slots: 1,
    port: 0,
    dir: path.join(here, '.tmp-rocksdb-large'),
    jobStore: false,
    taskManagerNodeArgs: [`--max-old-space-size=${HEAP_MB}`],
  });
  try {
    await cluster.start();
  } finally {
    delete process.env.WEIR_TASKMANAGER_MEMORY_MANAGED_SIZE;
    delete process.env.WEIR_TASKMANAGER_MEMORY_PROCESS_SIZE;
    delete process.env.WEIR_STATE_BACKEND_ROCKSDB_NATIVE_CHECKPOINTS;
  }
  const client = await ClusterClient.connect(cluster.jobManagerAddress);
  let jobId: string | undefined;
  try {
    const pid = cluster.taskManagerPid('tm-1');
    if (!pid) throw new Error('no TaskManager process');
    await new Promise((r) => setTimeout(r, 1000));
    const idle = rss(pid).rss;
    const t0 = performance.now();
    jobId = await submitDetached(path.join(here, 'jobs', 'rocksdb-large.ts'), {
      jobmanager: cluster.jobManagerAddress,
      args: [String(KEYS), String(INTERVAL_MS), MODE, String(RATE)],
    });
    let maxRss = 0;
    // RSS when a quarter, half, three quarters and all of the keys were written
    const atLoad: Array<[number, number]> = [];
    let loadedAt: number | undefined;
    let loadMs = 0;
    let measured: Array<{ id: number; durationMs: number; stateSizeBytes: number }> = [];
    for (;;) {
      await new Promise((r) => setTimeout(r, 250));
      maxRss = Math.max(maxRss, rss(pid).rss);
      if (performance.now() - t0 > TIMEOUT_MS)
        throw new Error(`rocksdb-100m: not done after ${TIMEOUT_MS} ms`);
      const [s, c] = await Promise.all([client.status(jobId), client.checkpoints(jobId)]);
      if (s.status !== 'JOB_RUNNING' && s.status !== 'JOB_CREATED')
        throw new Error(`bench job ${s.status}: ${s.failureCause}`);
      const quarter = Math.min(4, Math.floor((Number(s.recordsIn) / KEYS) * 4));
      while (atLoad.length < quarter) atLoad.push([(atLoad.length + 1) / 4, rss(pid).rss]);
      if (loadedAt === undefined && Number(s.recordsIn) >= KEYS) {
        loadedAt = Date.now();
        loadMs = performance.now() - t0;
      }
      const failed = (c.history ?? []).filter((x) => x.status === 'FAILED');
      if (failed.length > 0)
        throw new Error(`checkpoint ${failed[0]!.id} failed: ${failed[0]!.failureReason}`);
      // checkpoints triggered once every key exists hold the whole state
      measured = (c.history ?? [])
        .filter(
          (x) => x.status === 'COMPLETED' && loadedAt !== undefined && Number(x.triggerTime) >= loadedAt,
        )
        .map((x) => ({
          id: x.id,
          durationMs: Number(x.durationMs),
          stateSizeBytes: Number(x.stateSizeBytes),
        }));
      process.stderr.write(
        `\r\x1b[2K  rocksdb-100m: ${fmt(Number(s.recordsIn))}/${fmt(KEYS)} records, ${measured.length}/${CHECKPOINTS} full-state checkpoints, RSS ${mb(maxRss)}`,
      );
      if (measured.length >= CHECKPOINTS) break;
    }
    process.stderr.write('\n');
    const hwm = rss(pid).hwm;
    const raw = rawWriteRate(path.join(here, '.tmp-rocksdb-large', 'checkpoints'));
    console.log('');
    console.log(
      `| ${fmt(KEYS)} keys x ~100 B, RocksDB (${NATIVE ? 'native' : MODE} checkpoints every ${INTERVAL_MS} ms), 1 TaskManager x 1 slot, --max-old-space-size=${HEAP_MB}, ${PROCESS ? `taskmanager.memory.process.size ${PROCESS}` : `managed memory ${MANAGED}`} | value |`,
    );
    console.log('|---|---:|');
    console.log(`| TaskManager RSS before the job (baseline) | ${mb(idle)} |`);
    console.log(
      `| TaskManager RSS with 1/4, 1/2, 3/4, all keys written | ${atLoad.map(([, r]) => mb(r)).join(', ')} |`,
    );
    console.log(
      `| TaskManager RSS, max sampled every 250 ms / high-water mark | ${mb(maxRss)} / ${mb(hwm)} |`,
    );
    if (processBudget !== undefined)
      console.log(
        `| RSS high-water mark vs taskmanager.memory.process.size | ${mb(hwm)} vs ${mb(processBudget)} (${hwm <= processBudget ? 'under' : 'OVER'}) |`,
      );
    else
      console.log(
        `| RSS growth over the baseline vs the managed-memory budget | ${mb(hwm - idle)} vs ${mb(budget)} |`,
      );
    console.log(
      `| time to write every key once | ${(loadMs / 1000).toFixed(1)} s (${fmt(KEYS / (loadMs / 1000))} records/s) |`,
    );
    for (const m of measured)
      console.log(
        `| checkpoint ${m.id}: duration, size, rate | ${fmt(m.durationMs)} ms, ${mb(m.stateSizeBytes)}, ${mb(m.stateSizeBytes / (m.durationMs / 1000))}/s |`,
      );
    console.log(`| raw fsynced write of 256 MiB, same disk (baseline) | ${mb(raw)}/s |`);
    console.log('');
  } finally {
    if (jobId) await client.cancel(jobId).catch(() => {});
    client.close();
    await cluster.stop();
  }
}
