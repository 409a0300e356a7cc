/**
 * `BENCH_ONLY=backpressure`: checkpoints under backpressure and what buffer debloating costs.
 * A fast sequence source feeds a keyed operator that burns 1 ms of CPU per record
 * (test/jobs/slow-keyed.ts, p=2, checkpoints every second); the median duration of its completed
 * checkpoints with the default configuration and with debloating off, side by side, then the
 * unthrottled word count and a flatMap emitting 1M records from one input
 * (test/jobs/flatmap-burst.ts) with debloating on and off, alternating, in the same run.
 * BENCH_BACKPRESSURE_SECONDS (default 20) bounds each checkpoint run, BENCH_BACKPRESSURE_MICROS
 * (default 1000) sets the work per record, BENCH_RUNS the word-count runs.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { ClusterClient } from '../packages/client/src/index.js';
import { LocalCluster } from '@weir/cli';
import { runToEnd, submitDetached } from './submit.js';

const DEBLOAT_ENV = 'WEIR_TASKMANAGER_NETWORK_MEMORY_BUFFER_DEBLOAT_ENABLED';
/** records the flatMap emits for its one input (BENCH_BACKPRESSURE_BURST) */
const BURST = Number(process.env.BENCH_BACKPRESSURE_BURST ?? 1_000_000);

export interface CheckpointRun {
  completed: number[];
  failed: number;
  /** records/s at the sinks from the 5th second of the run to its end */
  recordsPerSecond: number;
  /** the first checkpoint's trigger to the end of the run, when none completed */
  seconds: number;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A 2-TaskManager cluster whose TaskManagers have debloating on or off (they read the environment). */
export async function startCluster(dir: string, debloat?: boolean): Promise<LocalCluster> {
  const saved = process.env[DEBLOAT_ENV];
  if (debloat !== undefined) process.env[DEBLOAT_ENV] = String(debloat);
  try {
    const cluster = new LocalCluster({ taskManagers: 2, slots: 1, port: 0, dir, jobStore: false });
    await cluster.start();
    return cluster;
  } finally {
    if (saved === undefined) delete process.env[DEBLOAT_ENV];
    else process.env[DEBLOAT_ENV] = saved;
  }
}

/** Runs the slow keyed job for `seconds`; the durations of its completed checkpoints (the first skipped: startup). */
export async function slowKeyedCheckpoints(
  root: string,
  cluster: LocalCluster,
  micros: number,
  seconds: number,
  label: string,
): Promise<CheckpointRun> {
  const client = await ClusterClient.connect(cluster.jobManagerAddress);
  const jobId = await submitDetached(path.join(root, 'test/jobs/slow-keyed.ts'), {
    jobmanager: cluster.jobManagerAddress,
    args: [String(micros), '1000'],
  });
  const t0 = Date.now();
  let mark: { at: number; records: number } | undefined;
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, 1000));
      if (!mark && Date.now() - t0 >= 5000)
        mark = { at: Date.now(), records: Number((await client.status(jobId)).recordsOut) };
      const s = await client.checkpoints(jobId);
      const done = (s.history ?? []).filter((c) => c.status === 'COMPLETED');
      process.stderr.write(
        `\r\x1b[2K  ${label}: ${done.length} checkpoints completed, ${s.counts?.failed ?? 0} failed after ${Math.round((Date.now() - t0) / 1000)} s`,
      );
      if (Date.now() - t0 > seconds * 1000) {
        process.stderr.write('\n');
        const ids = done.map((c) => c.id).sort((a, b) => a - b);
        const records = Number((await client.status(jobId)).recordsOut);
        return {
          completed: done
            .filter((c) => c.id !== ids[0])
            .sort((a, b) => a.id - b.id)
            .map((c) => c.durationMs!),
          failed: s.counts?.failed ?? 0,
          seconds,
          recordsPerSecond: mark ? ((records - mark.records) * 1000) / (Date.now() - mark.at) : 0,
        };
      }
    }
  } finally {
    await client.cancel(jobId).catch(() => {});
    client.close();
  }
}

