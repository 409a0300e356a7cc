import { Command, InvalidArgumentError } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { checkExposure, loadClusterConfig, maskSecrets, maskString, registerEnvironmentSecrets, parseAddress, parsePort, parsePositiveInt, type ClusterConfig } from '@weir/core';
import { JobManager, toStorageUri } from '@weir/jobmanager';
import { TaskExecutor } from '@weir/taskmanager';
import { JobFileError } from '../bundler.js';
import { ClusterClient } from '../cluster-client.js';
import { resolveLocation, runJob } from '../commands/run.js';
import { describeCheckpoints, describeJob, shortStatus } from '../format.js';
import { LocalCluster, type ReadyMessage } from '../local-cluster.js';
import { createDevCertificates } from '../certs.js';
import {
  addSecurityOptions, applySecurity, securityArgs, securityRecord, type ClusterSecurityRecord, type SecurityCliOptions,
} from '../security-options.js';

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

interface ClusterFile {
  jobmanager: string;
  security?: ClusterSecurityRecord;
}

function readClusterFile(): ClusterFile | undefined {
  const clusterFile = path.resolve('.weir', 'cluster.json');
  if (!existsSync(clusterFile)) return undefined;
  try {
    return JSON.parse(readFileSync(clusterFile, 'utf8')) as ClusterFile;
  } catch {
    return undefined;
  }
}

/** --jobmanager, else WEIR_JOBMANAGER, else a local cluster started here, else the default port. */
function jobManagerAddress(flag: string | undefined): string {
  if (flag) return flag;
  if (process.env.WEIR_JOBMANAGER) return process.env.WEIR_JOBMANAGER;
  return readClusterFile()?.jobmanager ?? DEFAULT_JOBMANAGER;
}

/**
 * A client command's security: its flags and --config, else (when it talks to the local cluster
 * of this directory) what `weir cluster start` recorded, plus WEIR_AUTH_TOKEN.
 */
