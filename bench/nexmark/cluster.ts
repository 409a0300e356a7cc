/**
 * Nexmark on a local cluster (`BENCH_ONLY=nexmark npm run bench`): every query at p=2 on 2
 * TaskManagers into a DiscardingSink, events/s per core (the cluster rate over the 2 cores
 * it runs on) beside the single-process baseline of the same query (one core) and Flink's
 * published per-core figure. First every query's output is checked against the reference
 * in the same run (one job, all queries on one source, file sinks).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClusterClient, runJob } from '../../packages/client/src/index.js';
import { LocalCluster } from '@weir/cli';
import { NEXMARK_QUERIES, finalResult } from '../../examples/nexmark/queries.js';
import { nexmarkBaseline, nexmarkReference } from './baseline.js';

/** nexmark/nexmark README, Flink per-core throughput (events/s) */
const FLINK_PER_CORE: Record<string, number> = {
  q0: 155_000,
  q2: 175_000,
  q5: 22_000,
  q7: 12_300,
  q20: 19_000,
};
const CORES = 2;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function run(cluster: LocalCluster, job: string, args: string[]): Promise<number> {
  let jobId = '';
  const log = console.log;
  console.log = (...a: unknown[]) => {
    const m = /submitted with id (\w+)/.exec(String(a[0]));
    if (m) jobId = m[1]!;
  };
  let code: number;
  try {
    code = await runJob(job, {
      jobmanager: cluster.jobManagerAddress,
      args,
      progress: (l, final) => process.stderr.write(`\r\x1b[2K  nexmark ${args[0]}: ${l}${final ? '\n' : ''}`),
    });
  } finally {
    console.log = log;
  }
  if (code !== 0) throw new Error(`Nexmark ${args[0]} ended with exit code ${code}`);
  const client = await ClusterClient.connect(cluster.jobManagerAddress);
  try {
    const d = await client.status(jobId);
    return (Number(d.endTime) - Number(d.startTime)) / 1000;
  } finally {
    client.close();
  }
}

function outputLines(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const f of readdirSync(dir).filter((n) => n.startsWith('part-')))
    for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) if (line) out.push(line);
  return out;
}

export async function nexmarkBench(benchDir: string): Promise<void> {
  const events = Number(process.env.BENCH_NEXMARK_EVENTS ?? 2_000_000);
  const checkEvents = Number(process.env.BENCH_NEXMARK_CHECK_EVENTS ?? 200_000);
  const runs = Number(process.env.BENCH_NEXMARK_RUNS ?? 3);
  const queries = process.env.BENCH_NEXMARK_QUERIES?.split(',') ?? NEXMARK_QUERIES;
  const job = path.join(benchDir, '..', 'examples', 'nexmark', 'job.ts');
  const cluster = new LocalCluster({
    taskManagers: 2,
    slots: 1,
    port: 0,
    dir: path.join(benchDir, '.tmp-nexmark'),
    jobStore: false,
  });
  await cluster.start();
  const rates = new Map<string, number[]>();
  const checked = new Map<string, string>();
  const out = mkdtempSync(path.join(os.tmpdir(), 'weir-nexmark-'));
  try {
    await run(cluster, job, ['all', String(checkEvents), out, '2']);
    for (const q of queries) {
      const got = finalResult(q, outputLines(path.join(out, q))).sort();
      const want = nexmarkReference(q, checkEvents);
      if (q === 'q12') {
        const sum = (ls: string[]): number => ls.reduce((s, l) => s + Number(l.split(',')[1]), 0);
        checked.set(q, `${fmt(sum(got))} of ${fmt(sum(want))} bids in closed windows`);
      } else {
        const same = got.length === want.length && got.every((l, i) => l === want[i]);
        if (!same)
          throw new Error(
            `Nexmark ${q}: the cluster's result differs from the reference (${got.length} vs ${want.length} lines)`,
          );
        checked.set(q, `exact (${fmt(want.length)} lines)`);
      }
    }
    for (let i = 0; i < runs; i++) {
      for (const q of queries) {
        const secs = await run(cluster, job, [q, String(events), 'discard', '2']);
        const r = rates.get(q) ?? [];
        r.push(events / secs);
        rates.set(q, r);
      }
    }
  } finally {
    await cluster.stop();
    rmSync(out, { recursive: true, force: true });
  }
  console.log('');
  console.log(
    `| Nexmark (${fmt(events)} events, p=2 on 2 TaskManagers, ${CORES} cores, median of ${runs}) | weir events/s per core | single-process baseline (1 core) | Flink per core | result vs reference (${fmt(checkEvents)} events) |`,
  );
  console.log('|---|---:|---:|---:|---|');
  for (const q of queries) {
    const perCore = median(rates.get(q)!) / CORES;
    const base = nexmarkBaseline(q, Math.min(events, 1_000_000)).eventsPerSecond;
    const flink = FLINK_PER_CORE[q];
    console.log(
      `| ${q} | ${fmt(perCore)} | ${fmt(base)} | ${flink ? `${fmt(flink)} (${(perCore / flink).toFixed(1)}x)` : '-'} | ${checked.get(q)} |`,
    );
  }
  console.log(
    `nexmark runs (events/s): ${queries.map((q) => `${q} ${rates.get(q)!.map(fmt).join('/')}`).join('; ')}`,
  );
}
