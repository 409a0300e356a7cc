import { Command, InvalidArgumentError } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadClusterConfig, parseAddress, parsePort, parsePositiveInt } from '@weir/core';
import { JobManager, toStorageUri } from '@weir/jobmanager';
import { TaskExecutor } from '@weir/taskmanager';
import { JobFileError } from '../bundler.js';
import { ClusterClient } from '../cluster-client.js';
import { resolveLocation, runJob } from '../commands/run.js';
import { describeCheckpoints, describeJob, shortStatus } from '../format.js';
import { LocalCluster, type ReadyMessage } from '../local-cluster.js';

const DEFAULT_JOBMANAGER = '127.0.0.1:6123';

function arg<T>(parse: (v: string, what: string) => T, what: string) {
  return (v: string): T => {
    try {
      return parse(v, what);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
}

/** --jobmanager, else WEIR_JOBMANAGER, else a local cluster started here, else the default port. */
function jobManagerAddress(flag: string | undefined): string {
  if (flag) return flag;
  if (process.env.WEIR_JOBMANAGER) return process.env.WEIR_JOBMANAGER;
  const clusterFile = path.resolve('.weir', 'cluster.json');
  if (existsSync(clusterFile)) {
    try {
      return (JSON.parse(readFileSync(clusterFile, 'utf8')) as { jobmanager: string }).jobmanager;
    } catch {
      /* fall through */
    }
  }
  return DEFAULT_JOBMANAGER;
}

function readyToParent(address: string): void {
  if (process.send) process.send({ type: 'ready', address } satisfies ReadyMessage);
}

/** One place owns the process signals: the first SIGTERM or SIGINT stops cleanly, a second forces. */
function onShutdown(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string): void => {
    if (stopping) process.exit(130);
    stopping = true;
    console.error(`${signal} received, shutting down`);
    stop().then(() => process.exit(0), (err) => {
      console.error(err);
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('disconnect', () => handler('parent gone'));
}

async function withClient<T>(flag: string | undefined, fn: (c: ClusterClient) => Promise<T>): Promise<T> {
  const c = await ClusterClient.connect(jobManagerAddress(flag));
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

const program = new Command();
program.name('weir').description('weir: distributed stream processing in TypeScript').showHelpAfterError();

program
  .command('jobmanager')
  .description('run a JobManager in this process')
  .option('--host <host>', 'interface to listen on', '127.0.0.1')
  .option('--port <port>', 'port to listen on (0: any free port)', arg(parsePort, '--port'), 6123)
  .option('--heartbeat-interval <ms>', 'heartbeat interval (default 1000)', arg(parsePositiveInt, '--heartbeat-interval'))
  .option('--heartbeat-timeout <ms>', 'a silent TaskManager is lost after this long (default 10000)', arg(parsePositiveInt, '--heartbeat-timeout'))
  .option('--slot-request-timeout <ms>', 'a job waiting for slots fails after this long', arg(parsePositiveInt, '--slot-request-timeout'), 300000)
  .option('--config <file>', 'cluster configuration file (YAML, Flink key names); flags win over it')
  .option('--checkpoint-dir <dir>', 'default checkpoint storage: a directory or s3://bucket/prefix (default .weir/checkpoints)')
  .option('--savepoint-dir <dir>', 'default savepoint target: a directory or s3://bucket/prefix (default .weir/savepoints)')
  .option('--job-store <dir>', 'keep running jobs here so a restarted JobManager resumes them: a directory or s3://bucket/prefix (default .weir/ha)')
  .option('--no-job-store', 'jobs do not survive a JobManager restart')
  .action(async (o: { host: string; port: number; heartbeatInterval?: number; heartbeatTimeout?: number; slotRequestTimeout: number; config?: string; checkpointDir?: string; savepointDir?: string; jobStore?: string | boolean }) => {
    const config = o.config ? loadClusterConfig(o.config) : undefined;
    const jm = new JobManager({
      host: o.host, port: o.port,
      heartbeatIntervalMs: o.heartbeatInterval ?? config?.heartbeatIntervalMs ?? 1000,
      heartbeatTimeoutMs: o.heartbeatTimeout ?? config?.heartbeatTimeoutMs ?? 10000,
      slotRequestTimeoutMs: o.slotRequestTimeout,
      checkpointStorage: toStorageUri(resolveLocation(o.checkpointDir ?? config?.checkpointDir ?? path.join('.weir', 'checkpoints'))),
      savepointDir: resolveLocation(o.savepointDir ?? config?.savepointDir ?? path.join('.weir', 'savepoints')),
      ...(config ? { checkpointDefaults: config.checkpoint } : {}),
      ...(config?.restartStrategy ? { restartStrategy: config.restartStrategy } : {}),
      ...(o.jobStore === false ? {} : { jobStore: toStorageUri(resolveLocation((typeof o.jobStore === 'string' ? o.jobStore : undefined) ?? config?.jobStore ?? path.join('.weir', 'ha'))) }),
    });
    const port = await jm.start();
    onShutdown(() => jm.stop());
    readyToParent(`${o.host}:${port}`);
  });

program
  .command('taskmanager')
  .description('run a TaskManager in this process')
  .requiredOption('--jobmanager <host:port>', 'JobManager to register with', arg(parseAddress, '--jobmanager'))
  .option('--slots <n>', 'number of task slots (one worker thread each)', arg(parsePositiveInt, '--slots'), 1)
  .option('--host <host>', 'interface to listen on', '127.0.0.1')
  .option('--advertised-host <host>', 'host other processes use to reach this TaskManager')
  .option('--port <port>', 'port for tasks and data exchange (0: any free port)', arg(parsePort, '--port'), 0)
  .option('--id <id>', 'TaskManager id (default: random)')
  .option('--work-dir <dir>', 'local working directory', path.join('.weir', 'work'))
  .action(async (o: { jobmanager: { host: string; port: number }; slots: number; host: string; advertisedHost?: string; port: number; id?: string; workDir: string }) => {
    const tm = new TaskExecutor({
      jobManagerAddress: `${o.jobmanager.host}:${o.jobmanager.port}`,
      slots: o.slots, host: o.host, port: o.port, workDir: path.resolve(o.workDir),
      ...(o.advertisedHost ? { advertisedHost: o.advertisedHost } : {}),
      ...(o.id ? { taskManagerId: o.id } : {}),
    });
    onShutdown(() => tm.stop());
    await tm.start();
    readyToParent(tm.boundAddress);
  });

const cluster = program.command('cluster').description('run a local cluster');
cluster
  .command('start')
  .description('start a JobManager and TaskManagers as child processes; Ctrl-C stops them all')
  .option('--taskmanagers <n>', 'number of TaskManagers', arg(parsePositiveInt, '--taskmanagers'), 2)
  .option('--slots <n>', 'slots per TaskManager', arg(parsePositiveInt, '--slots'), 2)
  .option('--port <port>', 'JobManager port (0: any free port)', arg(parsePort, '--port'), 6123)
  .option('--dir <dir>', 'directory for logs and working files', '.weir')
  .option('--slot-request-timeout <ms>', 'a job waiting for slots fails after this long', arg(parsePositiveInt, '--slot-request-timeout'))
  .option('--config <file>', 'cluster configuration file for the JobManager (YAML)')
  .action(async (o: { taskmanagers: number; slots: number; port: number; dir: string; slotRequestTimeout?: number; config?: string }) => {
    if (o.config) loadClusterConfig(o.config); // a bad file fails here, before any process starts
    const lc = new LocalCluster({
      taskManagers: o.taskmanagers, slots: o.slots, port: o.port, dir: path.resolve(o.dir),
      jobManagerArgs: [
        ...(o.slotRequestTimeout ? ['--slot-request-timeout', String(o.slotRequestTimeout)] : []),
        ...(o.config ? ['--config', path.resolve(o.config)] : []),
      ],
    });
    onShutdown(() => lc.stop());
    try {
      await lc.start((m) => console.log(m));
    } catch (err) {
      await lc.stop();
      throw err;
    }
    console.log(`Local cluster running: JobManager ${lc.jobManagerAddress}, ${o.taskmanagers} TaskManagers x ${o.slots} slots; logs in ${path.resolve(o.dir, 'logs')}. Ctrl-C stops it.`);
    readyToParent(lc.jobManagerAddress);
  });

program
  .command('run')
  .description('bundle a job file, submit it and follow it to its end')
  .argument('<job-file>', 'TypeScript or JavaScript job module')
  .argument('[args...]', 'arguments for the job, after --')
  .option('--jobmanager <host:port>', 'JobManager address (default: WEIR_JOBMANAGER, .weir/cluster.json or 127.0.0.1:6123)')
  .option('-p, --parallelism <n>', 'default parallelism of the job', arg(parsePositiveInt, '--parallelism'))
  .option('-d, --detached', 'submit and return the job id without waiting')
  .option('--local', 'start an embedded local cluster (JobManager and 2 TaskManagers) for this job, then stop it')
  .option('-s, --from-savepoint <path>', 'start from a savepoint or retained checkpoint (its directory or _metadata)')
  .option('--allow-non-restored-state', 'drop state of operators the job no longer has')
  .action(async (file: string, args: string[], o: { jobmanager?: string; parallelism?: number; detached?: boolean; local?: boolean; fromSavepoint?: string; allowNonRestoredState?: boolean }) => {
    if (o.jobmanager) parseAddress(o.jobmanager, '--jobmanager');
    let lc: LocalCluster | undefined;
    if (o.local) {
      if (o.detached) throw new Error('--local and --detached cannot be combined: the embedded cluster stops when the job ends');
      lc = new LocalCluster({ taskManagers: 2, slots: 2, port: 0, dir: path.resolve('.weir'), jobStore: false });
      onShutdown(() => lc!.stop());
      console.error('Starting a local cluster: 1 JobManager, 2 TaskManagers (logs in .weir/logs)');
      await lc.start();
    }
    try {
      process.exitCode = await runJob(file, {
        jobmanager: lc ? lc.jobManagerAddress : jobManagerAddress(o.jobmanager),
        args,
        ...(o.parallelism !== undefined ? { parallelism: o.parallelism } : {}),
        ...(o.detached ? { detached: true } : {}),
        ...(o.fromSavepoint ? { fromSavepoint: o.fromSavepoint } : {}),
        ...(o.allowNonRestoredState ? { allowNonRestoredState: true } : {}),
      });
    } finally {
      await lc?.stop();
    }
  });

program
  .command('list')
  .description('list the jobs of the cluster')
  .option('--jobmanager <host:port>', 'JobManager address')
  .option('--json', 'print JSON')
  .action(async (o: { jobmanager?: string; json?: boolean }) => {
    const { jobs } = await withClient(o.jobmanager, (c) => c.list());
    if (o.json) return console.log(JSON.stringify(jobs, null, 2));
    if (jobs.length === 0) return console.log('No jobs.');
    for (const j of jobs) console.log(`${j.jobId}  ${shortStatus(j.status).padEnd(10)} ${new Date(Number(j.startTime)).toISOString()}  ${j.name}`);
  });

program
  .command('status')
  .description('show the state of a job and its tasks')
  .argument('<job-id>')
  .option('--jobmanager <host:port>', 'JobManager address')
  .option('--json', 'print JSON')
  .action(async (jobId: string, o: { jobmanager?: string; json?: boolean }) => {
    const d = await withClient(o.jobmanager, (c) => c.status(jobId));
    console.log(o.json ? JSON.stringify(d, null, 2) : describeJob(d));
  });

program
  .command('checkpoints')
  .description('list the checkpoints of a job: status, timings, sizes, per-subtask breakdown')
  .argument('<job-id>')
  .option('--jobmanager <host:port>', 'JobManager address')
  .option('--json', 'print JSON')
  .action(async (jobId: string, o: { jobmanager?: string; json?: boolean }) => {
    const s = await withClient(o.jobmanager, (c) => c.checkpoints(jobId));
    console.log(o.json ? JSON.stringify(s, null, 2) : describeCheckpoints(s));
  });

program
  .command('savepoint')
  .description('take a savepoint of a running job')
  .argument('<job-id>')
  .argument('[target]', 'directory for the savepoint (default: the cluster\'s savepoint directory)')
  .option('--jobmanager <host:port>', 'JobManager address')
  .action(async (jobId: string, target: string | undefined, o: { jobmanager?: string }) => {
    console.error(`Triggering a savepoint of job ${jobId}...`);
    const p = await withClient(o.jobmanager, (c) => c.savepoint(jobId, target ? resolveLocation(target) : undefined, false));
    console.log(`Savepoint completed: ${p}`);
  });

program
  .command('cancel')
  .description('cancel a running job')
  .argument('<job-id>')
  .option('--jobmanager <host:port>', 'JobManager address')
  .option('--savepoint [target]', 'take a savepoint first, then cancel')
  .action(async (jobId: string, o: { jobmanager?: string; savepoint?: string | boolean }) => {
    if (o.savepoint !== undefined) {
      const target = typeof o.savepoint === 'string' ? resolveLocation(o.savepoint) : undefined;
      console.error(`Triggering a savepoint of job ${jobId}, then canceling it...`);
      const p = await withClient(o.jobmanager, (c) => c.savepoint(jobId, target, true));
      console.log(`Savepoint completed: ${p}`);
      console.log(`Cancellation of job ${jobId} requested`);
      return;
    }
    const r = await withClient(o.jobmanager, (c) => c.cancel(jobId));
    if (!r.accepted) throw new Error(r.message);
    console.log(`Cancellation of job ${jobId} requested`);
  });

program.parseAsync(process.argv).catch((err: Error & { details?: string; code?: number }) => {
  const msg = err instanceof JobFileError ? err.message : err.details ?? err.message;
  console.error(`weir: ${msg}`);
  process.exit(1);
});
