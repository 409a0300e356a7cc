import type { Command } from 'commander';
import { resolveLocation } from '@weir/client';
import { withClient } from '../connection.js';
import { addSecurityOptions, type SecurityCliOptions } from '../security-options.js';

/** `weir cancel`: cancel a job, optionally after a savepoint. */
export function registerCancel(program: Command): void {
  const cmd = program
    .command('cancel')
    .description('cancel a running job')
    .argument('<job-id>')
    .option('--jobmanager <host:port>', 'JobManager address')
    .option('--savepoint [target]', 'take a savepoint first, then cancel');
  addSecurityOptions(cmd, 'client').action(
    async (jobId: string, o: SecurityCliOptions & { jobmanager?: string; savepoint?: string | boolean }) => {
      if (o.savepoint !== undefined) {
        const target = typeof o.savepoint === 'string' ? resolveLocation(o.savepoint) : undefined;
        console.error(`Triggering a savepoint of job ${jobId}, then canceling it...`);
        const p = await withClient(o, (c) => c.savepoint(jobId, target, true));
        console.log(`Savepoint completed: ${p}`);
        console.log(`Cancellation of job ${jobId} requested`);
        return;
      }
      const r = await withClient(o, (c) => c.cancel(jobId));
      if (!r.accepted) throw new Error(r.message);
      console.log(`Cancellation of job ${jobId} requested`);
    },
  );
}
