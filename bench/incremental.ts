/**
 * Incremental against full RocksDB checkpoints (BENCH_ONLY=incremental): 1M keys of state over
 * 2 subtasks, 1% of the keys changed between consecutive checkpoints, checkpoints to the local S3
 * server (s3rver); then the restore of 1M keys from the latest checkpoint of each kind, timed
 * in this process the way a task restores (download, checksum, write into a fresh RocksDB).
 */
import path from 'node:path';
import { ClusterClient } from '../packages/client/src/index.js';
import { LocalCluster } from '@weir/cli';
import {
  computeKeyGroupRangeForOperatorIndex,
  configureS3Storage,
  createCheckpointStorage,
  decodeRecords,
  resolveConfig,
  isIncrementalHandle,
  keyGroupRanges,
  parseCheckpointMetadata,
  type KeyedStateHandle,
} from '@weir/core';
import { restoreIncrementalState } from '../packages/taskmanager/src/state/incremental-snapshot.js';
import { RocksDBKeyedStateBackend } from '../packages/taskmanager/src/state/rocksdb-keyed-state-backend.js';
import { TestS3Server } from '../test/helpers/s3.js';
import { submitDetached } from './submit.js';

const KEYS = Number(process.env.BENCH_INCREMENTAL_KEYS ?? 1_000_000);
const CHANGED = Math.round(KEYS / 100);
/** checkpoints measured once every key is loaded */
const MEASURED = {
  full: 5,
  incremental: Math.min(45, Number(process.env.BENCH_INCREMENTAL_CHECKPOINTS ?? 45)),
};

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Run {
  sizes: number[];
  durations: number[];
  restoreMs: number[];
  keysRestored: number;
}

async function run(cluster: LocalCluster, here: string, mode: 'full' | 'incremental'): Promise<Run> {
  const client = await ClusterClient.connect(cluster.jobManagerAddress);
  const storage = `s3://weir/bench-${mode}`;
  const jobId = await submitDetached(path.join(here, 'jobs', 'incremental-state.ts'), {
    jobmanager: cluster.jobManagerAddress,
    args: [String(KEYS), String(CHANGED), mode, storage, '500'],
  });
  let completed: Awaited<ReturnType<ClusterClient['checkpoints']>>['history'] = [];
  try {
    // loading takes the first few checkpoints; from then on each covers one batch of changes
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      const [s, c] = await Promise.all([client.status(jobId), client.checkpoints(jobId)]);
      if (s.status !== 'JOB_RUNNING') throw new Error(`bench job ${s.status}: ${s.failureCause}`);
      completed = (c.history ?? []).filter((x) => x.status === 'COMPLETED');
      process.stderr.write(`\r\x1b[2K  ${mode}: ${completed.length} checkpoints, ${s.recordsIn} records`);
      // (the history keeps the last 50 checkpoints)
      if (Number(s.recordsIn) >= KEYS && Number(c.counts!.completed) >= 4 + MEASURED[mode]) break;
    }
    process.stderr.write('\n');
  } finally {
    await client.cancel(jobId);
  }
  const measured = completed.slice(-MEASURED[mode]);
  const latest = (await client.checkpoints(jobId)).latestCompleted!;
  client.close();
  // restore every subtask's key groups (parallelism 2) from the latest checkpoint, one after the other
  const md = parseCheckpointMetadata(
    (await createCheckpointStorage(latest.path).read('_metadata')).toString('utf8'),
    `${latest.path}/_metadata`,
  );
  const handles = Object.values(md.operators).flatMap((op) =>
    Object.values(op.subtasks)
      .map((s) => s.keyed)
      .filter((k): k is KeyedStateHandle => !!k),
  );
  const restoreMs: number[] = [];
  let keysRestored = 0;
  for (let subtask = 0; subtask < 2; subtask++) {
    const range = computeKeyGroupRangeForOperatorIndex(128, 2, subtask);
    const backend = new RocksDBKeyedStateBackend({
      directory: path.join(here, '.tmp', `restore-${mode}-${subtask}-${Date.now()}`),
      maxParallelism: 128,
      blockCacheSize: 8 << 20,
      writeBufferSize: 16 << 20,
    });
    await backend.open();
    const t0 = performance.now();
    const incremental = handles.filter(isIncrementalHandle);
    if (incremental.length > 0)
      await restoreIncrementalState(latest.path, incremental, backend, (kg) => range.contains(kg));
    for (const h of handles) {
      if (h.format !== undefined) continue;
      const data = await createCheckpointStorage(latest.path).read(h.path, h.sha256);
      for (const [kg, ranges] of Object.entries(h.index)) {
        if (!range.contains(Number(kg))) continue;
        for (const [off, len] of keyGroupRanges(ranges))
          backend.restoreEntries(h.kinds, decodeRecords(data.subarray(off, off + len)));
      }
    }
    backend.flush();
    restoreMs.push(Math.round(performance.now() - t0));
    keysRestored += backend.numKeys();
    await backend.dispose();
  }
  return {
    sizes: measured.map((c) => Number(c.stateSizeBytes)),
    durations: measured.map((c) => Number(c.durationMs)),
    restoreMs,
    keysRestored,
  };
}

