/**
 * How much a job's cost depends on the job before it: runs the jobs of bench/jobs/eventtime.ts
 * in a given sequence on one local cluster (2 TaskManagers, 1 slot each, p=2) and prints each
 * job's records per TaskManager CPU-second (deployment included, as the bench counts it),
 * grouped by the job before it. SEQ: comma-separated, `o` the keyed count, `w` the keyed count
 * with timestamps and watermarks, `x` the window count (default: each of o and w after x, o
 * and w, three times). LINES (default 2,000,000 lines of 10 records; 20,000 shows the fixed
 * cost of a job). Linux only (/proc).
 * `node --import tsx bench/eventtime-order.ts`
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalCluster } from '@weir/cli';
import { eventTimeJobCpuSeconds } from './taskmanager-cpu.js';
import { WORDS_PER_LINE } from './words.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const LINES = Number(process.env.LINES ?? 2_000_000);
const SEQ = (process.env.SEQ ?? 'x,o,w,x,o,w,x,o,w,x,w,o,x,w,o,x,w,o,o,w,w,o,o,w,w,o').split(',');
const MODES: Record<string, string> = { o: 'count', w: 'count-watermarks', x: 'window' };

for (const m of SEQ)
  if (!MODES[m]) throw new Error(`SEQ: '${m}' is none of ${Object.keys(MODES).join(', ')}`);
const cluster = new LocalCluster({
  taskManagers: 2,
  slots: 1,
  port: 0,
  dir: path.join(here, '.tmp-eventtime-order'),
  jobStore: false,
});
await cluster.start();
const rates = new Map<string, number[]>();
const inOrder: number[] = [];
try {
  let before = '(none)';
  for (const [i, m] of SEQ.entries()) {
    const cpu = await eventTimeJobCpuSeconds(cluster, MODES[m]!, LINES);
    const key = `${MODES[m]} after ${before === '(none)' ? before : MODES[before]}`;
    rates.set(key, [...(rates.get(key) ?? []), (LINES * WORDS_PER_LINE) / cpu]);
    inOrder.push((LINES * WORDS_PER_LINE) / cpu);
    before = m;
    process.stderr.write(`\r\x1b[2K  job ${i + 1}/${SEQ.length}`);
  }
} finally {
  process.stderr.write('\n');
  await cluster.stop();
}
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
console.log('records per TaskManager CPU-second, by the job before:');
for (const [k, v] of [...rates].sort()) console.log(`  ${k}: ${v.map(fmt).join(', ')}`);
console.log(`in the order run: ${inOrder.map(fmt).join(', ')}`);
