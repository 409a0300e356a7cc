import assert from 'node:assert/strict';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { until, untilJobFinished, type TestCluster } from './cli.js';

/**
 * Submits `job` detached with `args` and kills a TaskManager running its tasks `kills`
 * times (each once all tasks run again, after 0.7-1.4 s), then waits for the job to finish.
 * Gives how many kills hit the running job (caused a restart). `beforeKill`, if given, is
 * polled after the delay until it holds (say, a checkpoint of the new attempt completed).
 */
export async function runWithTaskManagerKills(
  cluster: TestCluster,
  job: string,
  args: string[],
  kills: number,
  beforeKill?: (client: ClusterClient, jobId: string) => Promise<boolean>,
): Promise<number> {
  const client = await ClusterClient.connect(cluster.address);
  try {
    const r = await cluster.run(['run', job, '--detached', '--', ...args]);
    assert.equal(r.code, 0, r.stderr);
    const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    let hits = 0;
    for (let round = 0; round < kills; round++) {
      const d = await until(
        'all tasks running',
        async () => {
          const s = await client.status(jobId);
          if (s.status === 'JOB_FINISHED' || s.status === 'JOB_FAILED') return s;
          return s.status === 'JOB_RUNNING' &&
            s.vertices.every((v) => v.subtasks.every((t) => t.state === 'RUNNING'))
            ? s
            : undefined;
        },
        60_000,
      );
      if (d.status !== 'JOB_RUNNING') break;
      await new Promise((res) => setTimeout(res, 700 + Math.random() * 700));
      if (beforeKill)
        await until(
          'ready for the kill',
          async () => ((await beforeKill(client, jobId)) ? true : undefined),
          30_000,
        );
      const busy = [...new Set(d.vertices.flatMap((v) => v.subtasks.map((t) => t.taskManagerId)))];
      const victim = busy[Math.floor(Math.random() * busy.length)]!;
      process.kill(cluster.taskManagerPid(victim), 'SIGKILL');
      const after = await until(
        'the job noticed the kill',
        async () => {
          const s = await client.status(jobId);
          return s.numRestarts > d.numRestarts || s.status !== 'JOB_RUNNING' ? s : undefined;
        },
        15_000,
      );
      if (after.numRestarts > d.numRestarts) hits++;
    }
    await untilJobFinished(client, jobId).catch(async (e: unknown) => {
      const s = await client.status(jobId);
      const states = s.vertices.map((v) => `${v.name}: ${v.subtasks.map((t) => t.state).join(',')}`);
      throw new Error(`${(e as Error).message}\n${states.join('\n')}`);
    });
    return hits;
  } finally {
    client.close();
  }
}