export function describeRun(r: CheckpointRun): string {
  if (r.completed.length === 0) return `none completed after the first in ${r.seconds} s`;
  return `${median(r.completed)} ms (${r.completed.length} checkpoints: ${r.completed.join(', ')} ms; ${r.failed} failed)`;
}

/** One word-count run on `cluster`: words per second from the JobManager's job start and end. */
async function wordCount(
  root: string,
  cluster: LocalCluster,
  lines: number,
  wordsPerLine: number,
): Promise<number> {
  const { details, seconds } = await runToEnd(
    path.join(root, 'bench/jobs/wordcount.ts'),
    { jobmanager: cluster.jobManagerAddress, args: [String(lines)] },
    'word count',
  );
  if (Number(details.recordsOut) !== lines * wordsPerLine)
    throw new Error(
      `word count: the sink received ${details.recordsOut} records, expected ${lines * wordsPerLine}`,
    );
  return (lines * wordsPerLine) / seconds;
}

/**
 * One run of test/jobs/flatmap-burst.ts on `cluster`: a flatMap emitting `n` records (220 bytes
 * each) for its single input, keyed to a count; records/s from the job's start and end.
 */
async function flatMapBurst(root: string, cluster: LocalCluster, n: number, out: string): Promise<number> {
  const { details, seconds } = await runToEnd(
    path.join(root, 'test/jobs/flatmap-burst.ts'),
    { jobmanager: cluster.jobManagerAddress, args: ['1', String(n), out] },
    'flatMap burst',
  );
  // every emitted record reached the keyed count (chained with the sink)
  if (Number(details.recordsOut) !== n)
    throw new Error(`flatMap burst: ${details.recordsOut} records reached the count, not ${n}`);
  return n / seconds;
}

/** The same flatMap and keyed count in one loop of one process (the baseline). */
function flatMapBurstLoop(n: number): number {
  const pad = 'x'.repeat(200);
  const counts = new Map<number, [number, number]>();
  const t0 = performance.now();
  const out: Array<{ input: number; j: number; pad: string }> = [];
  for (let j = 0; j < n; j++) out.push({ input: 0, j, pad });
  for (const r of out) {
    const c = counts.get(r.j % 2) ?? [0, 0];
    counts.set(r.j % 2, [c[0] + 1, c[1] + r.j]);
  }
  if (counts.get(0)![0] !== Math.ceil(n / 2)) throw new Error('flatMap burst loop miscounted');
  return n / ((performance.now() - t0) / 1000);
}

/**
 * BENCH_BACKPRESSURE_TARGETS=20,100,500: the slow job at BENCH_BACKPRESSURE_SWEEP_MICROS (default
 * 50) per record under each debloating target, for choosing the default: checkpoint duration
 * against the slow operator's records/s (too small a target starves it).
 */
export async function targetSweep(root: string, targets: number[], seconds: number): Promise<void> {
  const micros = Number(process.env.BENCH_BACKPRESSURE_SWEEP_MICROS ?? 50);
  const rows: string[] = [];
  for (const target of targets) {
    process.env.WEIR_TASKMANAGER_NETWORK_MEMORY_BUFFER_DEBLOAT_TARGET = String(target);
    let cluster: LocalCluster | undefined;
    try {
      cluster = await startCluster(path.join(root, 'bench/.tmp-debloat-sweep'), true);
      const r = await slowKeyedCheckpoints(root, cluster, micros, seconds, `target ${target} ms`);
      rows.push(`| ${target} ms | ${describeRun(r)} | ${Math.round(r.recordsPerSecond)} |`);
    } finally {
      delete process.env.WEIR_TASKMANAGER_NETWORK_MEMORY_BUFFER_DEBLOAT_TARGET;
      await cluster?.stop();
    }
  }
  console.log('');
  console.log(
    `| debloating target (${micros} us/record, ${seconds} s) | median checkpoint duration | records/s |`,
  );
  console.log('|---|---|---:|');
  for (const r of rows) console.log(r);
}

