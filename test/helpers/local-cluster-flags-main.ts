// Starts a LocalCluster of one TaskManager asked for --max-old-space-size=200, prints the
// command line and the MALLOC_ARENA_MAX of each of its processes as JSON, and stops it; args:
// <module exporting LocalCluster> <dir>. Run with Node.js flags of its own, which the cluster
// must not inherit.
import { readFileSync } from 'node:fs';
import type { LocalCluster as LocalClusterType } from '../../packages/cli/src/index.js';

const [mod, dir] = process.argv.slice(2);
const { LocalCluster } = (await import(mod!)) as { LocalCluster: typeof LocalClusterType };
const cluster = new LocalCluster({
  taskManagers: 1,
  slots: 1,
  port: 0,
  dir: dir!,
  metrics: false,
  jobStore: false,
  taskManagerNodeArgs: ['--max-old-space-size=200'],
});
try {
  await cluster.start();
  const argv = (pid: number): string[] =>
    readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  const arenas = (pid: number): string | null =>
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .find((e) => e.startsWith('MALLOC_ARENA_MAX='))
      ?.slice('MALLOC_ARENA_MAX='.length) ?? null;
  console.log(JSON.stringify(cluster.pids().map((pid) => ({ argv: argv(pid), arenas: arenas(pid) }))));
} finally {
  await cluster.stop();
}