function clientSecurity(o: SecurityCliOptions & { jobmanager?: string }): void {
  const given = o.config || o.sslCa || o.sslCert || o.tokenFile;
  const cf = !given && !o.jobmanager && !process.env.WEIR_JOBMANAGER ? readClusterFile() : undefined;
  applySecurity(given || !cf?.security ? o : { ...cf.security, ...o }, 'client');
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

async function withClient<T>(o: SecurityCliOptions & { jobmanager?: string }, fn: (c: ClusterClient) => Promise<T>): Promise<T> {
  clientSecurity(o);
  const c = await ClusterClient.connect(jobManagerAddress(o.jobmanager));
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

const program = new Command();
program.name('weir').description('weir: distributed stream processing in TypeScript').showHelpAfterError();

addSecurityOptions(program
  .command('jobmanager')
  .description('run a JobManager in this process')
  .option('--host <host>', 'interface to listen on (a non-loopback address needs TLS and a token, or --insecure)', '127.0.0.1')
  .option('--port <port>', 'port to listen on (0: any free port)', arg(parsePort, '--port'), 6123)
  .option('--heartbeat-interval <ms>', 'heartbeat interval (default 1000)', arg(parsePositiveInt, '--heartbeat-interval'))
  .option('--heartbeat-timeout <ms>', 'a silent TaskManager is lost after this long (default 10000)', arg(parsePositiveInt, '--heartbeat-timeout'))
  .option('--slot-request-timeout <ms>', 'a job waiting for slots fails after this long', arg(parsePositiveInt, '--slot-request-timeout'), 300000)
  .option('--checkpoint-dir <dir>', 'default checkpoint storage: a directory or s3://bucket/prefix (default .weir/checkpoints)')
  .option('--savepoint-dir <dir>', 'default savepoint target: a directory or s3://bucket/prefix (default .weir/savepoints)')
  .option('--job-store <dir>', 'keep running jobs here so a restarted JobManager resumes them: a directory or s3://bucket/prefix (default .weir/ha)')
  .option('--no-job-store', 'jobs do not survive a JobManager restart'), 'server')
  .action(async (o: SecurityCliOptions & { host: string; port: number; heartbeatInterval?: number; heartbeatTimeout?: number; slotRequestTimeout: number; checkpointDir?: string; savepointDir?: string; jobStore?: string | boolean }) => {
    const config = o.config ? loadClusterConfig(o.config) : undefined;
    applySecurity(o, 'server', config);
    const jm = new JobManager({
      host: o.host, port: o.port,
      heartbeatIntervalMs: o.heartbeatInterval ?? config?.heartbeatIntervalMs ?? 1000,
      heartbeatTimeoutMs: o.heartbeatTimeout ?? config?.heartbeatTimeoutMs ?? 10000,
      slotRequestTimeoutMs: o.slotRequestTimeout,
      checkpointStorage: toStorageUri(resolveLocation(o.checkpointDir ?? config?.checkpointDir ?? path.join('.weir', 'checkpoints'))),
      savepointDir: resolveLocation(o.savepointDir ?? config?.savepointDir ?? path.join('.weir', 'savepoints')),
      ...(config ? { checkpointDefaults: config.checkpoint } : {}),
      ...(config?.stateBackend ? { stateBackend: config.stateBackend } : {}),
      ...(config?.incrementalCheckpoints !== undefined ? { incrementalCheckpoints: config.incrementalCheckpoints } : {}),
      ...(config?.restartStrategy ? { restartStrategy: config.restartStrategy } : {}),
      ...(o.jobStore === false ? {} : { jobStore: toStorageUri(resolveLocation((typeof o.jobStore === 'string' ? o.jobStore : undefined) ?? config?.jobStore ?? path.join('.weir', 'ha'))) }),
      ...(config?.security.allowedDirs ? { allowedStorageDirs: config.security.allowedDirs.map(resolveLocation) } : {}),
      ...(o.insecure ? { insecure: true } : {}),
    });
    const port = await jm.start();
    onShutdown(() => jm.stop());
    readyToParent(`${o.host}:${port}`);
  });

addSecurityOptions(program
  .command('taskmanager')
  .description('run a TaskManager in this process')
  .requiredOption('--jobmanager <host:port>', 'JobManager to register with', arg(parseAddress, '--jobmanager'))
  .option('--slots <n>', 'number of task slots (one worker thread each)', arg(parsePositiveInt, '--slots'), 1)
  .option('--host <host>', 'interface to listen on', '127.0.0.1')
  .option('--advertised-host <host>', 'host other processes use to reach this TaskManager')
  .option('--port <port>', 'port for tasks and data exchange (0: any free port)', arg(parsePort, '--port'), 0)
  .option('--id <id>', 'TaskManager id (default: random)')
  .option('--work-dir <dir>', 'local working directory', path.join('.weir', 'work'))
  .option('--state-dir <dir>', 'local state directory root for RocksDB state; this TaskManager uses <dir>/<id> (default: state.backend.rocksdb.localdir, else .weir/tm-state)'), 'server')
  .action(async (o: SecurityCliOptions & { jobmanager: { host: string; port: number }; slots: number; host: string; advertisedHost?: string; port: number; id?: string; workDir: string; stateDir?: string }) => {
    const config = o.config ? loadClusterConfig(o.config) : undefined;
    const sec = applySecurity(o, 'server', config);
    const refusal = checkExposure(o.host, sec, 'TaskManager', o.insecure ?? false);
    if (refusal) throw new Error(refusal);
    const stateDir = o.stateDir ?? config?.rocksdbLocalDir;
    const tm = new TaskExecutor({
      jobManagerAddress: `${o.jobmanager.host}:${o.jobmanager.port}`,
      slots: o.slots, host: o.host, port: o.port, workDir: path.resolve(o.workDir),
      ...(stateDir ? { stateDir: path.resolve(stateDir) } : {}),
      ...(config?.rocksdbBlockCacheSize ? { rocksdbBlockCacheSize: config.rocksdbBlockCacheSize } : {}),
      ...(config?.rocksdbWriteBufferSize ? { rocksdbWriteBufferSize: config.rocksdbWriteBufferSize } : {}),
      ...(o.advertisedHost ? { advertisedHost: o.advertisedHost } : {}),
      ...(o.id ? { taskManagerId: o.id } : {}),
    });
    onShutdown(() => tm.stop());
    await tm.start();
    readyToParent(tm.boundAddress);
  });

const cluster = program.command('cluster').description('run a local cluster');
addSecurityOptions(cluster
  .command('start')
  .description('start a JobManager and TaskManagers as child processes; Ctrl-C stops them all')
  .option('--taskmanagers <n>', 'number of TaskManagers', arg(parsePositiveInt, '--taskmanagers'), 2)
  .option('--slots <n>', 'slots per TaskManager', arg(parsePositiveInt, '--slots'), 2)
  .option('--port <port>', 'JobManager port (0: any free port)', arg(parsePort, '--port'), 6123)
  .option('--dir <dir>', 'directory for logs and working files', '.weir')
  .option('--slot-request-timeout <ms>', 'a job waiting for slots fails after this long', arg(parsePositiveInt, '--slot-request-timeout'))
  .option('--taskmanager-node-args <flags>', 'Node.js flags for the TaskManager processes, space-separated, e.g. "--max-old-space-size=256"')
  , 'client')
  .action(async (o: SecurityCliOptions & { taskmanagers: number; slots: number; port: number; dir: string; slotRequestTimeout?: number; taskmanagerNodeArgs?: string }) => {
    // a bad file or certificate fails here, before any process starts; this process talks to the JobManager as a client
    const config = o.config ? loadClusterConfig(o.config) : undefined;
    applySecurity(o, 'client', config);
    const security = securityRecord(o);
    const lc = new LocalCluster({
      taskManagers: o.taskmanagers, slots: o.slots, port: o.port, dir: path.resolve(o.dir),
      jobManagerArgs: [
        ...(o.slotRequestTimeout ? ['--slot-request-timeout', String(o.slotRequestTimeout)] : []),
      ],
      securityArgs: securityArgs(o, true),
      ...(security ? { clusterFileExtra: { security } } : {}),
      ...(o.taskmanagerNodeArgs ? { taskManagerNodeArgs: o.taskmanagerNodeArgs.split(/\s+/).filter(Boolean) } : {}),
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
  .action(async (file: string, args: string[], o: SecurityCliOptions & { jobmanager?: string; parallelism?: number; detached?: boolean; local?: boolean; fromSavepoint?: string; allowNonRestoredState?: boolean }) => {
    if (o.jobmanager) parseAddress(o.jobmanager, '--jobmanager');
    let lc: LocalCluster | undefined;
    if (o.local) {
      if (o.detached) throw new Error('--local and --detached cannot be combined: the embedded cluster stops when the job ends');
      applySecurity(o, 'client');
      lc = new LocalCluster({ taskManagers: 2, slots: 2, port: 0, dir: path.resolve('.weir'), jobStore: false, securityArgs: securityArgs(o, true) });
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
    const { jobs } = await withClient(o, (c) => c.list());
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
    // the JobManager masks the secrets it knows; this masks those this process knows (WEIR_AUTH_TOKEN, S3 keys)
    const d = maskSecrets(await withClient(o, (c) => c.status(jobId)));
    console.log(o.json ? JSON.stringify(d, null, 2) : describeJob(d));
  });

program
  .command('checkpoints')
  .description('list the checkpoints of a job: status, timings, sizes, per-subtask breakdown')
  .argument('<job-id>')
  .option('--jobmanager <host:port>', 'JobManager address')
  .option('--json', 'print JSON')
  .action(async (jobId: string, o: { jobmanager?: string; json?: boolean }) => {
    const s = maskSecrets(await withClient(o, (c) => c.checkpoints(jobId)));
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
    const p = await withClient(o, (c) => c.savepoint(jobId, target ? resolveLocation(target) : undefined, false));
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
      const p = await withClient(o, (c) => c.savepoint(jobId, target, true));
      console.log(`Savepoint completed: ${p}`);
      console.log(`Cancellation of job ${jobId} requested`);
      return;
    }
    const r = await withClient(o, (c) => c.cancel(jobId));
    if (!r.accepted) throw new Error(r.message);
    console.log(`Cancellation of job ${jobId} requested`);
  });

for (const c of program.commands) {
  if (['run', 'list', 'status', 'checkpoints', 'savepoint', 'cancel'].includes(c.name())) addSecurityOptions(c, 'client');
}

const cert = program.command('cert').description('development certificates for TLS');
cert
  .command('create')
  .description('create a cluster CA, a certificate for JobManagers and TaskManagers, a client certificate and a token (pure JavaScript, no openssl needed)')
  .requiredOption('--dir <dir>', 'directory for ca.pem, node.pem, node-key.pem, client.pem, client-key.pem and token')
  .option('--hostname <name...>', 'extra DNS names or IP addresses for the node certificate (localhost, 127.0.0.1 and ::1 are always in)')
  .option('--days <n>', 'validity in days', arg(parsePositiveInt, '--days'), 825)
  .option('--force', 'overwrite existing files')
  .action(async (o: { dir: string; hostname?: string[]; days: number; force?: boolean }) => {
    const c = await createDevCertificates({ dir: o.dir, days: o.days, ...(o.hostname ? { hostnames: o.hostname } : {}), ...(o.force ? { force: true } : {}) });
    console.log(`Created in ${path.resolve(o.dir)}:
  ${path.basename(c.ca)}, ${path.basename(c.caKey)}     cluster CA (keep ca-key.pem private; it can issue certificates)
  ${path.basename(c.cert)}, ${path.basename(c.key)} JobManager and TaskManager certificate (server and client auth), SANs: ${['localhost', '127.0.0.1', '::1', ...(o.hostname ?? [])].join(', ')}
  ${path.basename(c.clientCert)}, ${path.basename(c.clientKey)} client certificate (optional for the CLI)
  ${path.basename(c.token)}                    bearer token for clients
Use them in a configuration file:
  security.ssl.enabled: true
  security.ssl.ca: ${c.ca}
  security.ssl.cert: ${c.cert}
  security.ssl.key: ${c.key}
  security.auth.token-file: ${c.token}`);
  });

addSecurityOptions(program
  .command('config')
  .description('print the effective configuration (file, flags and environment) with secrets masked'), 'client')
  .action((o: SecurityCliOptions) => {
    const config: ClusterConfig | undefined = o.config ? loadClusterConfig(o.config) : undefined;
    const sec = applySecurity(o, 'client', config);
    const env = process.env;
    const s3Secret = env.WEIR_S3_SECRET_KEY ?? env.AWS_SECRET_ACCESS_KEY;
    const view = {
      checkpoint: config?.checkpoint ?? {},
      'state.checkpoints.dir': config?.checkpointDir, 'state.savepoints.dir': config?.savepointDir,
      'security.ssl.enabled': !!sec.tls,
      'security.ssl.ca': sec.tls?.files.ca, 'security.ssl.cert': sec.tls?.files.cert, 'security.ssl.key': sec.tls?.files.key,
      'security.auth.token': sec.token ? `*** (from ${o.tokenFile ?? config?.security.tokenFile ?? 'WEIR_AUTH_TOKEN'})` : undefined,
      'security.storage.allowed-dirs': config?.security.allowedDirs,
      'rpc.max-message-size': sec.maxMessageBytes,
      s3: {
        endpoint: env.WEIR_S3_ENDPOINT, region: env.WEIR_S3_REGION ?? env.AWS_REGION,
        accessKeyId: (env.WEIR_S3_ACCESS_KEY ?? env.AWS_ACCESS_KEY_ID) ? '***' : undefined, secretAccessKey: s3Secret ? '***' : undefined,
      },
    };
    console.log(JSON.stringify(maskSecrets(view), null, 2));
  });

registerEnvironmentSecrets();
program.parseAsync(process.argv).catch((err: Error & { details?: string; code?: number }) => {
  const msg = err instanceof JobFileError ? err.message : err.details ?? err.message;
  console.error(`weir: ${maskString(msg)}`);
  process.exit(1);
});
