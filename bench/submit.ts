import { ClusterClient, runJob, type RunOptions } from '../packages/client/src/index.js';

/** Submits a job detached through the CLI's own path and returns its id (which runJob prints). */
export async function submitDetached(jobFile: string, opts: Omit<RunOptions, 'detached'>): Promise<string> {
  let jobId = '';
  const log = console.log;
  console.log = (...a: unknown[]) => {
    const m = /submitted with id (\w+)/.exec(String(a[0]));
    if (m) jobId = m[1]!;
  };
  try {
    await runJob(jobFile, { ...opts, detached: true });
  } finally {
    console.log = log;
  }
  if (!jobId) throw new Error(`submitting ${jobFile} printed no job id`);
  return jobId;
}

type JobDetails = Awaited<ReturnType<ClusterClient['status']>>;

/**
 * Submits a job detached and polls it to its end (every `pollMs`, `onPoll` with each status):
 * its final details, and the seconds between its start and end as the JobManager recorded them.
 * A failed or canceled job throws, naming `label`.
 */
export async function runToEnd(
  jobFile: string,
  opts: Omit<RunOptions, 'detached'> & { jobmanager: string },
  label: string,
  poll: { pollMs?: number; onPoll?: (d: JobDetails) => void } = {},
): Promise<{ details: JobDetails; seconds: number }> {
  const client = await ClusterClient.connect(opts.jobmanager);
  try {
    const jobId = await submitDetached(jobFile, opts);
    for (;;) {
      await new Promise((r) => setTimeout(r, poll.pollMs ?? 250));
      const d = await client.status(jobId);
      poll.onPoll?.(d);
      if (d.status === 'JOB_FINISHED')
        return { details: d, seconds: (Number(d.endTime) - Number(d.startTime)) / 1000 };
      if (d.status === 'JOB_FAILED' || d.status === 'JOB_CANCELED')
        throw new Error(`${label}: ${d.status} ${d.failureCause ?? ''}`);
    }
  } finally {
    client.close();
  }
}
