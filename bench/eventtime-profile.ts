/**
 * CPU profiles of the event-time cost: runs the keyed count of bench/jobs/eventtime.ts without
 * and with timestamps and watermarks, each on its own local cluster (2 TaskManagers, p=2) whose
 * TaskManagers run with `--cpu-prof`, then prints each variant's hottest functions by self time
 * summed over the TaskManagers' profiles (main and slot threads).
 * `node --import tsx bench/eventtime-profile.ts`; LINES (default 2,000,000 lines of 10 records), TOP (default 25).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runJob } from '../packages/client/src/index.js';
import { LocalCluster } from '../packages/cli/src/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const LINES = process.env.LINES ?? '2000000';
const TOP = Number(process.env.TOP ?? 25);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time (ms) per function over every profile in `dir`. */
function selfTimes(dir: string): Map<string, number> {
  const total = new Map<string, number>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.cpuprofile'))) {
    const p = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Profile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    for (let i = 0; i < p.samples.length; i++) {
      const n = byId.get(p.samples[i]!)!;
      const cf = n.callFrame;
      const file = cf.url.replace(/^.*\/packages\//, '').replace(/^.*\/node_modules\//, 'nm/');
      const name = `${cf.functionName || '(anonymous)'} ${file}:${cf.lineNumber + 1}`;
      total.set(name, (total.get(name) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
    }
  }
  return total;
}

async function profile(mode: string): Promise<Map<string, number>> {
  const dir = path.join(here, '.tmp-profile', mode);
  const profDir = path.join(dir, 'prof');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(profDir, { recursive: true });
  const cluster = new LocalCluster({
    taskManagers: 2,
    slots: 1,
    port: 0,
    dir,
    jobStore: false,
    taskManagerNodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`],
  });
  await cluster.start();
  try {
    const code = await runJob(path.join(here, 'jobs', 'eventtime.ts'), {
      jobmanager: cluster.jobManagerAddress,
      args: [LINES, mode],
    });
    if (code !== 0) throw new Error(`eventtime.ts ${mode} ended with exit code ${code}`);
  } finally {
    await cluster.stop(20_000);
  }
  return selfTimes(profDir);
}

const without = await profile('count');
const withTs = await profile('count-watermarks');
const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
const idle = (m: Map<string, number>): number => (m.get('(idle) :0') ?? 0) + (m.get('(program) :0') ?? 0);
console.log(
  `total self ms without event time ${sum(without).toFixed(0)} (idle+program ${idle(without).toFixed(0)}), with ${sum(withTs).toFixed(0)} (idle+program ${idle(withTs).toFixed(0)})`,
);
const names = new Set([...without.keys(), ...withTs.keys()]);
const rows = [...names]
  .filter((n) => !n.startsWith('(idle)'))
  .map((n) => ({ n, a: without.get(n) ?? 0, b: withTs.get(n) ?? 0 }))
  .sort((x, y) => Math.max(y.a, y.b) - Math.max(x.a, x.b))
  .slice(0, TOP);
console.log('| function | ms without | ms with | difference |\n|---|---:|---:|---:|');
for (const r of rows)
  console.log(`| ${r.n} | ${r.a.toFixed(0)} | ${r.b.toFixed(0)} | ${(r.b - r.a).toFixed(0)} |`);