/** The backpressure part of `npm run bench`; prints its table. */
export async function backpressureBench(root: string, runs: number): Promise<void> {
  const { WORDS_PER_LINE } = await import('./words.js');
  const micros = Number(process.env.BENCH_BACKPRESSURE_MICROS ?? 1000);
  const seconds = Number(process.env.BENCH_BACKPRESSURE_SECONDS ?? 20);
  const words = Number(process.env.BENCH_BACKPRESSURE_WORDS ?? 5_000_000);
  const lines = Math.ceil(words / WORDS_PER_LINE);
  const targets = process.env.BENCH_BACKPRESSURE_TARGETS;
  if (targets) await targetSweep(root, targets.split(',').map(Number), seconds);
  // both clusters up at once, so word-count runs alternate between them in the same conditions
  const on = await startCluster(path.join(root, 'bench/.tmp-debloat-on'), true);
  let off: LocalCluster | undefined;
  try {
    off = await startCluster(path.join(root, 'bench/.tmp-debloat-off'), false);
    const withDebloat = await slowKeyedCheckpoints(root, on, micros, seconds, 'defaults (debloating on)');
    const without = await slowKeyedCheckpoints(root, off, micros, seconds, 'debloating off');
    const rateOn: number[] = [];
    const rateOff: number[] = [];
    const burstOn: number[] = [];
    const burstOff: number[] = [];
    const burstLoop: number[] = [];
    const burstOut = path.join(root, 'bench/.tmp-burst');
    for (let i = 0; i < runs; i++) {
      process.stderr.write(`\r\x1b[2K  word count and flatMap burst ${i + 1}/${runs}, debloating on and off`);
      rateOn.push(await wordCount(root, on, lines, WORDS_PER_LINE));
      rateOff.push(await wordCount(root, off, lines, WORDS_PER_LINE));
      burstOn.push(await flatMapBurst(root, on, BURST, path.join(burstOut, `on-${i}`)));
      burstOff.push(await flatMapBurst(root, off, BURST, path.join(burstOut, `off-${i}`)));
      burstLoop.push(flatMapBurstLoop(BURST));
    }
    rmSync(burstOut, { recursive: true, force: true });
    process.stderr.write('\n');
    const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
    console.log('');
    console.log(
      `| backpressure: sequence -> keyed ${micros} us/record -> discard, p=2, checkpoints every 1 s, ${seconds} s | median checkpoint duration |`,
    );
    console.log('|---|---|');
    console.log(`| defaults (buffer debloating on) | ${describeRun(withDebloat)} |`);
    console.log(`| buffer debloating off | ${describeRun(without)} |`);
    console.log(
      `slow operator records/s (both subtasks): ${Math.round(withDebloat.recordsPerSecond)} with debloating, ${Math.round(without.recordsPerSecond)} without`,
    );
    console.log('');
    console.log(
      `| word count (${fmt(lines * WORDS_PER_LINE)} words), p=2, median of ${runs} | records/s | runs |`,
    );
    console.log('|---|---:|---|');
    console.log(`| buffer debloating on | ${fmt(median(rateOn))} | ${rateOn.map(fmt).join(', ')} |`);
    console.log(`| buffer debloating off | ${fmt(median(rateOff))} | ${rateOff.map(fmt).join(', ')} |`);
    console.log(
      `buffer debloating costs the word count ${((1 - median(rateOn) / median(rateOff)) * 100).toFixed(1)}%`,
    );
    console.log('');
    console.log(
      `| flatMap emitting ${fmt(BURST)} records (220 bytes) for one input -> keyed count, p=2, median of ${runs} | records/s | runs |`,
    );
    console.log('|---|---:|---|');
    console.log(
      `| single-process loop (baseline) | ${fmt(median(burstLoop))} | ${burstLoop.map(fmt).join(', ')} |`,
    );
    console.log(`| buffer debloating on | ${fmt(median(burstOn))} | ${burstOn.map(fmt).join(', ')} |`);
    console.log(`| buffer debloating off | ${fmt(median(burstOff))} | ${burstOff.map(fmt).join(', ')} |`);
  } finally {
    await on.stop();
    await off?.stop();
  }
}
