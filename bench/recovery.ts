/**
 * Recovery after kill -9 of a TaskManager: a keyed job with `keys` keys of state, checkpointed
 * every second, on a cluster with a spare slot; the TaskManager of a keyed subtask is killed
 * and the JobManager's restart record gives each step's time from the kill.
 */
import path from 'node:path';
import { ClusterClient } from '../packages/client/src/index.js';
import type { LocalCluster } from '@weir/cli';
import { submitDetached } from './submit.js';

export interface RecoveryTimes {
  detectionMs: number;
  redeployMs: number;
  stateRestoreMs: number;
  runningMs: number;
  firstCheckpointMs: number;
}

export async function measureRecovery(
  cluster: LocalCluster,
  jobFile: string,
  keys: number,
): Promise<RecoveryTimes> {
  const client = await ClusterClient.connect(cluster.jobManagerAddress);
  const jobId = await submitDetached(jobFile, {
    jobmanager: cluster.jobManagerAddress,
    args: [String(keys), '1000', '', '', '0'],
  });
  try {
    // state of every key exists once two checkpoints after the first completed
    for (;;) {
      await new Promise((r) => setTimeout(r, 200));
      const s = await client.checkpoints(jobId);
      if ((s.counts?.completed ?? 0) >= 3) break;
    }
    const d = await client.status(jobId);
    const keyed = d.vertices.find((v) => v.name.includes('KeyedProcess'))!;
    const victim = keyed.subtasks[0]!.taskManagerId;
    const pid = cluster.taskManagerPid(victim);
    if (!pid) throw new Error(`no process for ${victim}`);
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    for (;;) {
      await new Promise((r) => setTimeout(r, 100));
      const r = (await client.status(jobId)).restarts[0];
      process.stderr.write(
        `\r\x1b[2K  recovery with ${keys} keys: ${r ? (Number(r.firstCheckpointAt) ? 'done' : Number(r.runningAt) ? 'running, waiting for a checkpoint' : 'restarting') : 'waiting for detection'}`,
      );
      if (r && Number(r.firstCheckpointAt) > 0) {
        process.stderr.write('\n');
        return {
          detectionMs: Number(r.detectedAt) - killedAt,
          redeployMs: Number(r.deployedAt) - Number(r.detectedAt),
          stateRestoreMs: Number(r.stateRestoreMs),
          runningMs: Number(r.runningAt) - killedAt,
          firstCheckpointMs: Number(r.firstCheckpointAt) - killedAt,
        };
      }
    }
  } finally {
    await client.cancel(jobId).catch(() => {});
    client.close();
  }
}

export const recoveryJob = (here: string): string => path.join(here, 'jobs', 'large-state.ts');