export async function incrementalCheckpoints(here: string): Promise<void> {
  const s3 = await new TestS3Server().start();
  Object.assign(process.env, s3.env);
  // the cluster's processes read these variables at start-up; this one reads the checkpoints too
  configureS3Storage(resolveConfig({ env: process.env }).settings);
  // the canonical formats: native checkpoints (the default) take the place of both
  process.env.WEIR_STATE_BACKEND_ROCKSDB_NATIVE_CHECKPOINTS = 'false';
  const cluster = new LocalCluster({
    taskManagers: 2,
    slots: 1,
    port: 0,
    dir: path.join(here, '.tmp-incremental'),
    jobStore: false,
  });
  await cluster.start().finally(() => delete process.env.WEIR_STATE_BACKEND_ROCKSDB_NATIVE_CHECKPOINTS);
  let full: Run;
  let incr: Run;
  try {
    full = await run(cluster, here, 'full');
    incr = await run(cluster, here, 'incremental');
  } finally {
    await cluster.stop();
    await s3.stop();
  }
  const kb = (n: number): string => `${(n / 1024).toFixed(0)} KiB`;
  console.log('');
  console.log(
    `| ${KEYS.toLocaleString('en-US')} keys of RocksDB state (2 subtasks), ${CHANGED.toLocaleString('en-US')} keys (1%) changed between checkpoints, s3:// (s3rver) | full | incremental |`,
  );
  console.log('|---|---:|---:|');
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log(`| checkpoints measured (after loading) | ${full.sizes.length} | ${incr.sizes.length} |`);
  console.log(`| checkpoint size, median | ${kb(median(full.sizes))} | ${kb(median(incr.sizes))} |`);
  console.log(
    `| checkpoint size, mean (includes rewriting long chains) | ${kb(mean(full.sizes))} | ${kb(mean(incr.sizes))} |`,
  );
  console.log(
    `| checkpoint size, largest | ${kb(Math.max(...full.sizes))} | ${kb(Math.max(...incr.sizes))} |`,
  );
  console.log(
    `| checkpoint duration (trigger to _metadata), median | ${median(full.durations)} ms | ${median(incr.durations)} ms |`,
  );
  console.log(
    `| restore of the latest checkpoint, 2 subtasks one after the other | ${full.restoreMs.join(' + ')} ms | ${incr.restoreMs.join(' + ')} ms |`,
  );
  console.log(
    `| keys restored | ${full.keysRestored.toLocaleString('en-US')} | ${incr.keysRestored.toLocaleString('en-US')} |`,
  );
  console.log('');
  console.log(
    `incremental / full checkpoint size: median ${((median(incr.sizes) / median(full.sizes)) * 100).toFixed(2)}%, mean ${((mean(incr.sizes) / mean(full.sizes)) * 100).toFixed(2)}% (bar: at most 5%)`,
  );
  console.log(
    `incremental runs: sizes ${incr.sizes.map(kb).join(', ')}; durations ${incr.durations.join(', ')} ms. full runs: sizes ${full.sizes.map(kb).join(', ')}; durations ${full.durations.join(', ')} ms`,
  );
}
