/**
 * CPU time of a local cluster's TaskManagers, for benchmarks that count records per CPU-second
 * (which load on a shared machine inflates far less than the wall clock). Linux only (/proc).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runJob } from '../packages/client/src/index.js';
import type { LocalCluster } from '@weir/cli';

const here = path.dirname(fileURLToPath(import.meta.url));

/** CPU seconds (user + system, all threads) of TaskManagers tm-1 and tm-2 so far; undefined without /proc. */
export function taskManagerCpuSeconds(cluster: LocalCluster): number | undefined {
  let ticks = 0;
  for (const id of ['tm-1', 'tm-2']) {
    const pid = cluster.taskManagerPid(id);
    if (pid === undefined || !existsSync(`/proc/${pid}/stat`)) return undefined;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
  }
  return ticks / 100; // USER_HZ
}

/**
 * The TaskManagers' CPU seconds for one run of bench/jobs/eventtime.ts (`lines` lines, `mode`
 * window, count or count-watermarks), deployment included; the client's progress not printed.
 */
export async function eventTimeJobCpuSeconds(
  cluster: LocalCluster,
  mode: string,
  lines: number,
): Promise<number> {
  const cpu = (): number => {
    const s = taskManagerCpuSeconds(cluster);
    if (s === undefined) throw new Error('TaskManager CPU time needs /proc (Linux)');
    return s;
  };
  const before = cpu();
  const log = console.log;
  console.log = () => {};
  let code: number;
  try {
    code = await runJob(path.join(here, 'jobs', 'eventtime.ts'), {
      jobmanager: cluster.jobManagerAddress,
      args: [String(lines), mode],
    });
  } finally {
    console.log = log;
  }
  if (code !== 0) throw new Error(`eventtime.ts ${mode} ended with exit code ${code}`);
  return cpu() - before;
}
