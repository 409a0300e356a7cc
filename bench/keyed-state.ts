/**
 * Keyed state larger than the caches (BENCH_ONLY=keyed-state): a running count and sum per key,
 * keys drawn uniformly, checkpoints every second (bench/jobs/keyed-count.ts).
 *  - 1m, 1m-incremental: 1M keys on 3 TaskManagers x 2 slots, p=2, native checkpoints off: heap,
 *    RocksDB with canonical full and canonical incremental checkpoints, alternating.
 *  - 1m-native: heap and RocksDB with native checkpoints (the default) alternating on a cluster
 *    of their own; 1m-small-memory: RocksDB with 64 MB of managed memory per TaskManager.
 *  - 10m: 10M keys on 2 TaskManagers x 1 slot started with --max-old-space-size=256, RocksDB
 *    only (the heap backend cannot hold that state there), native checkpoints
 *    (BENCH_KEYED_10M_BACKEND picks the job's backend argument), BENCH_KEYED_RUNS_10M runs
 *    (default 1).
 * Records: BENCH_KEYED_RECORDS (1M keys, default 6M), BENCH_KEYED_RECORDS_10M (default 20M).
 * Alone: `node --import tsx bench/keyed-state.ts` (BENCH_KEYED_PARTS=1m,1m-incremental,1m-native,1m-small-memory,10m picks parts;
 * BENCH_CPU_PROF=<dir> writes a CPU profile of every TaskManager thread there).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rmSync } from 'node:fs';
import { LocalCluster } from '@weir/cli';
import { runToEnd } from './submit.js';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

/** Runs the job to its end; records/s between its start and end. */
async function run(cluster: LocalCluster, here: string, args: string[], label: string): Promise<number> {
  const { details, seconds } = await runToEnd(
    path.join(here, 'jobs', 'keyed-count.ts'),
    { jobmanager: cluster.jobManagerAddress, args },
    label,
    { pollMs: 500, onPoll: (d) => process.stderr.write(`\r\x1b[2K  ${label}: ${d.recordsIn} records`) },
  );
  process.stderr.write('\n');
  return Number(details.recordsIn) / seconds;
}

async function withCluster<T>(
  opts: ConstructorParameters<typeof LocalCluster>[0],
  f: (c: LocalCluster) => Promise<T>,
): Promise<T> {
  rmSync(opts.dir, { recursive: true, force: true });
  const cluster = new LocalCluster(opts);
  await cluster.start();
  try {
    return await f(cluster);
  } finally {
    await cluster.stop();
  }
}

export interface KeyedStateResults {
  heap1M: number[];
  rocks1M: number[];
  rocks1MIncremental: number[];
  rocks1MSmall: number[];
  rocks10M: number[];
  /** heap and native RocksDB checkpoints alternating on a cluster of their own ('1m-native') */
  heap1MNativeCluster: number[];
  rocks1MNative: number[];
}

