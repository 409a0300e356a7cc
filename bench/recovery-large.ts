/**
 * Recovery of large RocksDB state after kill -9 (BENCH_ONLY=recovery-large): a keyed job with
 * BENCH_RECOVERY_LARGE_KEYS keys (default 2M; the bar is stated for 10M) on RocksDB, full
 * checkpoints to file:// storage. Two clusters:
 * - remote restore: 3 TaskManagers x 1 slot, the job on 2; the killed TaskManager's task moves
 *   to the spare and downloads its state from checkpoint storage;
 * - local recovery: 2 TaskManagers x 1 slot with state.backend.local-recovery and a standby
 *   TaskManager (`weir cluster start --standby-taskmanager`): the standby, started ahead with its
 *   slot workers loaded, takes the killed TaskManager's id, gets its task back and restores from
 *   its local copy: RocksDB opens its local checkpoint, the database files as they were at the
 *   checkpoint;
 * - local-restart: the same without a standby: the local cluster starts the killed TaskManager
 *   again as a new process under its id (the time includes that process start);
 * - remote restore from S3: as the first, with checkpoints on a local S3 server (s3rver, started
 *   here), so the restore downloads over HTTP.
 * BENCH_RECOVERY_LARGE_MODES picks them (default remote,local,s3; local-restart on request);
 * BENCH_RECOVERY_LARGE_NATIVE=1 takes native RocksDB checkpoints instead of full ones. Beside them, the raw read
 * bandwidth of the checkpoint's files (a plain read of every file of the restored checkpoint,
 * same run, the page cache warm as it is for the restore; for S3 one GetObject after another
 * with the AWS SDK client).
 */
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { ClusterClient } from '../packages/client/src/index.js';
import { LocalCluster } from '@weir/cli';
import { TestS3Server } from '../test/helpers/s3.js';
import { submitDetached } from './submit.js';

/** BENCH_RECOVERY_LARGE_NATIVE=1: native RocksDB checkpoints (the databases' files) in every mode */
const NATIVE = process.env.BENCH_RECOVERY_LARGE_NATIVE === '1';

type Mode = 'remote' | 'local' | 'local-restart' | 's3';
const TITLES: Record<Mode, string> = {
  remote: 'remote restore (file://)',
  local: 'local recovery, standby TaskManager (file://)',
  'local-restart': 'local recovery, TaskManager process started again (file://)',
  s3: 'remote restore (s3://, s3rver)',
};

interface LargeRecovery {
  mode: string;
  keys: number;
  stateBytes: number;
  checkpointMs: number;
  runningMs: number;
  stateRestoreMs: number;
  detectionMs: number;
  localRestores: number;
  /** of those, opened from a local RocksDB checkpoint (the database's files) */
  localCheckpointRestores: number;
  /** of those, opened in its recovered form (no write-ahead log to replay) */
  recoveredFormRestores: number;
  rawReadMBps: number;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)],
  );
}

/** MB/s of GetObject of every object under an s3:// checkpoint path, one after another. */
async function rawS3ReadBandwidth(server: TestS3Server, uri: string): Promise<number> {
  const u = new URL(uri.replace(/^s3:/, 'http:'));
  const bucket = u.host;
  const keys = await server.keys(u.pathname.replace(/^\/+/, ''));
  const client = server.client();
  let bytes = 0;
  const t0 = performance.now();
  for (const key of keys) {
    const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    bytes += (await r.Body!.transformToByteArray()).byteLength;
  }
  client.destroy();
  return bytes / 1e6 / ((performance.now() - t0) / 1000);
}

/**
 * What the baseline reads: the checkpoint's directory, or with native checkpoints (whose files
 * are shared files beside it) the job's directory, which then holds the files of the retained
 * checkpoint and little else.
 */
function baselineOf(checkpointPath: string): string {
  return NATIVE ? checkpointPath.replace(/\/chk-\d+\/?$/, '') : checkpointPath;
}

/** MB/s of a plain read of every file of a checkpoint directory. */
function rawReadBandwidth(dir: string): number {
  const files = filesUnder(dir);
  const bytes = files.reduce((s, f) => s + statSync(f).size, 0);
  const t0 = performance.now();
  for (const f of files) readFileSync(f);
  return bytes / 1e6 / ((performance.now() - t0) / 1000);
}

