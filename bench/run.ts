/**
 * `npm run bench`: word count on a local cluster (JobManager, 2 TaskManagers, parallelism 2)
 * beside a single-process baseline that counts the same words in one plain loop, plus a
 * chained-only pipeline. Prints a table; medians of BENCH_RUNS runs (default 5).
 * BENCH_TM_NODE_ARGS: Node.js or V8 flags for the main cluster's TaskManagers (an experiment's
 * knob, e.g. an inlining budget; empty by default).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterClient, runJob } from '../packages/client/src/index.js';
import { LocalCluster } from '@weir/cli';
import { line, WORDS_PER_LINE } from './words.js';
import { TestS3Server } from '../test/helpers/s3.js';
import { submitDetached } from './submit.js';
import { taskManagerCpuSeconds } from './taskmanager-cpu.js';
import { measureRecovery, recoveryJob, type RecoveryTimes } from './recovery.js';
import { incrementalCheckpoints } from './incremental.js';
import { nexmarkBench } from './nexmark/cluster.js';
import { metricsOverhead } from './metrics-overhead.js';
import { keyedStateThroughput, printKeyedState } from './keyed-state.js';
import { keyedLoopBench } from './keyed-state-loop.js';
import { rocksdbRestoreBench } from './rocksdb-restore.js';
import { writeOrderBench } from './rocksdb-write-order.js';
import { connectorsBench } from './connectors.js';
import { backpressureBench } from './backpressure.js';
import { heapSnapshotBench } from './heap-snapshot.js';
import { rocksdbNativeBench } from './rocksdb-native-checkpoint.js';
import { heapSnapshotCpuBench } from './heap-snapshot-cpu.js';
import { rocksdbLarge } from './rocksdb-large.js';
import { unalignedBench } from './unaligned.js';
import { recoveryLarge } from './recovery-large.js';
import { jobStartBench } from './job-start.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const WORDS = Number(process.env.BENCH_WORDS ?? 20_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
/** which parts run (comma-separated), default all: shuffle, checkpointed, chained, rocksdb, large-state, large-state-rocksdb, incremental, recovery, nexmark, metrics, eventtime, keyed-state, connectors, backpressure, heap-snapshot, heap-snapshot-cpu, rocksdb-100m, unaligned, recovery-large, keyed-state-loop, rocksdb-write-order, rocksdb-restore, rocksdb-native */
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : undefined;
const want = (part: string): boolean => !ONLY || ONLY.has(part);
const LINES = Math.ceil(WORDS / WORDS_PER_LINE);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

function baseline(): number {
  const t0 = performance.now();
  const counts = new Map<string, number>();
  for (let i = 0; i < LINES; i++) {
    for (const w of line(i).split(' ')) counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  const s = (performance.now() - t0) / 1000;
  if (counts.size === 0) throw new Error('baseline counted nothing');
  return (LINES * WORDS_PER_LINE) / s;
}

async function clusterRun(
  cluster: LocalCluster,
  job: string,
  expectSinkRecords?: number,
  extraArgs: string[] = [],
): Promise<number> {
  let jobId = '';
  const log = console.log;
  console.log = (...a: unknown[]) => {
    const m = /submitted with id (\w+)/.exec(String(a[0]));
    if (m) jobId = m[1]!;
  };
  let code: number;
  try {
    code = await runJob(path.join(here, 'jobs', job), {
      jobmanager: cluster.jobManagerAddress,
      args: [String(LINES), ...extraArgs],
      progress: (l, final) => process.stderr.write(`\r\x1b[2K  ${l}${final ? '\n' : ''}`),
    });
  } finally {
    console.log = log;
  }
  if (code !== 0) throw new Error(`${job} ended with exit code ${code}`);
  const client = await ClusterClient.connect(cluster.jobManagerAddress);
  try {
    const d = await client.status(jobId);
    if (expectSinkRecords !== undefined && Number(d.recordsOut) !== expectSinkRecords) {
      throw new Error(`${job}: the sink received ${d.recordsOut} records, expected ${expectSinkRecords}`);
    }
    const secs = (Number(d.endTime) - Number(d.startTime)) / 1000;
    return (LINES * WORDS_PER_LINE) / secs;
  } finally {
    client.close();
  }
}

/** clusterRun, and the job's records per TaskManager CPU-second (deployment included) into `perCpu`. */
async function clusterRunCpu(
  cluster: LocalCluster,
  job: string,
  extraArgs: string[],
  perCpu: number[],
): Promise<number> {
  const before = taskManagerCpuSeconds(cluster);
  const rate = await clusterRun(cluster, job, undefined, extraArgs);
  const after = taskManagerCpuSeconds(cluster);
  if (before !== undefined && after !== undefined && after > before)
    perCpu.push((LINES * WORDS_PER_LINE) / (after - before));
  return rate;
}

/** Runs the large-state job until `n` checkpoints completed; returns the completed ones' stats. */
async function largeState(
  cluster: LocalCluster,
  keys: number,
  n: number,
  storage: string,
  backend = 'heap',
): Promise<Array<{ durationMs: number; stateSizeBytes: number }>> {
  const client = await ClusterClient.connect(cluster.jobManagerAddress);
  const jobId = await submitDetached(path.join(here, 'jobs', 'large-state.ts'), {
    jobmanager: cluster.jobManagerAddress,
    args: [String(keys), '3000', storage, backend],
  });
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      const s = await client.checkpoints(jobId);
      const done = (s.history ?? []).filter((c) => c.status === 'COMPLETED');
      process.stderr.write(
        `\r\x1b[2K  large ${backend} state to ${storage || 'file://'}: ${done.length}/${n} checkpoints completed`,
      );
      // the first checkpoint may come before every key exists; count the later ones
      if (done.length > n) {
        process.stderr.write('\n');
        return done.slice(1).map((c) => ({ durationMs: c.durationMs!, stateSizeBytes: c.stateSizeBytes }));
      }
    }
  } finally {
    await client.cancel(jobId);
    client.close();
  }
}

