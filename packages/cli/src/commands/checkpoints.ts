import type { Command } from 'commander';
import { maskSecrets } from '@weir/core';
import { describeCheckpoints } from '@weir/client';
import { withClient } from '../connection.js';
import { addSecurityOptions, type SecurityCliOptions } from '../security-options.js';

/** `weir checkpoints`: the checkpoint statistics of a job. */
export function registerCheckpoints(program: Command): void {
  const cmd = program
    .command('checkpoints')
    .description('list the checkpoints of a job: status, timings, sizes, per-subtask breakdown')
    .argument('<job-id>')
    .option('--jobmanager <host:port>', 'JobManager address')
    .option('--json', 'print JSON');
  addSecurityOptions(cmd, 'client').action(
    async (jobId: string, o: SecurityCliOptions & { jobmanager?: string; json?: boolean }) => {
      const s = maskSecrets(await withClient(o, (c) => c.checkpoints(jobId)));
      console.log(o.json ? JSON.stringify(s, null, 2) : describeCheckpoints(s));
    },
  );
}
