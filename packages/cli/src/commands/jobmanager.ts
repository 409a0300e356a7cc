import type { Command } from 'commander';
import path from 'node:path';
import {
  configureS3Storage,
  fileStorageUri,
  openInternalServicesWarning,
  parsePort,
  parsePositiveInt,
} from '@weir/core';
import { resolveLocation } from '@weir/client';
import { JobManager } from '@weir/jobmanager';
import { arg } from '../cli-args.js';
import {
  addDefineOption,
  addLogLevelOption,
  resolveCommandConfig,
  storage,
  type ConfigCliOptions,
} from '../config-options.js';
import { onShutdown, readyToParent } from '../process-lifecycle.js';
import { addSecurityOptions, applySecurity } from '../security-options.js';

interface JobManagerCliOptions extends ConfigCliOptions {
  host?: string;
  port?: number;
  heartbeatInterval?: number;
  heartbeatTimeout?: number;
  slotRequestTimeout?: number;
  checkpointDir?: string;
  savepointDir?: string;
  jobStore?: string | boolean;
  restPort?: number;
  restAddress?: string;
  rest?: boolean;
  workDir?: string;
}

/** `weir jobmanager`: the JobManager process entry point. */
export function registerJobManager(program: Command): void {
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
          .option(
            '--rest-port <port>',
            'port of the REST API, the dashboard and /metrics (rest.port; default 8081; 0: any free port)',
            arg(parsePort, '--rest-port'),
          )
          .option(
            '--rest-address <host>',
            'interface the REST API listens on (rest.address; default 127.0.0.1; a non-loopback address needs TLS and a token, or --insecure)',
          )
          .option('--no-rest', 'no REST API, dashboard or /metrics (rest.enabled: false)')
          .option(
            '--work-dir <dir>',
            "local working directory: job bundles planned for split enumerators (process.jobmanager.working-dir; default the system's temporary directory)",
          )
          .option(
            '--no-job-store',
            'jobs do not survive a JobManager restart (high-availability.type: none)',
          ),
      ),
    ),
    'server',
  ).action(runJobManager);
}

/** rest.port; a JobManager asked for any free gRPC port (--port 0) takes any free REST port too, unless rest.port is set. */
function restPort(cfg: ReturnType<typeof resolveCommandConfig>): number {
  return !cfg.isSet('rest.port') && cfg.get('jobmanager.rpc.port') === 0 ? 0 : cfg.get('rest.port');
}

async function runJobManager(o: JobManagerCliOptions): Promise<void> {
  const cfg = resolveCommandConfig(
    {
      ...o,
      noJobStore: o.jobStore === false ? 'none' : undefined,
      jobStore: typeof o.jobStore === 'string' ? o.jobStore : undefined,
      restEnabled: o.rest === false ? false : undefined,
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
      ['restPort', '--rest-port', 'rest.port'],
      ['restAddress', '--rest-address', 'rest.address'],
      ['restEnabled', '--no-rest', 'rest.enabled'],
      ['workDir', '--work-dir', 'process.jobmanager.working-dir'],
    ],
  );
  const config = cfg.toClusterConfig();
  const warning = openInternalServicesWarning(applySecurity(o, 'server', config));
  if (warning) console.warn(warning);
  configureS3Storage(cfg.settings);
  const host = cfg.get('jobmanager.bind-host');
  const workDir = cfg.get('process.jobmanager.working-dir');
  const jm = new JobManager({
    host,
    port: cfg.get('jobmanager.rpc.port'),
    settings: cfg.settings,
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
    ...(cfg.get('rest.enabled') ? { rest: { host: cfg.get('rest.address'), port: restPort(cfg) } } : {}),
    ...(workDir !== undefined ? { workDir: path.resolve(workDir) } : {}),
  });
  const port = await jm.start();
  onShutdown(() => jm.stop());
  readyToParent(`${host}:${port}`, jm.restAddress ? { rest: jm.restAddress } : {});
}
