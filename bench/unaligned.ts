/**
 * Checkpoints under backpressure (BENCH_ONLY=unaligned): an unthrottled source into a keyed
 * operator doing 1 ms of CPU work per record (BENCH_UNALIGNED_WORK_US), checkpoints every
 * second, for BENCH_UNALIGNED_SECONDS (default 20) per configuration: aligned (the baseline,
 * same run), unaligned, and aligned with a 100 ms aligned-checkpoint timeout. Reports the
 * completed checkpoints, their median duration (trigger to _metadata) and the median in-flight
 * bytes each unaligned checkpoint stored.
 */
import path from 'node:path';
import { ClusterClient } from '../packages/client/src/index.js';
import { LocalCluster } from '@weir/cli';
import { submitDetached } from './submit.js';

const SECONDS = Number(process.env.BENCH_UNALIGNED_SECONDS ?? 20);
const WORK_US = Number(process.env.BENCH_UNALIGNED_WORK_US ?? 1000);
const MODES = ['aligned', 'unaligned', 'timeout:100'] as const;

const median = (xs: number[]): number | undefined =>
  xs.length === 0 ? undefined : [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Result {
  mode: string;
  completed: number;
  medianMs: number | undefined;
  unaligned: number;
  medianPersisted: number | undefined;
  triggered: number;
}

async function run(cluster: LocalCluster, here: string, mode: string): Promise<Result> {
  const client = await ClusterClient.connect(cluster.jobManagerAddress);
  const jobId = await submitDetached(path.join(here, 'jobs', 'backpressured.ts'), {
    jobmanager: cluster.jobManagerAddress,
    args: [String(WORK_US), mode],
  });
  try {
    const end = Date.now() + SECONDS * 1000;
    for (;;) {
      await new Promise((r) => setTimeout(r, 1000));
      const c = await client.checkpoints(jobId);
      process.stderr.write(`\r\x1b[2K  ${mode}: ${c.counts?.completed ?? 0} checkpoints completed`);
      if (Date.now() < end) continue;
      process.stderr.write('\n');
      const history = c.history ?? [];
      const done = history.filter((x) => x.status === 'COMPLETED' && !x.savepoint);
      const unaligned = done.filter((x) => x.unaligned);
      return {
        mode,
        completed: done.length,
        medianMs: median(done.map((x) => x.durationMs!)),
        unaligned: unaligned.length,
        medianPersisted: median(unaligned.map((x) => x.persistedDataBytes ?? 0)),
        triggered: history.length,
      };
    }
  } finally {
    await client.cancel(jobId);
    client.close();
  }
}

export async function unalignedBench(here: string): Promise<void> {
  const cluster = new LocalCluster({
    taskManagers: 2,
    slots: 1,
    port: 0,
    dir: path.join(here, '.tmp-unaligned'),
    jobStore: false,
  });
  await cluster.start();
  const results: Result[] = [];
  try {
    for (const mode of MODES) results.push(await run(cluster, here, mode));
  } finally {
    await cluster.stop();
  }
  console.log('');
  console.log(
    `### Checkpoints under backpressure (keyed operator, ${WORK_US} µs of CPU per record, parallelism 1, checkpoint every 1 s, ${SECONDS} s per row)`,
  );
  console.log('');
  console.log(
    '| checkpoints | triggered | completed | median duration | unaligned | median in-flight bytes stored |',
  );
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of results)
    console.log(
      `| ${r.mode} | ${r.triggered} | ${r.completed} | ${r.medianMs === undefined ? 'none completed' : `${r.medianMs} ms`} | ${r.unaligned} | ${r.medianPersisted === undefined ? '-' : r.medianPersisted.toLocaleString('en-US')} |`,
    );
  console.log('');
}