/** Recovery after kill -9, on 3 TaskManagers x 1 slot for a job of parallelism 2 (one spare slot). */
async function recovery(): Promise<void> {
  const runs = Number(process.env.BENCH_RECOVERY_RUNS ?? 3);
  const cluster = new LocalCluster({
    taskManagers: 3,
    slots: 1,
    port: 0,
    dir: path.join(here, '.tmp-recovery'),
    jobStore: false,
  });
  await cluster.start();
  const results: Record<string, RecoveryTimes[]> = {
    '1M keys': [],
    '1k keys': [],
    '1k keys, no prewarm': [],
  };
  try {
    for (let i = 0; i < runs; i++) {
      results['1M keys']!.push(await measureRecovery(cluster, recoveryJob(here), 1_000_000));
      results['1k keys']!.push(await measureRecovery(cluster, recoveryJob(here), 1_000));
    }
  } finally {
    await cluster.stop();
  }
  // the same small-state recovery with slot prewarming off: the spare slot starts its worker
  // thread and plans the job bundle only when the task arrives
  process.env.WEIR_TASKMANAGER_SLOT_PREWARM = 'false';
  const cold = new LocalCluster({
    taskManagers: 3,
    slots: 1,
    port: 0,
    dir: path.join(here, '.tmp-recovery'),
    jobStore: false,
  });
  try {
    // kept set while the cluster runs: a killed TaskManager is started again with it
    await cold.start();
    for (let i = 0; i < runs; i++)
      results['1k keys, no prewarm']!.push(await measureRecovery(cold, recoveryJob(here), 1_000));
  } finally {
    await cold.stop();
    delete process.env.WEIR_TASKMANAGER_SLOT_PREWARM;
  }
  const m = (k: string, f: keyof RecoveryTimes): string => `${median(results[k]!.map((r) => r[f]))} ms`;
  const row = (label: string, f: keyof RecoveryTimes): string =>
    `| ${label} | ${m('1M keys', f)} | ${m('1k keys', f)} | ${m('1k keys, no prewarm', f)} |`;
  console.log('');
  console.log(
    `| recovery after kill -9 of a TaskManager (spare slot, restart delay 0), median of ${runs} | 1M keys | 1k keys | 1k keys, slot prewarming off |`,
  );
  console.log('|---|---:|---:|---:|');
  console.log(row('kill to detection', 'detectionMs'));
  console.log(row('detection to redeploy', 'redeployMs'));
  console.log(row('state restore (slowest task)', 'stateRestoreMs'));
  console.log(row('kill to all tasks RUNNING', 'runningMs'));
  console.log(row('kill to first checkpoint completed', 'firstCheckpointMs'));
  console.log('');
  console.log(
    `recovery runs: ${Object.entries(results)
      .map(
        ([k, rs]) =>
          `${k}: ${rs.map((r) => `${r.detectionMs}/${r.runningMs}/${r.firstCheckpointMs} ms`).join(', ')}`,
      )
      .join('; ')} (detection/running/first checkpoint)`,
  );
}

/** bench/rocksdb-bindings.ts with 1M keys, in its own process (it exits when done). */
async function rawBindingRates(): Promise<void> {
  const { execFileSync } = await import('node:child_process');
  const out = execFileSync(process.execPath, ['--import', 'tsx', path.join(here, 'rocksdb-bindings.ts')], {
    env: { ...process.env, BENCH_KEYS: process.env.BENCH_KEYS ?? '1000000' },
    encoding: 'utf8',
  });
  console.log('');
  console.log('RocksDB binding on this machine (bench/rocksdb-bindings.ts, one thread):');
  console.log(out.trim());
}

