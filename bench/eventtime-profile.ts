/**
 * CPU profiles of the event-time cost: runs the keyed count of bench/jobs/eventtime.ts without
 * and with timestamps and watermarks, each on its own local cluster (2 TaskManagers, p=2) whose
 * TaskManagers run with `--cpu-prof`, then prints each variant's hottest functions by self time
 * summed over the TaskManagers' profiles (main and slot threads), and weir's functions by
 * inclusive time.
 * `node --import tsx bench/eventtime-profile.ts`; LINES (default 2,000,000 lines of 10 records), TOP (default 25),
 * INTERVAL_US (the sampling interval, default V8's 1000), BENCH_TM_NODE_ARGS (more Node.js or V8
 * flags for the TaskManagers, e.g. --trace-turbo-inlining, whose output lands in
 * bench/.tmp-profile/<mode>/logs/taskmanager-*.log).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runJob } from '../packages/client/src/index.js';
import { LocalCluster } from '@weir/cli';

const here = path.dirname(fileURLToPath(import.meta.url));
const LINES = process.env.LINES ?? '2000000';
const TOP = Number(process.env.TOP ?? 25);
const INTERVAL_US = process.env.INTERVAL_US;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const frameName = (n: ProfileNode): string => {
  const cf = n.callFrame;
  const file = cf.url.replace(/^.*\/packages\//, '').replace(/^.*\/node_modules\//, 'nm/');
  return `${cf.functionName || '(anonymous)'} ${file}:${cf.lineNumber + 1}`;
};

/** Self and inclusive time (ms) per function over every profile in `dir`. */
function times(dir: string): { self: Map<string, number>; inclusive: Map<string, number> } {
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.cpuprofile'))) {
    const p = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Profile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    for (let i = 0; i < p.samples.length; i++) {
      const ms = (p.timeDeltas[i] ?? 0) / 1000;
      const leaf = byId.get(p.samples[i]!)!;
      self.set(frameName(leaf), (self.get(frameName(leaf)) ?? 0) + ms);
      const seen = new Set<string>();
      for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
        const name = frameName(byId.get(id)!);
        if (seen.has(name)) continue;
        seen.add(name);
        inclusive.set(name, (inclusive.get(name) ?? 0) + ms);
      }
    }
  }
  return { self, inclusive };
}

async function profile(mode: string): Promise<ReturnType<typeof times>> {
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
    taskManagerNodeArgs: [
      '--cpu-prof',
      `--cpu-prof-dir=${profDir}`,
      ...(INTERVAL_US ? [`--cpu-prof-interval=${INTERVAL_US}`] : []),
      ...(process.env.BENCH_TM_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
    ],
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
  return times(profDir);
}

const a = await profile('count');
const b = await profile('count-watermarks');
const sum = (m: Map<string, number>): number => [...m.values()].reduce((x, y) => x + y, 0);
const idle = (m: Map<string, number>): number => (m.get('(idle) :0') ?? 0) + (m.get('(program) :0') ?? 0);
console.log(
  `total self ms without event time ${sum(a.self).toFixed(0)} (idle+program ${idle(a.self).toFixed(0)}), with ${sum(b.self).toFixed(0)} (idle+program ${idle(b.self).toFixed(0)})`,
);
function table(title: string, x: Map<string, number>, y: Map<string, number>, only?: RegExp): void {
  const names = new Set([...x.keys(), ...y.keys()]);
  const rows = [...names]
    .filter((n) => !n.startsWith('(idle)') && (!only || only.test(n)))
    .map((n) => ({ n, a: x.get(n) ?? 0, b: y.get(n) ?? 0 }))
    .sort((p, q) => Math.max(q.a, q.b) - Math.max(p.a, p.b))
    .slice(0, TOP);
  console.log(`\n${title}\n| function | ms without | ms with | difference |\n|---|---:|---:|---:|`);
  for (const r of rows)
    console.log(`| ${r.n} | ${r.a.toFixed(0)} | ${r.b.toFixed(0)} | ${(r.b - r.a).toFixed(0)} |`);
}
table('self time', a.self, b.self);
table(
  "inclusive time of weir's functions",
  a.inclusive,
  b.inclusive,
  /(api|core|taskmanager)\/dist\/|garbage/,
);
