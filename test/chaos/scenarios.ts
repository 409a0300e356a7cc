// The fault scenarios. Each runs test/chaos/job.ts on a fresh ChaosCluster, injects its fault a
// few times at random moments (from the seeded generator), and returns how many faults hit the
// running job; the runner then checks the output and looks for orphaned files.
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { ChaosCluster, sleep, type ClusterOptions } from './harness.js';

/** mulberry32: small, fast, and the same sequence for the same seed everywhere */
export class Rng {
  constructor(private s: number) {}
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** uniform in [lo, hi) */
  between(lo: number, hi: number): number {
    return Math.floor(lo + this.next() * (hi - lo));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
}

export interface RunContext {
  c: ChaosCluster;
  rng: Rng;
  /** the FileSink directory */
  out: string;
  records: number;
  note(msg: string): void;
  /** counts faults as they are injected, so a run that then fails still reports them */
  injected(n?: number): void;
}

export interface RunOutcome {
  faults: number;
  jobIds: string[];
}

export interface Scenario {
  name: string;
  title: string;
  cluster: ClusterOptions;
  records: number;
  rate: number;
  faultsPerRun: number;
  run(ctx: RunContext): Promise<RunOutcome>;
}

const INTERVAL = 500;

function jobArgs(
  ctx: RunContext,
  rate: number,
  parallelism: number,
  backend = 'heap',
  concurrent = 1,
): Array<string | number> {
  return [ctx.records, rate, ctx.out, parallelism, INTERVAL, backend, concurrent];
}

/**
 * The common shape: submit, then `faults` times: wait until every task runs, wait a random
 * moment, inject (unless the job has ended), and let the scenario recover; then the job's end.
 */
async function repeatedly(
  ctx: RunContext,
  s: Scenario,
  submitArgs: Array<string | number>,
  inject: (jobId: string, busy: string[]) => Promise<void>,
  gap: [number, number] = [1_000, 3_000],
  /** the injection calls ctx.injected itself (it injects more than one fault) */
  countsItself = false,
): Promise<RunOutcome> {
  const jobId = await ctx.c.submit(submitArgs);
  let faults = 0;
  for (let i = 0; i < s.faultsPerRun; i++) {
    const d = await ctx.c.running(jobId);
    if (d.status !== 'JOB_RUNNING') break;
    await sleep(ctx.rng.between(gap[0], gap[1]));
    const now = await ctx.c.status(jobId);
    if (now?.status !== 'JOB_RUNNING') break;
    await inject(jobId, ChaosCluster.busy(now));
    faults++;
    if (!countsItself) ctx.injected();
  }
  const end = await ctx.c.finished(jobId);
  ctx.note(`job ${jobId}: ${faults} faults, ${end.numRestarts} restarts`);
  return { faults, jobIds: [jobId] };
}

const tmJmPartition: Scenario = {
  name: 'tm-jm-partition',
  title: 'TaskManager partitioned from the JobManager (not from its peers), then healed',
  cluster: { taskManagers: 3, slots: 2 },
  records: 60_000,
  rate: 3_000,
  faultsPerRun: 3,
  run(ctx) {
    return repeatedly(ctx, this, jobArgs(ctx, this.rate, 3), async (_, busy) => {
      const tm = ctx.rng.pick(busy);
      const ms = ctx.rng.between(3_500, 7_000); // beyond the 3 s heartbeat timeout
      ctx.c.net.partition(tm, 'jm');
      await sleep(ms);
      ctx.c.net.heal(tm, 'jm');
      ctx.note(`${tm} cut from jm for ${ms} ms`);
    });
  },
};

const tmPeerPartition: Scenario = {
  name: 'tm-peer-partition',
  title: 'TaskManager partitioned from one peer only (data channels cut)',
  cluster: { taskManagers: 3, slots: 2 },
  records: 60_000,
  rate: 3_000,
  faultsPerRun: 4,
  run(ctx) {
    return repeatedly(ctx, this, jobArgs(ctx, this.rate, 3), async (_, busy) => {
      const a = ctx.rng.pick(busy);
      const b = ctx.rng.pick(busy.filter((x) => x !== a));
      const ms = ctx.rng.between(2_000, 8_000);
      ctx.c.net.partition(a, b);
      await sleep(ms);
      ctx.c.net.heal(a, b);
      ctx.note(`${a} cut from ${b} for ${ms} ms`);
    });
  },
};

const lossyLink: Scenario = {
  name: 'lossy-link',
  title: "30% packet loss and 200 ms delay on a TaskManager's link during checkpoints",
  cluster: { taskManagers: 3, slots: 2 },
  records: 60_000,
  rate: 3_000,
  faultsPerRun: 5,
  run(ctx) {
    return repeatedly(
      ctx,
      this,
      jobArgs(ctx, this.rate, 3),
      async (jobId, busy) => {
        const tm = ctx.rng.pick(busy);
        // during checkpoints: start while one is in flight
        await ctx.c
          .until(
            'a checkpoint in flight',
            async () => ((await ctx.c.checkpoints(jobId))?.counts?.inProgress ? true : undefined),
            10_000,
            20,
          )
          .catch(() => undefined);
        const ms = ctx.rng.between(2_000, 6_000);
        ctx.c.net.degrade(tm, 30, 200);
        await sleep(ms);
        ctx.c.net.restore(tm, 30);
        ctx.note(`${tm}: 30% loss, 200 ms delay (${ctx.c.net.degradeMethod}) for ${ms} ms`);
      },
      [500, 1_500],
    );
  },
};

const jmKill: Scenario = {
  name: 'jm-kill',
  title: 'JobManager kill -9 and restart while checkpoints are in flight (RocksDB, incremental)',
  cluster: { taskManagers: 3, slots: 2 },
  records: 60_000,
  rate: 3_000,
  faultsPerRun: 3,
  run(ctx) {
    return repeatedly(ctx, this, jobArgs(ctx, this.rate, 3, 'rocksdb-incremental', 2), async (jobId) => {
      await ctx.c.until(
        'a checkpoint in flight',
        async () => ((await ctx.c.checkpoints(jobId))?.counts?.inProgress ? true : undefined),
        10_000,
        20,
      );
      await sleep(ctx.rng.between(0, 150));
      await ctx.c.killJobManager();
      const down = ctx.rng.between(300, 2_000);
      await sleep(down);
      await ctx.c.startJobManager();
      ctx.note(`jm killed with a checkpoint in flight, down ${down} ms`);
    });
  },
};

const tmKillDuringRestore: Scenario = {
  name: 'tm-kill-in-restore',
  title: 'kill -9 of a TaskManager, and of another during the restore of the first (RocksDB)',
  cluster: { taskManagers: 3, slots: 2 },
  records: 60_000,
  rate: 3_000,
  faultsPerRun: 2,
  async run(ctx) {
    // each round is two kills
    const r = await repeatedly(
      ctx,
      this,
      jobArgs(ctx, this.rate, 3, 'rocksdb'),
      async (jobId, busy) => {
        const before = (await ctx.c.status(jobId))?.numRestarts ?? 0;
        const first = ctx.rng.pick(busy);
        await ctx.c.killTaskManager(first);
        ctx.injected();
        // the restart policy brings it back
        const back = sleep(300).then(() => ctx.c.startTaskManager(first));
        // the new attempt deploying and restoring: kill a TaskManager that takes part in it
        const d = await ctx.c.until(
          'the restore of the first kill',
          async () => {
            const s = await ctx.c.status(jobId);
            if (!s || s.numRestarts <= before) return undefined;
            const restoring = s.vertices
              .flatMap((v) => v.subtasks)
              .filter((t) => t.state === 'DEPLOYING' || t.state === 'SCHEDULED' || t.state === 'CREATED');
            return restoring.length && restoring.some((t) => t.taskManagerId) ? s : undefined;
          },
          30_000,
          20,
        );
        await sleep(ctx.rng.between(0, 100));
        const second = ctx.rng.pick(ChaosCluster.busy(d));
        await back;
        await ctx.c.killTaskManager(second);
        ctx.injected();
        await sleep(300);
        await ctx.c.startTaskManager(second);
        ctx.note(`killed ${first}, then ${second} during the restore`);
      },
      [1_000, 3_000],
      true,
    );
    return { ...r, faults: r.faults * 2 };
  },
};

/** Fills the tmpfs up to the last byte, so every checkpoint write fails with ENOSPC. */
function fill(dir: string): string {
  const f = path.join(dir, 'filler');
  const fd = openSync(f, 'w');
  const chunk = Buffer.alloc(1 << 20);
  try {
    for (;;) writeSync(fd, chunk);
  } catch {
    try {
      for (;;) writeSync(fd, chunk, 0, 4096);
    } catch {
      /* full */
    }
  } finally {
    closeSync(fd);
  }
  return f;
}

const storageFull: Scenario = {
  name: 'checkpoint-storage-full',
  title: 'checkpoint storage full (tmpfs), then space again',
  cluster: { taskManagers: 3, slots: 2, tmpfsMiB: 16 },
  records: 60_000,
  rate: 3_000,
  faultsPerRun: 3,
  run(ctx) {
    return repeatedly(ctx, this, jobArgs(ctx, this.rate, 3), async () => {
      const f = fill(ctx.c.checkpointDir);
      const ms = ctx.rng.between(2_000, 5_000);
      await sleep(ms);
      rmSync(f);
      const df = spawnSync('df', ['-k', ctx.c.checkpointDir], { encoding: 'utf8' }).stdout.split('\n')[1];
      ctx.note(`checkpoint tmpfs full for ${ms} ms (${df?.replace(/\s+/g, ' ')})`);
    });
  },
};

const s3Faults: Scenario = {
  name: 's3-unavailable-slow',
  title: 'S3 answering 503, or slow (2-4 s per request), then well again',
  cluster: { taskManagers: 3, slots: 2, s3: true },
  records: 60_000,
  rate: 3_000,
  faultsPerRun: 4,
  run(ctx) {
    let n = 0;
    return repeatedly(ctx, this, jobArgs(ctx, this.rate, 3), async () => {
      const ms = ctx.rng.between(2_000, 5_000);
      if (n++ % 2 === 0) {
        ctx.c.s3Fault({ kind: 'unavailable' });
        await sleep(ms);
        ctx.c.s3Fault({ kind: 'pass' });
        ctx.note(`S3 503 for ${ms} ms`);
      } else {
        const delayMs = ctx.rng.between(2_000, 4_000);
        ctx.c.s3Fault({ kind: 'slow', delayMs });
        await sleep(ms);
        ctx.c.s3Fault({ kind: 'pass' });
        ctx.note(`S3 slow (${delayMs} ms a request) for ${ms} ms`);
      }
    });
  },
};

const savepointRescale: Scenario = {
  name: 'savepoint-rescale',
  title: 'stop with a savepoint, resume at another parallelism into the same sink path',
  cluster: { taskManagers: 3, slots: 2 },
  records: 60_000,
  rate: 3_000,
  faultsPerRun: 3,
  async run(ctx) {
    const jobIds: string[] = [];
    const parallelisms = [2, 3, 1, 2];
    let jobId = await ctx.c.submit(jobArgs(ctx, this.rate, parallelisms[0]!));
    jobIds.push(jobId);
    let faults = 0;
    for (let i = 1; i <= this.faultsPerRun; i++) {
      const d = await ctx.c.running(jobId);
      if (d.status !== 'JOB_RUNNING') break;
      await sleep(ctx.rng.between(1_500, 4_000));
      const sp = await ctx.c.cancelWithSavepoint(jobId);
      const p = parallelisms[i % parallelisms.length]!;
      jobId = await ctx.c.submit(jobArgs(ctx, this.rate, p), { fromSavepoint: sp });
      jobIds.push(jobId);
      faults++;
      ctx.injected();
      ctx.note(`savepoint ${path.basename(sp)}; resumed at parallelism ${p} as ${jobId}`);
    }
    await ctx.c.finished(jobId);
    return { faults, jobIds };
  },
};

export const SCENARIOS: Scenario[] = [
  tmJmPartition,
  tmPeerPartition,
  lossyLink,
  jmKill,
  tmKillDuringRestore,
  storageFull,
  s3Faults,
  savepointRescale,
];