async function main(): Promise<void> {
  console.log(
    `weir benchmark: ${fmt(LINES * WORDS_PER_LINE)} words (${fmt(LINES)} lines), ${RUNS} runs each, medians`,
  );
  const base: number[] = [];
  for (let i = 0; i < RUNS; i++) base.push(baseline());
  // a real S3 server (s3rver, its own process) for the S3 checkpoint figures; the cluster reads its settings from the environment
  const s3 = await new TestS3Server().start();
  Object.assign(process.env, s3.env);
  // in this process, beside the raw bandwidth of the same storage (see heap-snapshot.ts)
  if (want('heap-snapshot')) await heapSnapshotBench(s3.env);
  if (want('rocksdb-native')) await rocksdbNativeBench(s3.env);
  if (want('heap-snapshot-cpu')) await heapSnapshotCpuBench(s3.env);
  // no job store: a benchmark must not resume a job an interrupted run left behind
  const cluster = new LocalCluster({
    taskManagers: 2,
    slots: 1,
    port: 0,
    dir: path.join(here, '.tmp'),
    jobStore: false,
    taskManagerNodeArgs: process.env.BENCH_TM_NODE_ARGS?.split(' ').filter(Boolean) ?? [],
  });
  await cluster.start();
  const shuffle: number[] = [];
  const checkpointed: number[] = [];
  const chained: number[] = [];
  const rocksdb: number[] = [];
  const rocksdbCheckpointed: number[] = [];
  const etWindow: number[] = [];
  const etCount: number[] = [];
  const etCountWatermarks: number[] = [];
  /** the same two jobs in records per TaskManager CPU-second */
  const etCountCpu: number[] = [];
  const etCountWatermarksCpu: number[] = [];
  let state: Array<{ durationMs: number; stateSizeBytes: number }> = [];
  let stateS3: Array<{ durationMs: number; stateSizeBytes: number }> = [];
  let stateRocks: Array<{ durationMs: number; stateSizeBytes: number }> = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      if (want('shuffle')) shuffle.push(await clusterRun(cluster, 'wordcount.ts', LINES * WORDS_PER_LINE));
      if (want('checkpointed'))
        checkpointed.push(await clusterRun(cluster, 'wordcount.ts', LINES * WORDS_PER_LINE, ['1000']));
      if (want('chained')) chained.push(await clusterRun(cluster, 'chained.ts'));
      if (want('rocksdb')) {
        rocksdb.push(await clusterRun(cluster, 'wordcount.ts', LINES * WORDS_PER_LINE, ['0', 'rocksdb']));
        rocksdbCheckpointed.push(
          await clusterRun(cluster, 'wordcount.ts', LINES * WORDS_PER_LINE, ['1000', 'rocksdb']),
        );
      }
      if (want('eventtime')) {
        etWindow.push(await clusterRun(cluster, 'eventtime.ts', undefined, ['window']));
        // the two keyed counts in turn first: a job runs faster or slower depending on the job
        // before it on the same TaskManagers (right after the window job, the count without
        // timestamps ran about 10% faster than after the count with them), so a fixed order
        // puts that into the cost
        const count = async (): Promise<void> =>
          void etCount.push(await clusterRunCpu(cluster, 'eventtime.ts', ['count'], etCountCpu));
        const countWatermarks = async (): Promise<void> =>
          void etCountWatermarks.push(
            await clusterRunCpu(cluster, 'eventtime.ts', ['count-watermarks'], etCountWatermarksCpu),
          );
        if (i % 2 === 0) {
          await count();
          await countWatermarks();
        } else {
          await countWatermarks();
          await count();
        }
      }
    }
    if (want('large-state')) {
      state = await largeState(cluster, 1_000_000, 3, '');
      stateS3 = await largeState(cluster, 1_000_000, 3, 's3://weir/bench');
    }
    if (want('large-state-rocksdb')) stateRocks = await largeState(cluster, 1_000_000, 3, '', 'rocksdb');
  } finally {
    await cluster.stop();
    await s3.stop();
  }
  const b = median(base);
  const rows: Array<[string, number[]]> = [
    ['single-process baseline (one loop, Map counts)', base],
    ['cluster word count, hash shuffle + keyed state, p=2', shuffle],
    ['cluster word count with checkpoints every 1 s (file://)', checkpointed],
    ['cluster chained only (no shuffle), p=2', chained],
    ['cluster word count, RocksDB keyed state, p=2', rocksdb],
    ['cluster word count, RocksDB keyed state, checkpoints every 1 s (file://)', rocksdbCheckpointed],
    ['cluster tumbling event-time window count, 1k keys, 1 s windows of ~100 records per key, p=2', etWindow],
    ['cluster keyed count, 1k keys, p=2', etCount],
    ['cluster keyed count with timestamps and watermarks every 200 ms, p=2', etCountWatermarks],
  ];
  console.log('');
  console.log('| pipeline | records/s (median) | vs baseline |');
  console.log('|---|---:|---:|');
  for (const [name, v] of rows)
    if (v.length > 0) console.log(`| ${name} | ${fmt(median(v))} | ${(median(v) / b).toFixed(2)}x |`);
  console.log('');
  if (checkpointed.length > 0 && shuffle.length > 0)
    console.log(
      `checkpoint overhead on word count: ${((1 - median(checkpointed) / median(shuffle)) * 100).toFixed(1)}%`,
    );
  if (etCount.length > 0)
    console.log(
      `event-time cost on the keyed count (watermarks every 200 ms): ${((1 - median(etCountWatermarks) / median(etCount)) * 100).toFixed(1)}%`,
    );
  if (etCountCpu.length > 0 && etCountWatermarksCpu.length > 0)
    console.log(
      `the same by TaskManager CPU time: ${fmt(median(etCountCpu))} vs ${fmt(median(etCountWatermarksCpu))} records per CPU-second, cost ${((1 - median(etCountWatermarksCpu) / median(etCountCpu)) * 100).toFixed(1)}% (runs ${etCountCpu.map(fmt).join(', ')} vs ${etCountWatermarksCpu.map(fmt).join(', ')})`,
    );
  if (rocksdb.length > 0 && shuffle.length > 0)
    console.log(
      `RocksDB vs heap on word count: ${((median(rocksdb) / median(shuffle)) * 100).toFixed(1)}% of the heap rate`,
    );
  console.log('');
  const ms = (xs: Array<{ durationMs: number }>) =>
    xs.length > 0 ? `${median(xs.map((s) => s.durationMs))} ms` : '-';
  const mb = (xs: Array<{ stateSizeBytes: number }>) =>
    xs.length > 0 ? `${(median(xs.map((s) => s.stateSizeBytes)) / 1e6).toFixed(1)} MB` : '-';
  console.log('| 1M keys of state (2 subtasks) | heap, file:// | heap, s3:// (s3rver) | RocksDB, file:// |');
  console.log('|---|---:|---:|---:|');
  console.log(
    `| checkpoint duration (trigger to _metadata), median | ${ms(state)} | ${ms(stateS3)} | ${ms(stateRocks)} |`,
  );
  console.log(`| checkpoint size | ${mb(state)} | ${mb(stateS3)} | ${mb(stateRocks)} |`);
  console.log('');
  if (want('keyed-state')) {
    // the raw binding rates of this machine beside the keyed-state figures
    await rawBindingRates();
    printKeyedState(await keyedStateThroughput(here, Number(process.env.BENCH_KEYED_RUNS ?? 3)));
  }
  if (want('keyed-state-loop')) await keyedLoopBench();
  if (want('rocksdb-write-order')) await writeOrderBench();
  if (want('rocksdb-restore')) await rocksdbRestoreBench();
  if (want('incremental')) await incrementalCheckpoints(here);
  if (want('rocksdb-100m')) await rocksdbLarge(here);
  if (want('recovery')) await recovery();
  if (want('job-start')) await jobStartBench(here);
  if (want('recovery-large')) await recoveryLarge(here);
  if (want('nexmark')) await nexmarkBench(here);
  if (want('metrics')) await metricsOverhead(here, LINES, RUNS);
  if (want('connectors')) await connectorsBench(here);
  if (want('backpressure')) await backpressureBench(path.resolve(here, '..'), RUNS);
  if (want('unaligned')) await unalignedBench(here);
  console.log(
    `all runs: baseline ${base.map(fmt).join(', ')}; shuffle ${shuffle.map(fmt).join(', ')}; checkpointed ${checkpointed.map(fmt).join(', ')}; chained ${chained.map(fmt).join(', ')}; rocksdb ${rocksdb.map(fmt).join(', ')}; rocksdb checkpointed ${rocksdbCheckpointed.map(fmt).join(', ')}; event-time window ${etWindow.map(fmt).join(', ')}, keyed count ${etCount.map(fmt).join(', ')}, with watermarks ${etCountWatermarks.map(fmt).join(', ')}; large-state checkpoints file ${state.map((s) => `${s.durationMs} ms`).join(', ')}, s3 ${stateS3.map((s) => `${s.durationMs} ms`).join(', ')}, rocksdb ${stateRocks.map((s) => `${s.durationMs} ms`).join(', ')}`,
  );
}

await main();
