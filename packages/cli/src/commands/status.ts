import type { Command } from 'commander';
import { maskSecrets } from '@weir/core';
import { describeJob } from '@weir/client';
import { withClient } from '../connection.js';
import { addSecurityOptions, type SecurityCliOptions } from '../security-options.js';

/** `weir status`: the state of a job and its tasks. */
export function registerStatus(program: Command): void {
  const cmd = program
    .command('status')
    .description('show the state of a job and its tasks')
    .argument('<job-id>')
    .option('--jobmanager <host:port>', 'JobManager address')
    .option('--json', 'print JSON');
  addSecurityOptions(cmd, 'client').action(
    async (jobId: string, o: SecurityCliOptions & { jobmanager?: string; json?: boolean }) => {
      // the JobManager masks the secrets it knows; this masks those this process knows (WEIR_AUTH_TOKEN, S3 keys)
      const d = maskSecrets(await withClient(o, (c) => c.status(jobId)));
      console.log(o.json ? JSON.stringify(d, null, 2) : describeJob(d));
    },
  );
}
