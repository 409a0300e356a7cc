import { Command, InvalidArgumentError } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  checkExposure,
  checkHealth,
  defaultAdvertisedHost,
  fileStorageUri,
  maskSecrets,
  maskString,
  registerEnvironmentSecrets,
  parseAddress,
  parsePort,
  parsePositiveInt,
  resolveTransportSecurity,
} from '@weir/core';
import { JobManager } from '@weir/jobmanager';
import { TaskExecutor } from '@weir/taskmanager';
import { JobFileError } from '../bundler.js';
import { ClusterClient } from '../cluster-client.js';
import { resolveLocation, runJob } from '../commands/run.js';
import { describeCheckpoints, describeJob, shortStatus } from '../format.js';
import { LocalCluster, type ReadyMessage } from '../local-cluster.js';
import { createDevCertificates } from '../certs.js';
import {
  addDefineOption,
  addLogLevelOption,
  describeOptions,
  formatConfig,
  resolveCommandConfig,
  storage,
  type ConfigCliOptions,
} from '../config-options.js';
import {
  addSecurityOptions,
  applySecurity,
  securityArgs,
  securityRecord,
  type ClusterSecurityRecord,
  type SecurityCliOptions,
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
    stop().then(
      () => process.exit(0),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('disconnect', () => handler('parent gone'));
}

async function withClient<T>(
  o: SecurityCliOptions & { jobmanager?: string },
  fn: (c: ClusterClient) => Promise<T>,
): Promise<T> {
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

addSecurityOptions(
  addLogLevelOption(
    addDefineOption(
      program
        .command('jobmanager')
        .description(
          'run a JobManager in this process (settings: flags > WEIR_* environment > --config file > defaults; see `weir config`)',
        )
        .option(
          '--host <host>',
          'interface to listen on (jobmanager.bind-host; default 127.0.0.1; a non-loopback address needs TLS and a token, or --insecure)',
        )
        .option(
          '--port <port>',
          'port to listen on (jobmanager.rpc.port; default 6123; 0: any free port)',
          arg(parsePort, '--port'),
        )
        .option(
          '--heartbeat-interval <ms>',
          'heartbeat interval (heartbeat.interval; default 1000)',
          arg(parsePositiveInt, '--heartbeat-interval'),
        )
        .option(
          '--heartbeat-timeout <ms>',
          'a silent TaskManager is lost after this long (heartbeat.timeout; default 10000)',
          arg(parsePositiveInt, '--heartbeat-timeout'),
        )
        .option(
          '--slot-request-timeout <ms>',
          'a job waiting for slots fails after this long (slot.request.timeout; default 300000)',
          arg(parsePositiveInt, '--slot-request-timeout'),
        )
        .option(
          '--checkpoint-dir <dir>',
          'default checkpoint storage: a directory or s3://bucket/prefix (state.checkpoints.dir; default .weir/checkpoints)',
        )
        .option(
          '--savepoint-dir <dir>',
          'default savepoint target: a directory or s3://bucket/prefix (state.savepoints.dir; default .weir/savepoints)',
        )
        .option(
          '--job-store <dir>',
          'keep running jobs here so a restarted JobManager resumes them: a directory or s3://bucket/prefix (high-availability.storageDir; default .weir/ha)',
        )
        .option('--no-job-store', 'jobs do not survive a JobManager restart (high-availability.type: none)'),
    ),
  ),
  'server',
).action(
  async (
    o: ConfigCliOptions & {
      host?: string;
      port?: number;
      heartbeatInterval?: number;
      heartbeatTimeout?: number;
      slotRequestTimeout?: number;
      checkpointDir?: string;
      savepointDir?: string;
      jobStore?: string | boolean;
    },
  ) => {
    const cfg = resolveCommandConfig(
      {
        ...o,
        noJobStore: o.jobStore === false ? 'none' : undefined,
        jobStore: typeof o.jobStore === 'string' ? o.jobStore : undefined,
      },
      [
        ['host', '--host', 'jobmanager.bind-host'],
        ['port', '--port', 'jobmanager.rpc.port'],
        ['heartbeatInterval', '--heartbeat-interval', 'heartbeat.interval'],
        ['heartbeatTimeout', '--heartbeat-timeout', 'heartbeat.timeout'],
        ['slotRequestTimeout', '--slot-request-timeout', 'slot.request.timeout'],
        ['checkpointDir', '--checkpoint-dir', 'state.checkpoints.dir', storage],
        ['savepointDir', '--savepoint-dir', 'state.savepoints.dir', storage],
        ['jobStore', '--job-store', 'high-availability.storageDir', storage],
        ['noJobStore', '--no-job-store', 'high-availability.type'],
      ],
    );
    const config = cfg.toClusterConfig();
    applySecurity(o, 'server', config);
    const host = cfg.get<string>('jobmanager.bind-host')!;
    const jm = new JobManager({
      host,
      port: cfg.get<number>('jobmanager.rpc.port')!,
      heartbeatIntervalMs: cfg.get<number>('heartbeat.interval')!,
      heartbeatTimeoutMs: cfg.get<number>('heartbeat.timeout')!,
      slotRequestTimeoutMs: cfg.get<number>('slot.request.timeout')!,
      checkpointStorage: config.checkpointDir ?? fileStorageUri(path.join('.weir', 'checkpoints')),
      savepointDir: config.savepointDir ?? path.resolve('.weir', 'savepoints'),
      checkpointDefaults: config.checkpoint,
      ...(config.stateBackend ? { stateBackend: config.stateBackend } : {}),
      ...(config.incrementalCheckpoints !== undefined
        ? { incrementalCheckpoints: config.incrementalCheckpoints }
        : {}),
      ...(config.restartStrategy ? { restartStrategy: config.restartStrategy } : {}),
      ...(config.jobStoreEnabled === false
        ? {}
        : { jobStore: config.jobStore ?? fileStorageUri(path.join('.weir', 'ha')) }),
      ...(config.security.allowedDirs
        ? { allowedStorageDirs: config.security.allowedDirs.map(resolveLocation) }
        : {}),
      ...(config.security.insecure ? { insecure: true } : {}),
    });
    const port = await jm.start();
    onShutdown(() => jm.stop());
    readyToParent(`${host}:${port}`);
  },
);

addSecurityOptions(
  addLogLevelOption(
    addDefineOption(
      program
        .command('taskmanager')
        .description(
          'run a TaskManager in this process (settings: flags > WEIR_* environment > --config file > defaults; see `weir config`)',
        )
        .option(
          '--jobmanager <host:port>',
          'JobManager to register with (jobmanager.rpc.address and jobmanager.rpc.port; default 127.0.0.1:6123)',
          arg(parseAddress, '--jobmanager'),
        )
        .option(
          '--slots <n>',
          'number of task slots, one worker thread each (taskmanager.numberOfTaskSlots; default 1)',
          arg(parsePositiveInt, '--slots'),
        )
        .option('--host <host>', 'interface to listen on (taskmanager.bind-host; default 127.0.0.1)')
        .option(
          '--advertised-host <host>',
          "host other processes use to reach this TaskManager (taskmanager.host; default: --host, or this machine's first non-loopback IPv4 address when --host is 0.0.0.0)",
        )
        .option(
          '--port <port>',
          'port for tasks and data exchange (taskmanager.rpc.port; default 0: any free port)',
          arg(parsePort, '--port'),
        )
        .option('--id <id>', 'TaskManager id (taskmanager.resource-id; default: random)')
        .option(
          '--work-dir <dir>',
          'local working directory (process.taskmanager.working-dir; default .weir/work)',
        )
        .option(
          '--state-dir <dir>',
          'local state directory root for RocksDB state; this TaskManager uses <dir>/<id> (state.backend.rocksdb.localdir; default .weir/tm-state)',
        ),
    ),
  ),
  'server',
).action(
  async (
    o: ConfigCliOptions & {
      jobmanager?: { host: string; port: number };
      slots?: number;
      host?: string;
      advertisedHost?: string;
      port?: number;
      id?: string;
      workDir?: string;
      stateDir?: string;
    },
  ) => {
    const cfg = resolveCommandConfig({ ...o, jmHost: o.jobmanager?.host, jmPort: o.jobmanager?.port }, [
      ['jmHost', '--jobmanager', 'jobmanager.rpc.address'],
      ['jmPort', '--jobmanager', 'jobmanager.rpc.port'],
      ['slots', '--slots', 'taskmanager.numberOfTaskSlots'],
      ['host', '--host', 'taskmanager.bind-host'],
      ['advertisedHost', '--advertised-host', 'taskmanager.host'],
      ['port', '--port', 'taskmanager.rpc.port'],
      ['id', '--id', 'taskmanager.resource-id'],
      ['workDir', '--work-dir', 'process.taskmanager.working-dir'],
      ['stateDir', '--state-dir', 'state.backend.rocksdb.localdir'],
    ]);
    const config = cfg.toClusterConfig();
    const sec = applySecurity(o, 'server', config);
    const host = cfg.get<string>('taskmanager.bind-host')!;
    const refusal = checkExposure(host, sec, 'TaskManager', config.security.insecure ?? false);
    if (refusal) throw new Error(refusal);
    const stateDir = config.rocksdbLocalDir;
    const id = cfg.get<string>('taskmanager.resource-id');
    const tm = new TaskExecutor({
      jobManagerAddress: `${cfg.get<string>('jobmanager.rpc.address')}:${cfg.get<number>('jobmanager.rpc.port')}`,
      slots: cfg.get<number>('taskmanager.numberOfTaskSlots')!,
      host,
      port: cfg.get<number>('taskmanager.rpc.port')!,
      workDir: path.resolve(cfg.get<string>('process.taskmanager.working-dir')!),
      ...(stateDir ? { stateDir: path.resolve(stateDir) } : {}),
      rocksdbBlockCacheSize: cfg.get<number>('state.backend.rocksdb.block.cache-size')!,
      rocksdbWriteBufferSize: cfg.get<number>('state.backend.rocksdb.writebuffer.size')!,
      advertisedHost: cfg.get<string>('taskmanager.host') ?? defaultAdvertisedHost(host),
      cancellationTimeoutMs: cfg.get<number>('task.cancellation.timeout')!,
      ...(id ? { taskManagerId: id } : {}),
    });
    onShutdown(() => tm.stop());
    await tm.start();
    readyToParent(tm.boundAddress);
  },
);

addSecurityOptions(
  program
    .command('health')
    .description(
      'check a JobManager or TaskManager with the standard gRPC health service (grpc.health.v1.Health); exit 0 when SERVING, 1 otherwise; for container health checks and probes',
    )
    .option('--address <host:port>', 'the process to check (default 127.0.0.1:<jobmanager.rpc.port>)')
    .option('--service <name>', 'a service name (default: the whole process)', '')
    .option('--timeout <ms>', 'give up after this long', arg(parsePositiveInt, '--timeout'), 5000)
    .option('-q, --quiet', 'print nothing'),
  'client',
).action(
  async (o: ConfigCliOptions & { address?: string; service: string; timeout: number; quiet?: boolean }) => {
    const cfg = resolveCommandConfig(o);
    applySecurity(o, 'client', cfg.toClusterConfig());
    const address = o.address ?? `127.0.0.1:${cfg.get<number>('jobmanager.rpc.port')}`;
    parseAddress(address, '--address');
    const status = await checkHealth(address, o.service, o.timeout);
    if (!o.quiet) console.log(`${address}${o.service ? ` ${o.service}` : ''}: ${status}`);
    if (status !== 'SERVING') process.exitCode = 1;
  },
);

const cluster = program.command('cluster').description('run a local cluster');
addSecurityOptions(
  addDefineOption(
    cluster
      .command('start')
      .description('start a JobManager and TaskManagers as child processes; Ctrl-C stops them all')
      .option('--taskmanagers <n>', 'number of TaskManagers', arg(parsePositiveInt, '--taskmanagers'), 2)
      .option('--slots <n>', 'slots per TaskManager', arg(parsePositiveInt, '--slots'), 2)
      .option('--port <port>', 'JobManager port (0: any free port)', arg(parsePort, '--port'), 6123)
      .option('--dir <dir>', 'directory for logs and working files', '.weir')
      .option(
        '--slot-request-timeout <ms>',
        'a job waiting for slots fails after this long',
        arg(parsePositiveInt, '--slot-request-timeout'),
      )
      .option(
        '--taskmanager-node-args <flags>',
        'Node.js flags for the TaskManager processes, space-separated, e.g. "--max-old-space-size=256"',
      ),
  ),
  'client',
).action(
  async (
    o: ConfigCliOptions & {
      taskmanagers: number;
      slots: number;
      port: number;
      dir: string;
      slotRequestTimeout?: number;
      taskmanagerNodeArgs?: string;
    },
  ) => {
    // a bad file, variable or certificate fails here, before any process starts; this process talks to the JobManager as a client
    applySecurity(o, 'client');
    const security = securityRecord(o);
    const defines = (o.define ?? []).flatMap((d) => ['-D', d]);
    const lc = new LocalCluster({
      taskManagers: o.taskmanagers,
      slots: o.slots,
      port: o.port,
      dir: path.resolve(o.dir),
      jobManagerArgs: [
        ...(o.slotRequestTimeout ? ['--slot-request-timeout', String(o.slotRequestTimeout)] : []),
      ],
      securityArgs: [...securityArgs(o, true), ...defines],
      ...(security ? { clusterFileExtra: { security } } : {}),
      ...(o.taskmanagerNodeArgs
        ? { taskManagerNodeArgs: o.taskmanagerNodeArgs.split(/\s+/).filter(Boolean) }
        : {}),
    });
    onShutdown(() => lc.stop());
    try {
      await lc.start((m) => console.log(m));
    } catch (err) {
      await lc.stop();
      throw err;
    }
    console.log(
      `Local cluster running: JobManager ${lc.jobManagerAddress}, ${o.taskmanagers} TaskManagers x ${o.slots} slots; logs in ${path.resolve(o.dir, 'logs')}. Ctrl-C stops it.`,
    );
    readyToParent(lc.jobManagerAddress);
  },
);

program
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
  )
  .action(
    async (
      file: string,
      args: string[],
      o: SecurityCliOptions & {
        jobmanager?: string;
        parallelism?: number;
        detached?: boolean;
        local?: boolean;
        fromSavepoint?: string;
        allowNonRestoredState?: boolean;
        workingDir?: string;
      },
    ) => {
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
    },
  );

program
  .command('list')
  .description('list the jobs of the cluster')
  .option('--jobmanager <host:port>', 'JobManager address')
  .option('--json', 'print JSON')
  .action(async (o: { jobmanager?: string; json?: boolean }) => {
    const { jobs } = await withClient(o, (c) => c.list());
    if (o.json) return console.log(JSON.stringify(jobs, null, 2));
    if (jobs.length === 0) return console.log('No jobs.');
    for (const j of jobs)
      console.log(
        `${j.jobId}  ${shortStatus(j.status).padEnd(10)} ${new Date(Number(j.startTime)).toISOString()}  ${j.name}`,
      );
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
  .argument('[target]', "directory for the savepoint (default: the cluster's savepoint directory)")
  .option('--jobmanager <host:port>', 'JobManager address')
  .action(async (jobId: string, target: string | undefined, o: { jobmanager?: string }) => {
    console.error(`Triggering a savepoint of job ${jobId}...`);
    const p = await withClient(o, (c) =>
      c.savepoint(jobId, target ? resolveLocation(target) : undefined, false),
    );
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
  if (['run', 'list', 'status', 'checkpoints', 'savepoint', 'cancel'].includes(c.name()))
    addSecurityOptions(c, 'client');
}

const cert = program.command('cert').description('development certificates for TLS');
cert
  .command('create')
  .description(
    'create a cluster CA, a certificate for JobManagers and TaskManagers, a client certificate and a token (pure JavaScript, no openssl needed)',
  )
  .requiredOption(
    '--dir <dir>',
    'directory for ca.pem, node.pem, node-key.pem, client.pem, client-key.pem and token',
  )
  .option(
    '--hostname <name...>',
    'extra DNS names or IP addresses for the node certificate (localhost, 127.0.0.1 and ::1 are always in)',
  )
  .option('--days <n>', 'validity in days', arg(parsePositiveInt, '--days'), 825)
  .option('--force', 'overwrite existing files')
  .action(async (o: { dir: string; hostname?: string[]; days: number; force?: boolean }) => {
    const c = await createDevCertificates({
      dir: o.dir,
      days: o.days,
      ...(o.hostname ? { hostnames: o.hostname } : {}),
      ...(o.force ? { force: true } : {}),
    });
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

addSecurityOptions(
  addLogLevelOption(
    addDefineOption(
      program
        .command('config')
        .description(
          'print the effective configuration: every key, its value (secrets as ***) and where it came from (flag, environment variable, file or default)',
        )
        .option('--json', 'print JSON: key -> { value, source, env }')
        .option('--describe', 'list every key with its environment variable, expected form and default'),
    ),
  ),
  'server',
).action((o: ConfigCliOptions & { json?: boolean; describe?: boolean }) => {
  if (o.describe) return console.log(describeOptions());
  const cfg = resolveCommandConfig(o);
  // certificates and token files are read, so a wrong path is reported here too
  resolveTransportSecurity(cfg.toClusterConfig().security, {}, 'client');
  console.log(maskString(formatConfig(cfg, o.json ?? false)));
});

registerEnvironmentSecrets();
program.parseAsync(process.argv).catch((err: Error & { details?: string; code?: number }) => {
  const msg = err instanceof JobFileError ? err.message : (err.details ?? err.message);
  console.error(`weir: ${maskString(msg)}`);
  process.exit(1);
});
