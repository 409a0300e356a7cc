import { runJob, type RunOptions } from '../packages/client/src/index.js';

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