export async function keyedStateThroughput(here: string, runs: number): Promise<KeyedStateResults> {
  const parts = new Set(
    (process.env.BENCH_KEYED_PARTS ?? '1m,1m-incremental,1m-native,1m-small-memory,10m').split(','),
  );
  const prof = process.env.BENCH_CPU_PROF;
  const nodeArgs = prof ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(prof)}`] : [];
  const records1M = Number(process.env.BENCH_KEYED_RECORDS ?? 6_000_000);
  const records10M = Number(process.env.BENCH_KEYED_RECORDS_10M ?? 20_000_000);
  const out: KeyedStateResults = {
    heap1M: [],
    rocks1M: [],
    rocks1MIncremental: [],
    rocks1MSmall: [],
    rocks10M: [],
    heap1MNativeCluster: [],
    rocks1MNative: [],
  };
  /** 3 TaskManagers x 2 slots started with one setting given as its WEIR_* variable */
  const withSetting = async (
    variable: string,
    value: string,
    dir: string,
    body: (cluster: LocalCluster) => Promise<void>,
  ): Promise<void> => {
    process.env[variable] = value;
    try {
      await withCluster(
        {
          taskManagers: 3,
          slots: 2,
          port: 0,
          dir: path.join(here, dir),
          jobStore: false,
          taskManagerNodeArgs: nodeArgs,
        },
        body,
      );
    } finally {
      delete process.env[variable];
    }
  };
  const job = (backend: string): string[] => [String(records1M), '1000000', '1000', backend];
  if (parts.has('1m') || parts.has('1m-rocksdb') || parts.has('1m-incremental'))
    // the canonical formats (native checkpoints off): every row read out at each full checkpoint,
    // or the changes recorded as delta operations (incremental)
    await withSetting(
      'WEIR_STATE_BACKEND_ROCKSDB_NATIVE_CHECKPOINTS',
      'false',
      '.tmp-keyed',
      async (cluster) => {
        for (let i = 0; i < runs; i++) {
          if (parts.has('1m')) out.heap1M.push(await run(cluster, here, job('heap'), '1M keys, heap'));
          if (parts.has('1m') || parts.has('1m-rocksdb'))
            out.rocks1M.push(
              await run(cluster, here, job('rocksdb'), '1M keys, RocksDB, canonical full checkpoints'),
            );
          if (parts.has('1m-incremental'))
            out.rocks1MIncremental.push(
              await run(
                cluster,
                here,
                job('rocksdb-incremental'),
                '1M keys, RocksDB, canonical incremental checkpoints',
              ),
            );
        }
      },
    );
  if (parts.has('1m-native'))
    // state.backend.rocksdb.native-checkpoints (the default, set here all the same): RocksDB
    // checkpoints link and upload the database's files instead of reading every row out (heap
    // jobs are unaffected)
    await withSetting(
      'WEIR_STATE_BACKEND_ROCKSDB_NATIVE_CHECKPOINTS',
      'true',
      '.tmp-keyed-native',
      async (c) => {
        for (let i = 0; i < runs; i++) {
          out.heap1MNativeCluster.push(await run(c, here, job('heap'), '1M keys, heap'));
          out.rocks1MNative.push(await run(c, here, job('rocksdb'), '1M keys, RocksDB, native checkpoints'));
        }
      },
    );
  if (parts.has('1m-small-memory'))
    // the same job with 64 MB of managed memory per TaskManager: about 80,000 of each subtask's
    // 500,000 keys fit its read cache, so most reads go to RocksDB
    await withSetting('WEIR_TASKMANAGER_MEMORY_MANAGED_SIZE', '64mb', '.tmp-keyed-small', async (c) => {
      for (let i = 0; i < runs; i++)
        out.rocks1MSmall.push(await run(c, here, job('rocksdb'), '1M keys, RocksDB, 64 MB managed memory'));
    });
  if (parts.has('10m'))
    await withCluster(
      {
        taskManagers: 2,
        slots: 1,
        port: 0,
        dir: path.join(here, '.tmp-keyed-10m'),
        jobStore: false,
        taskManagerNodeArgs: ['--max-old-space-size=256', ...nodeArgs],
      },
      async (cluster) => {
        for (let i = 0; i < Number(process.env.BENCH_KEYED_RUNS_10M ?? 1); i++)
          out.rocks10M.push(
            await run(
              cluster,
              here,
              [String(records10M), '10000000', '1000', process.env.BENCH_KEYED_10M_BACKEND ?? 'rocksdb'],
              '10M keys, RocksDB, 256 MB heap',
            ),
          );
      },
    );
  return out;
}

export function printKeyedState(r: KeyedStateResults): void {
  const m = (xs: number[]): string => (xs.length > 0 ? fmt(median(xs)) : '-');
  console.log('');
  console.log('| keyed count and sum, uniform keys, checkpoints every 1 s | records/s (median) |');
  console.log('|---|---:|');
  console.log(`| 1M keys, heap, 3 TaskManagers x 2 slots, p=2 | ${m(r.heap1M)} |`);
  console.log(
    `| 1M keys, RocksDB, canonical full checkpoints (native off), same cluster | ${m(r.rocks1M)} |`,
  );
  console.log(
    `| 1M keys, RocksDB, canonical incremental checkpoints (native off), same cluster | ${m(r.rocks1MIncremental)} |`,
  );
  console.log(
    `| 1M keys, RocksDB (native checkpoints), 64 MB managed memory per TaskManager (read cache: about 16% of the keys) | ${m(r.rocks1MSmall)} |`,
  );
  console.log(
    `| 1M keys, heap, on the cluster of the next row (same setup as the first row) | ${m(r.heap1MNativeCluster)} |`,
  );
  console.log(
    `| 1M keys, RocksDB, native checkpoints (the default; state.backend.rocksdb.native-checkpoints) | ${m(r.rocks1MNative)} |`,
  );
  console.log(
    `| 10M keys, RocksDB (${process.env.BENCH_KEYED_10M_BACKEND ?? 'rocksdb'}), 2 TaskManagers x 1 slot, --max-old-space-size=256, p=2 | ${m(r.rocks10M)} |`,
  );
  if (r.heap1M.length > 0 && r.rocks1M.length > 0)
    console.log(
      `\nRocksDB with canonical full checkpoints vs heap, 1M keys: ${((median(r.rocks1M) / median(r.heap1M)) * 100).toFixed(1)}% of the heap rate`,
    );
  if (r.heap1M.length > 0 && r.rocks1MIncremental.length > 0)
    console.log(
      `RocksDB with canonical incremental checkpoints vs heap, 1M keys: ${((median(r.rocks1MIncremental) / median(r.heap1M)) * 100).toFixed(1)}% of the heap rate`,
    );
  if (r.heap1MNativeCluster.length > 0 && r.rocks1MNative.length > 0)
    console.log(
      `RocksDB with native checkpoints vs heap on that cluster, 1M keys: ${((median(r.rocks1MNative) / median(r.heap1MNativeCluster)) * 100).toFixed(1)}% of the heap rate`,
    );
  console.log(
    `keyed-state runs: heap 1M ${r.heap1M.map(fmt).join(', ')}; RocksDB 1M ${r.rocks1M.map(fmt).join(', ')}; RocksDB 1M incremental ${r.rocks1MIncremental.map(fmt).join(', ')}; RocksDB 1M 64 MB ${r.rocks1MSmall.map(fmt).join(', ')}; RocksDB 10M ${r.rocks10M.map(fmt).join(', ')}; native cluster: heap ${r.heap1MNativeCluster.map(fmt).join(', ')}, RocksDB native ${r.rocks1MNative.map(fmt).join(', ')}`,
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const here = path.dirname(fileURLToPath(import.meta.url));
  printKeyedState(await keyedStateThroughput(here, Number(process.env.BENCH_RUNS ?? 1)));
}
