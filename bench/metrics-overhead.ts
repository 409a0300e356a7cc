/**
 * What metrics cost: word count on a cluster with the REST API and Prometheus endpoints on and
 * scraped every second (the JobManager's /metrics, every TaskManager's /metrics, the job and
 * checkpoint pages the dashboard polls), against a cluster with all of them off. The two
 * clusters run alternately, so machine noise falls on both. Bar: within 3%.
 */
import path from 'node:path';
import { ClusterClient } from '../packages/client/src/index.js';
import { LocalCluster } from '../packages/cli/src/index.js';
import { submitDetached } from './submit.js';
import { WORDS_PER_LINE } from './words.js';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Runs word count to its end; gives words per second from the job's own start and end times. */
async function wordCount(
  cluster: LocalCluster,
  here: string,
  lines: number,
  scrape: boolean,
): Promise<number> {
  const client = await ClusterClient.connect(cluster.jobManagerAddress);
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
      if (d.status === 'JOB_FINISHED')
        return (lines * WORDS_PER_LINE) / ((Number(d.endTime) - Number(d.startTime)) / 1000);
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
  });
  const off = new LocalCluster({
    taskManagers: 2,
    slots: 1,
    port: 0,
    dir: path.join(here, '.tmp-metrics-off'),
    metrics: false,
  });
  await on.start();
  await off.start();
  const withMetrics: number[] = [];
  const without: number[] = [];
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
  const cost = (1 - median(withMetrics) / median(without)) * 100;
  console.log('');
  console.log(`| word count, p=2, median of ${runs} | words/s |`);
  console.log('|---|---:|');
  console.log(`| REST API and Prometheus off | ${fmt(median(without))} |`);
  console.log(`| REST API and Prometheus on, scraped every second | ${fmt(median(withMetrics))} |`);
  console.log('');
  console.log(`metrics cost on word count: ${cost.toFixed(1)}% (bar: within 3%)`);
  console.log(`metrics runs: off ${without.map(fmt).join(', ')}; on ${withMetrics.map(fmt).join(', ')}`);
}
