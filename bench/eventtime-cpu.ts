/**
 * The event-time cost on the keyed count of bench/jobs/eventtime.ts by TaskManager CPU time,
 * with more samples than `BENCH_ONLY=eventtime npm run bench` takes in the same time: one local
 * cluster (2 TaskManagers, 1 slot each, p=2), then PAIRS pairs of the keyed count without and
 * with timestamps and watermarks back to back (the order alternating from pair to pair), each
 * job's records per CPU-second of both TaskManager processes (deployment included, as the
 * bench counts it). Prints both medians, their cost, and the median of the per-pair costs: a
 * pair's two jobs ran under about the same load.
 * `node --import tsx bench/eventtime-cpu.ts`; PAIRS (default 8), LINES (default 2,000,000 lines of 10 records). Linux only (/proc).
 * SMALL_LINES (say 200000): each job of a pair is also run with that many lines, and the cost
 * is also given per marginal record, (records - small records) / (CPU - small job's CPU): a
 * job's fixed cost (a fresh slot worker, the bundle planned: about 1 CPU-second) left out.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalCluster } from '@weir/cli';
import { eventTimeJobCpuSeconds } from './taskmanager-cpu.js';
import { WORDS_PER_LINE } from './words.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const PAIRS = Number(process.env.PAIRS ?? 8);
const LINES = Number(process.env.LINES ?? 2_000_000);
const RECORDS = LINES * WORDS_PER_LINE;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

const SMALL_LINES = Number(process.env.SMALL_LINES ?? 0);
/** records per marginal CPU-second of each variant (SMALL_LINES only) */
const marginal: Record<string, number[]> = { count: [], 'count-watermarks': [] };

async function perCpuSecond(cluster: LocalCluster, mode: string): Promise<number> {
  const cpu = await eventTimeJobCpuSeconds(cluster, mode, LINES);
  if (SMALL_LINES > 0) {
    const small = await eventTimeJobCpuSeconds(cluster, mode, SMALL_LINES);
    marginal[mode]!.push(((LINES - SMALL_LINES) * WORDS_PER_LINE) / (cpu - small));
  }
  return RECORDS / cpu;
}

const cluster = new LocalCluster({
  taskManagers: 2,
  slots: 1,
  port: 0,
  dir: path.join(here, '.tmp-eventtime-cpu'),
  jobStore: false,
});
await cluster.start();
const without: number[] = [];
const withTs: number[] = [];
try {
  for (let i = 0; i < PAIRS; i++) {
    if (i % 2 === 0) {
      without.push(await perCpuSecond(cluster, 'count'));
      withTs.push(await perCpuSecond(cluster, 'count-watermarks'));
    } else {
      withTs.push(await perCpuSecond(cluster, 'count-watermarks'));
      without.push(await perCpuSecond(cluster, 'count'));
    }
    process.stderr.write(`\r\x1b[2K  pair ${i + 1}/${PAIRS}`);
  }
} finally {
  process.stderr.write('\n');
  await cluster.stop();
}
const pct = (a: number, b: number): string => `${((1 - b / a) * 100).toFixed(1)}%`;
console.log(
  `without event time ${fmt(median(without))} records per CPU-second (${without.map(fmt).join(', ')})`,
);
console.log(`with timestamps and watermarks ${fmt(median(withTs))} (${withTs.map(fmt).join(', ')})`);
console.log(
  `event-time cost by TaskManager CPU time: ${pct(median(without), median(withTs))} of the medians`,
);
const pairs = without.map((a, i) => (1 - withTs[i]! / a) * 100);
if (SMALL_LINES > 0) {
  const [a, b] = [marginal.count!, marginal['count-watermarks']!];
  console.log(
    `per marginal record (jobs of ${LINES.toLocaleString('en-US')} less jobs of ${SMALL_LINES.toLocaleString('en-US')} lines): without ${fmt(median(a))} records per CPU-second (${a.map(fmt).join(', ')}), with ${fmt(median(b))} (${b.map(fmt).join(', ')}): cost ${pct(median(a), median(b))}`,
  );
}
console.log(
  `per pair: ${pairs.map((c) => `${c.toFixed(1)}%`).join(', ')}; median ${median(pairs).toFixed(1)}%`,
);
