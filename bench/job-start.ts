/**
 * `BENCH_ONLY=job-start`: how long a small job takes on a cluster that already ran one, from
 * submission to FINISHED as the JobManager records it, and from `runJob`'s call to its return
 * (bundling, planning, submission, following: what `weir run` does). A job after another is
 * the common case on a long-running cluster (and in the test suite): with slot prewarming on
 * (the default) each slot whose job ended holds a blank worker (task code loaded, no job) for
 * the next one; with it off, as every cluster ran before blank workers, the tasks of every job
 * start in new worker threads. One cluster each way, 2 TaskManagers x 2 slots, a 4-task job of
 * 1,000 records (bench/jobs/small.ts), BENCH_JOB_START_RUNS (default 8) after one warm-up.
 */
import path from 'node:path';
import { runJob } from '../packages/client/src/index.js';
import { ClusterClient } from '../packages/client/src/cluster-client.js';
import { LocalCluster } from '@weir/cli';

const RUNS = Number(process.env.BENCH_JOB_START_RUNS ?? 8);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface JobStart {
  /** the JobManager's start to end of the job (deployment included) */
  jobMs: number;
  /** runJob's call to its return */
  runMs: number;
}

async function runs(here: string, prewarm: boolean): Promise<JobStart[]> {
  if (!prewarm) process.env.WEIR_TASKMANAGER_SLOT_PREWARM = 'false';
  const cluster = new LocalCluster({
    taskManagers: 2,
    slots: 2,
    port: 0,
    dir: path.join(here, '.tmp-job-start'),
    jobStore: false,
  });
  const out: JobStart[] = [];
  try {
    await cluster.start();
    const client = await ClusterClient.connect(cluster.jobManagerAddress);
    try {
      for (let i = 0; i <= RUNS; i++) {
        const log = console.log;
        let jobId = '';
        console.log = (line: unknown) => {
          const m = /submitted with id ([0-9a-f]+)/.exec(String(line));
          if (m) jobId = m[1]!;
        };
        const t0 = performance.now();
        let code: number;
        try {
          code = await runJob(path.join(here, 'jobs', 'small.ts'), {
            jobmanager: cluster.jobManagerAddress,
            args: [],
            progress: () => {},
          });
        } finally {
          console.log = log;
        }
        const runMs = performance.now() - t0;
        if (code !== 0) throw new Error(`small.ts ended with exit code ${code}`);
        const d = await client.status(jobId);
        // the first job of a cluster finds the workers started with the TaskManagers either way
        if (i > 0) out.push({ jobMs: Number(d.endTime) - Number(d.startTime), runMs });
        process.stderr.write(
          `\r\x1b[2K  ${prewarm ? 'blank workers' : 'prewarming off'}: job ${i + 1}/${RUNS + 1}`,
        );
      }
    } finally {
      client.close();
    }
  } finally {
    process.stderr.write('\n');
    await cluster.stop();
    delete process.env.WEIR_TASKMANAGER_SLOT_PREWARM;
  }
  return out;
}

export async function jobStartBench(here: string): Promise<void> {
  const blank = await runs(here, true);
  const cold = await runs(here, false);
  const ms = (xs: number[]): string => `${Math.round(median(xs)).toLocaleString('en-US')} ms`;
  console.log('');
  console.log(
    `| a 4-task job of 1,000 records after another job, 2 TaskManagers x 2 slots, median of ${RUNS} | blank workers (slot prewarming, the default) | slot prewarming off (new worker threads) |`,
  );
  console.log('|---|---:|---:|');
  console.log(
    `| submission to FINISHED (JobManager) | ${ms(blank.map((r) => r.jobMs))} | ${ms(cold.map((r) => r.jobMs))} |`,
  );
  console.log(
    `| runJob (bundle, plan, submit, follow to the end) | ${ms(blank.map((r) => r.runMs))} | ${ms(cold.map((r) => r.runMs))} |`,
  );
  const all = (rs: JobStart[]): string => rs.map((r) => Math.round(r.jobMs)).join(', ');
  console.log(`  runs (JobManager, ms): blank ${all(blank)}; prewarming off ${all(cold)}`);
}