async function measure(here: string, mode: Mode, keys: number): Promise<LargeRecovery> {
  const local = mode === 'local' || mode === 'local-restart';
  // the cluster's processes read the S3 settings from the environment when they start
  const s3 = mode === 's3' ? await new TestS3Server().start() : undefined;
  const saved = { ...process.env };
  if (s3) Object.assign(process.env, s3.env);
  const dir = path.join(here, `.tmp-recovery-large-${mode}`);
  // a fresh directory: the logs (appended to) are where local restores are counted
  rmSync(dir, { recursive: true, force: true });
  const cluster = new LocalCluster({
    taskManagers: local ? 2 : 3,
    slots: 1,
    port: 0,
    dir,
    jobStore: false,
    securityArgs: [
      ...(local ? ['-D', 'state.backend.local-recovery=true'] : []),
      '-D',
      `state.backend.rocksdb.native-checkpoints=${NATIVE}`,
    ],
    // the killed TaskManager's id and local state go to a process started ahead
    standbyTaskManager: mode === 'local',
  });
  await cluster.start();
  const client = await ClusterClient.connect(cluster.jobManagerAddress);
  try {
    const jobId = await submitDetached(path.join(here, 'jobs', 'large-state.ts'), {
      jobmanager: cluster.jobManagerAddress,
      args: [String(keys), '2000', s3 ? 's3://weir/bench-recovery-large' : '', 'rocksdb', '0'],
    });
    // every key has state once the source has emitted `keys` records; then one more checkpoint
    let completedAtFull = -1;
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      const d = await client.status(jobId);
      const emitted = d.vertices
        .find((v) => v.name.includes('Keys'))!
        .subtasks.reduce((s, t) => s + Number(t.recordsOut), 0);
      const completed = (await client.checkpoints(jobId)).counts?.completed ?? 0;
      process.stderr.write(
        `\r\x1b[2K  ${mode}: ${emitted} of ${keys} keys written, ${completed} checkpoints`,
      );
      if (completedAtFull < 0 && emitted >= keys) completedAtFull = completed;
      if (completedAtFull >= 0 && completed >= completedAtFull + 2) break;
    }
    const stats = await client.checkpoints(jobId);
    const latest = stats.latestCompleted!;
    const d = await client.status(jobId);
    const keyed = d.vertices.find((v) => v.name.includes('KeyedProcess'))!;
    const victim = keyed.subtasks[0]!.taskManagerId;
    const killedAt = Date.now();
    process.kill(cluster.taskManagerPid(victim)!, 'SIGKILL');
    for (;;) {
      await new Promise((r) => setTimeout(r, 100));
      const r = (await client.status(jobId)).restarts[0];
      if (r && Number(r.runningAt) > 0) {
        process.stderr.write('\n');
        const logs = path.join(cluster.opts.dir, 'logs');
        const restores = readdirSync(logs)
          .filter((f) => f.startsWith('taskmanager'))
          .flatMap((f) => readFileSync(path.join(logs, f), 'utf8').split('\n'))
          .filter((l) => l.includes('restored from local copies') && l.includes('KeyedProcess'));
        const exitNoticed = cluster.restarts[0]?.at;
        if (exitNoticed)
          process.stderr.write(
            `  the local cluster noticed the exit ${exitNoticed - killedAt} ms after the kill\n`,
          );
        return {
          mode,
          keys,
          stateBytes: Number(latest.stateSizeBytes),
          checkpointMs: Number(latest.durationMs ?? 0),
          runningMs: Number(r.runningAt) - killedAt,
          stateRestoreMs: Number(r.stateRestoreMs),
          detectionMs: Number(r.detectedAt) - killedAt,
          localRestores: restores.length,
          localCheckpointRestores: restores.filter((l) => l.includes('local RocksDB checkpoint')).length,
          recoveredFormRestores: restores.filter((l) => l.includes('"localCheckpointsRecovered":1')).length,
          rawReadMBps: s3
            ? await rawS3ReadBandwidth(s3, baselineOf(latest.path))
            : rawReadBandwidth(fileURLToPath(baselineOf(latest.path))),
        };
      }
    }
  } finally {
    client.close();
    await cluster.stop();
    await s3?.stop();
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  }
}

export async function recoveryLarge(here: string): Promise<void> {
  const keys = Number(process.env.BENCH_RECOVERY_LARGE_KEYS ?? 2_000_000);
  console.log(
    `recovery-large: ${keys.toLocaleString('en-US')} keys of RocksDB state, parallelism 2, ${NATIVE ? "native checkpoints (the databases' files)" : 'full checkpoints (canonical format)'}`,
  );
  const modes = (process.env.BENCH_RECOVERY_LARGE_MODES ?? 'remote,local,s3').split(',') as Mode[];
  for (const m of modes)
    if (!(m in TITLES)) throw new Error(`BENCH_RECOVERY_LARGE_MODES: unknown mode '${m}'`);
  const runs: LargeRecovery[] = [];
  for (const m of modes) runs.push(await measure(here, m, keys));
  console.log('');
  console.log(
    `| recovery after kill -9, ${keys.toLocaleString('en-US')} keys RocksDB | ${modes.map((m) => TITLES[m]).join(' | ')} |`,
  );
  console.log(`|---|${modes.map(() => '---:').join('|')}|`);
  const row = (name: string, f: (r: LargeRecovery) => string): void =>
    console.log(`| ${name} | ${runs.map(f).join(' | ')} |`);
  // native checkpoints count the bytes they uploaded (table files new since the last one)
  row('checkpoint size (bytes written)', (r) => `${(r.stateBytes / 1e6).toFixed(1)} MB`);
  row('checkpoint duration (latest before the kill)', (r) => `${r.checkpointMs} ms`);
  row('kill to detection', (r) => `${r.detectionMs} ms`);
  row('kill to all tasks RUNNING', (r) => `${r.runningMs} ms`);
  row('state restore (slowest task)', (r) => `${r.stateRestoreMs} ms`);
  row('keyed subtasks restored from local copies', (r) => String(r.localRestores));
  row('of those, opened from a local RocksDB checkpoint', (r) => String(r.localCheckpointRestores));
  row('of those, in its recovered form (no log replay)', (r) => String(r.recoveredFormRestores));
  row('raw read of the checkpoint files (baseline)', (r) => `${r.rawReadMBps.toFixed(0)} MB/s`);
  console.log('');
}
