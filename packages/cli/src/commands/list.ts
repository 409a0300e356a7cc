import type { Command } from 'commander';
import { shortStatus } from '@weir/client';
import { withClient } from '../connection.js';
import { addSecurityOptions, type SecurityCliOptions } from '../security-options.js';

/** `weir list`: the jobs of the cluster. */
export function registerList(program: Command): void {
  const cmd = program
    .command('list')
    .description('list the jobs of the cluster')
    .option('--jobmanager <host:port>', 'JobManager address')
    .option('--json', 'print JSON');
  addSecurityOptions(cmd, 'client').action(
    async (o: SecurityCliOptions & { jobmanager?: string; json?: boolean }) => {
      const { jobs } = await withClient(o, (c) => c.list());
      if (o.json) return console.log(JSON.stringify(jobs, null, 2));
      if (jobs.length === 0) return console.log('No jobs.');
      for (const j of jobs)
        console.log(
          `${j.jobId}  ${shortStatus(j.status).padEnd(10)} ${new Date(Number(j.startTime)).toISOString()}  ${j.name}`,
        );
    },
  );
}
