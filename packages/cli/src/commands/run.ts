import type { Command } from 'commander';
import path from 'node:path';
import { parseAddress, parsePositiveInt } from '@weir/core';
import { runJob } from '@weir/client';
import { arg } from '../cli-args.js';
import { clientSecurity, jobManagerAddress } from '../connection.js';
import { LocalCluster } from '../local-cluster.js';
import { onShutdown } from '../process-lifecycle.js';
import {
  addSecurityOptions,
  applySecurity,
  securityArgs,
  type SecurityCliOptions,
} from '../security-options.js';

interface RunCliOptions extends SecurityCliOptions {
  jobmanager?: string;
  parallelism?: number;
  detached?: boolean;
  local?: boolean;
  fromSavepoint?: string;
  allowNonRestoredState?: boolean;
  workingDir?: string;
}

/** `weir run`: bundle, submit and follow a job, on a running cluster or an embedded one. */
export function registerRun(program: Command): void {
  const cmd = program
    .command('run')
    .description('bundle a job file, submit it and follow it to its end')
    .argument('<job-file>', 'TypeScript or JavaScript job module')
    .argument('[args...]', 'arguments for the job, after --')
    .option(
      '--jobmanager <host:port>',
      'JobManager address (default: WEIR_JOBMANAGER, .weir/cluster.json or 127.0.0.1:6123)',
    )
    .option('-p, --parallelism <n>', 'default parallelism of the job', arg(parsePositiveInt, '--parallelism'))
    .option('-d, --detached', 'submit and return the job id without waiting')
    .option(
      '--local',
      'start an embedded local cluster (JobManager and 2 TaskManagers) for this job, then stop it',
    )
    .option(
      '-s, --from-savepoint <path>',
      'start from a savepoint or retained checkpoint (its directory or _metadata)',
    )
    .option('--allow-non-restored-state', 'drop state of operators the job no longer has')
    .option(
      '--working-dir <dir>',
      'directory on the TaskManagers that relative paths in the job (FileSink, readTextFile) resolve against (default: the current directory; /var/lib/weir in the container image)',
    );
  addSecurityOptions(cmd, 'client').action(run);
}

async function run(file: string, args: string[], o: RunCliOptions): Promise<void> {
  if (o.jobmanager) parseAddress(o.jobmanager, '--jobmanager');
  let lc: LocalCluster | undefined;
  if (o.local) {
    if (o.detached)
      throw new Error(
        '--local and --detached cannot be combined: the embedded cluster stops when the job ends',
      );
    applySecurity(o, 'client');
    lc = new LocalCluster({
      taskManagers: 2,
      slots: 2,
      port: 0,
      dir: path.resolve('.weir'),
      jobStore: false,
      securityArgs: securityArgs(o, true),
    });
    onShutdown(() => lc!.stop());
    console.error('Starting a local cluster: 1 JobManager, 2 TaskManagers (logs in .weir/logs)');
    await lc.start();
  } else {
    clientSecurity(o);
  }
  try {
    process.exitCode = await runJob(file, {
      jobmanager: lc ? lc.jobManagerAddress : jobManagerAddress(o.jobmanager),
      args,
      ...(o.parallelism !== undefined ? { parallelism: o.parallelism } : {}),
      ...(o.detached ? { detached: true } : {}),
      ...(o.fromSavepoint ? { fromSavepoint: o.fromSavepoint } : {}),
      ...(o.allowNonRestoredState ? { allowNonRestoredState: true } : {}),
      ...(o.workingDir ? { workingDirectory: o.workingDir } : {}),
    });
  } finally {
    await lc?.stop();
  }
}
