/**
 * What metrics cost: word count on a cluster with the REST API and Prometheus endpoints on and
 * scraped every second (the JobManager's /metrics, every TaskManager's /metrics, the job and
 * checkpoint pages the dashboard polls), against a cluster with all of them off. The two
 * clusters run alternately, so machine noise falls on both. Besides words per second it reports
 * words per CPU second of the cluster's processes, which a machine shared with other work
 * disturbs less. Bar: within 3%.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ClusterClient } from '../packages/client/src/index.js';
import { LocalCluster } from '@weir/cli';
import { submitDetached } from './submit.js';
import { WORDS_PER_LINE } from './words.js';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** CPU seconds (user + system) the cluster's processes used so far, from /proc (Linux). */
function cpuSeconds(cluster: LocalCluster): number {
  let ticks = 0;
  for (const pid of cluster.pids()) {
    try {
      // the fields after the command name: utime and stime are the 12th and 13th
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      /* a process that ended */
    }
  }
  return ticks / 100;
}

interface Run {
  /** words per second of wall-clock time, from the job's start and end */
  wall: number;
  /** words per CPU second of the cluster's processes */
  cpu: number;
}

/** Runs word count to its end. */
async function wordCount(cluster: LocalCluster, here: string, lines: number, scrape: boolean): Promise<Run> {
  const client = await ClusterClient.connect(cluster.jobManagerAddress);
  const cpu0 = cpuSeconds(cluster);
  try {
    const jobId = await submitDetached(path.join(here, 'jobs', 'wordcount.ts'), {
      jobmanager: cluster.jobManagerAddress,
      args: [String(lines)],
    });
    const targets = scrape
      ? [
          `http://${cluster.restAddress}/metrics`,
          `http://${cluster.restAddress}/jobs/${jobId}`,
          `http://${cluster.restAddress}/jobs/${jobId}/checkpoints`,
          ...[...cluster.metricsAddresses.values()].map((a) => `http://${a}/metrics`),
        ]
      : [];
    for (;;) {
      await Promise.all(targets.map((u) => fetch(u).then((r) => r.text())));
      const d = await client.status(jobId);
      if (d.status === 'JOB_FINISHED') {
        const words = lines * WORDS_PER_LINE;
        return {
          wall: words / ((Number(d.endTime) - Number(d.startTime)) / 1000),
          cpu: words / (cpuSeconds(cluster) - cpu0),
        };
      }
      if (d.status === 'JOB_FAILED' || d.status === 'JOB_CANCELED')
        throw new Error(`word count ended ${d.status}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    client.close();
  }
}

export async function metricsOverhead(here: string, lines: number, runs: number): Promise<void> {
  const on = new LocalCluster({
    taskManagers: 2,
    slots: 1,
    port: 0,
    dir: path.join(here, '.tmp-metrics-on'),
    jobStore: false,
  });
  const off = new LocalCluster({
    taskManagers: 2,
    slots: 1,
    port: 0,
    dir: path.join(here, '.tmp-metrics-off'),
    jobStore: false,
    metrics: false,
  });
  await on.start();
  await off.start();
  const withMetrics: Run[] = [];
  const without: Run[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      // alternate which goes first, so a trend in machine load does not favour one side
      if (i % 2 === 0) {
        without.push(await wordCount(off, here, lines, false));
        withMetrics.push(await wordCount(on, here, lines, true));
      } else {
        withMetrics.push(await wordCount(on, here, lines, true));
        without.push(await wordCount(off, here, lines, false));
      }
      process.stderr.write(`\r\x1b[2K  metrics overhead: run ${i + 1}/${runs}`);
    }
  } finally {
    process.stderr.write('\n');
    await on.stop();
    await off.stop();
  }
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
  const m = (rs: Run[], k: keyof Run): number => median(rs.map((r) => r[k]));
  const cost = (k: keyof Run): string => `${((1 - m(withMetrics, k) / m(without, k)) * 100).toFixed(1)}%`;
  console.log('');
  console.log(`| word count, p=2, median of ${runs} | words/s | words per CPU second |`);
  console.log('|---|---:|---:|');
  console.log(`| REST API and Prometheus off | ${fmt(m(without, 'wall'))} | ${fmt(m(without, 'cpu'))} |`);
  console.log(
    `| REST API and Prometheus on, scraped every second | ${fmt(m(withMetrics, 'wall'))} | ${fmt(m(withMetrics, 'cpu'))} |`,
  );
  console.log('');
  console.log(
    `metrics cost on word count: ${cost('wall')} of throughput, ${cost('cpu')} of CPU (bar: within 3%)`,
  );
  const list = (rs: Run[], k: keyof Run): string => rs.map((r) => fmt(r[k])).join(', ');
  console.log(
    `metrics runs, words/s: off ${list(without, 'wall')}; on ${list(withMetrics, 'wall')}; words per CPU second: off ${list(without, 'cpu')}; on ${list(withMetrics, 'cpu')}`,
  );
}
