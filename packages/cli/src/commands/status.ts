import type { Command } from 'commander';
import { maskSecrets } from '@weir/core';
import { describeCluster, describeJob } from '@weir/client';
import { withClient } from '../connection.js';
import { addSecurityOptions, type SecurityCliOptions } from '../security-options.js';

/** `weir status [job-id]`: the state of a job and its tasks, or without an id the cluster's. */
export function registerStatus(program: Command): void {
  const cmd = program
    .command('status')
    .description(
      'show the state of a job and its tasks; without a job id, the cluster: TaskManagers, slots, the dashboard and the Prometheus endpoints',
    )
    .argument('[job-id]')
    .option('--jobmanager <host:port>', 'JobManager address')
    .option('--json', 'print JSON');
  addSecurityOptions(cmd, 'client').action(
    async (jobId: string | undefined, o: SecurityCliOptions & { jobmanager?: string; json?: boolean }) => {
      if (!jobId) {
        const c = await withClient(o, (c) => c.overview());
        console.log(o.json ? JSON.stringify(c, null, 2) : describeCluster(c));
        return;
      }
      // the JobManager masks the secrets it knows; this masks those this process knows (WEIR_AUTH_TOKEN, S3 keys)
      const d = maskSecrets(await withClient(o, (c) => c.status(jobId)));
      console.log(o.json ? JSON.stringify(d, null, 2) : describeJob(d));
    },
  );
}
