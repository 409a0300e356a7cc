import type { Command } from 'commander';
import { resolveLocation } from '@weir/client';
import { withClient } from '../connection.js';
import { addSecurityOptions, type SecurityCliOptions } from '../security-options.js';

/** `weir savepoint`: a savepoint of a running job. */
export function registerSavepoint(program: Command): void {
  const cmd = program
    .command('savepoint')
    .description('take a savepoint of a running job')
    .argument('<job-id>')
    .argument('[target]', "directory for the savepoint (default: the cluster's savepoint directory)")
    .option('--jobmanager <host:port>', 'JobManager address');
  addSecurityOptions(cmd, 'client').action(
    async (jobId: string, target: string | undefined, o: SecurityCliOptions & { jobmanager?: string }) => {
      console.error(`Triggering a savepoint of job ${jobId}...`);
      const p = await withClient(o, (c) =>
        c.savepoint(jobId, target ? resolveLocation(target) : undefined, false),
      );
      console.log(`Savepoint completed: ${p}`);
    },
  );
}
