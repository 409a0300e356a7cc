import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import {
  HealthReporter,
  bindServer,
  checkExposure,
  controlProto,
  createCheckpointStorage,
  createLogger,
  createServer,
  dispatcherProto,
  getTransportSecurity,
  maskSecrets,
  parseJobContext,
  parseJobGraph,
  planJobBundle,
  shutdownServer,
  type DispatcherHandlers,
  type JobGraph,
  type Logger,
  type Settings,
} from '@weir/core';
import {
  StoragePathPolicy,
  outputDirectories,
  type JobOutputs,
  type OutputDirectory,
} from './storage-paths.js';
import { JobMaster } from './job-master.js';
import type { RestartStrategyConfiguration, StateBackendType } from '@weir/api';
import type { CheckpointSettings } from '@weir/api/internal';
import { ResourceManager } from './resource-manager.js';
import { RestorePlan } from './restore.js';
import {
  bundleDirectoryBase,
  createBundleDirectory,
  removeStaleBundleDirectories,
} from './bundle-directory.js';
import { JobStore, type StoredJob } from './job-store.js';
import { jobManagerGateway } from './job-manager-gateway.js';
import { recoveryPlan } from './job-recovery.js';
import { invalid, notFound } from './rpc-status.js';
import { HttpError } from './rest/http-error.js';
import type { RestServer } from './rest/rest-server.js';
import path from 'node:path';

/** The directory relative paths of the job resolve against, from its job context. */
function workingDirectoryOf(jobContextJson: string): string | undefined {
  try {
    return parseJobContext(jobContextJson, 'the job context').workingDirectory;
  } catch {
    return undefined;
  }
}

/** The registry settings a JobManager reads, complete: the process's (`resolveConfig().settings`) or `defaultSettings()`. */
export type JobManagerSettings = Pick<
  Settings,
  | 'heartbeat.interval'
  | 'heartbeat.timeout'
  | 'slot.request.timeout'
  | 'log.level'
  | 'jobmanager.execution.failover-strategy'
>;

export interface JobManagerOptions {
  host: string;
  port: number;
  settings: JobManagerSettings;
  /** default checkpoint storage root (file:///... ) */
  checkpointStorage: string;
  /** default savepoint directory */
  savepointDir: string;
  /** checkpoint settings from the configuration file */
  checkpointDefaults?: Partial<CheckpointSettings>;
  /** keyed state backend of jobs that choose none (configuration file: state.backend.type) */
  stateBackend?: StateBackendType;
  /** incremental checkpoints for jobs that do not say (configuration file: state.backend.incremental) */
  incrementalCheckpoints?: boolean;
  /** restart strategy from the configuration file */
  restartStrategy?: RestartStrategyConfiguration;
  /**
   * Durable store of running jobs (file:///... or s3://...): a JobManager restarted on the same
   * store resumes them from their latest checkpoints. Unset: jobs do not survive a restart.
   */
  jobStore?: string;
  /** extra directories savepoints may be written to and restored from (security.storage.allowed-dirs) */
  allowedStorageDirs?: string[];
  /** listen on a non-loopback address without TLS and a token anyway */
  insecure?: boolean;
  /** the REST API, dashboard and /metrics (rest.address, rest.port); unset: none */
  rest?: { host: string; port: number; dashboardDir?: string };
  /**
   * Local working directory (process.jobmanager.working-dir): the job bundles planned for split
   * enumerators are unpacked under it. Unset: the system's temporary directory.
   */
  workDir?: string;
}

/** A failure a handler answers with its own status code rather than the handler's default. */
class RpcFailure extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The JobManager process: the Dispatcher for clients, the gateway for TaskManagers, one
 * JobMaster per job and the ResourceManager behind them.
 */
export class JobManager {
  readonly id = `jm-${randomUUID().slice(0, 8)}`;
  readonly log: Logger;
  readonly rm: ResourceManager;
  private readonly server = createServer();
  /** grpc.health.v1.Health: SERVING once listening and the job store's jobs are resumed, NOT_SERVING when stopping */
  readonly health = new HealthReporter(this.server, ['weir.Dispatcher', 'weir.JobManagerGateway']);
  /** @internal read by the JobManagerGateway handlers */
  readonly jobs = new Map<string, JobMaster>();
  /** @internal read by the JobManagerGateway handlers */
  readonly bundles = new Map<string, Buffer>();
  private readonly store: JobStore | undefined;
  private readonly paths: StoragePathPolicy;
  /** output directories by job, from submission (before the job is started) on */
  private readonly outputs = new Map<string, { jobName: string; outputs: OutputDirectory[] }>();
  port = 0;
  private rest: RestServer | undefined;
  /** host:port of the REST API, empty when it is off */
  restAddress = '';

  constructor(private readonly opts: JobManagerOptions) {
    this.log = createLogger('jobmanager', {}, opts.settings['log.level']);
    this.rm = new ResourceManager(
      this.log,
      opts.settings['heartbeat.interval'],
      opts.settings['heartbeat.timeout'],
      this.id,
    );
    this.rm.runningJobs = () =>
      [...this.jobs.values()]
        .filter((job) => !job.isTerminal)
        .map((job) => ({
          jobId: job.jobId,
          jobContextJson: job.jobContextJson,
          runningMs: Date.now() - job.startTime,
        }));
    const sec = getTransportSecurity();
    this.paths = new StoragePathPolicy({
      checkpointStorage: opts.checkpointStorage,
      savepointDir: opts.savepointDir,
      ...(opts.allowedStorageDirs ? { allowedDirs: opts.allowedStorageDirs } : {}),
      restrict: !!(sec.tls || sec.token || opts.allowedStorageDirs?.length),
    });
    this.store = opts.jobStore ? new JobStore(opts.jobStore, this.log) : undefined;
  }

  /** Jobs that were running under an earlier JobManager on the same store start again from their latest checkpoints. */
  private async recoverJobs(): Promise<void> {
    if (!this.store) return;
    for (const stored of await this.store.recoverJobs()) {
      try {
        const restore = await recoveryPlan(stored);
        this.startJob(stored.jobId, stored.graph, stored, restore, {
          retained: stored.retained,
          highestCheckpointId: stored.highestCheckpointId,
          ...(stored.history ? { history: stored.history } : {}),
        });
        this.log.info(
          { jobId: stored.jobId, name: stored.graph.jobName, from: restore?.metadataFile ?? 'the beginning' },
          'recovered job from the job store',
        );
      } catch (err) {
        this.log.error({ jobId: stored.jobId, err: (err as Error).message }, 'cannot recover job');
      }
    }
  }

  async start(): Promise<number> {
    const sec = getTransportSecurity();
    const refusal = checkExposure(this.opts.host, sec, 'JobManager', this.opts.insecure ?? false);
    if (refusal) throw new Error(refusal);
    const dispatcher: DispatcherHandlers = {
      SubmitJob: this.submitJob,
      ListJobs: (_call, cb) => {
        cb(null, {
          jobs: [...this.jobs.values()].map((j) => ({
            jobId: j.jobId,
            name: j.name,
            status: j.status,
            startTime: j.startTime,
            endTime: j.endTime,
          })),
        });
      },
      GetJobStatus: (call, cb) => {
        const job = this.jobs.get(call.request.jobId);
        if (!job) return cb(notFound(`No job with id '${call.request.jobId}'`));
        cb(null, maskSecrets(job.details()));
      },
      CancelJob: (call, cb) => {
        const job = this.jobs.get(call.request.jobId);
        if (!job) return cb(notFound(`No job with id '${call.request.jobId}'`));
        if (job.isTerminal)
          return cb(null, { accepted: false, message: `Job ${job.jobId} already ended (${job.status})` });
        job.cancel();
        cb(null, { accepted: true, message: 'cancellation requested' });
      },
      GetCollectedRecords: (call, cb) => {
        const job = this.jobs.get(call.request.jobId);
        if (!job) return cb(notFound(`No job with id '${call.request.jobId}'`));
        cb(null, { batches: job.collected, truncated: job.collectedTruncated });
      },
      TriggerSavepoint: (call, cb) => {
        this.triggerSavepoint(call.request.jobId, call.request.target, call.request.cancelJob).then(
          (p) => cb(null, { path: p }),
          (err: HttpError) =>
            cb(
              err.status === 400
                ? invalid(err.message)
                : err.status === 404
                  ? notFound(err.message)
                  : { code: grpc.status.FAILED_PRECONDITION, details: maskSecrets(err.message) },
            ),
        );
      },
      GetCheckpoints: (call, cb) => {
        const job = this.jobs.get(call.request.jobId);
        if (!job) return cb(notFound(`No job with id '${call.request.jobId}'`));
        cb(null, {
          statsJson: JSON.stringify(maskSecrets(job.coordinator?.snapshotStats() ?? { disabled: true })),
        });
      },
      GetClusterOverview: (_call, cb) => {
        cb(null, {
          taskManagers: [...this.rm.taskManagers.values()].map((tm) => ({
            taskManagerId: tm.id,
            address: tm.address,
            slots: tm.slots,
            freeSlots: tm.allocations.filter((a) => a === undefined).length,
            rssBytes: tm.rssBytes,
            heapUsedBytes: tm.heapUsedBytes,
            lastHeartbeat: tm.lastHeartbeat,
            metricsAddress: tm.metricsAddress,
            ...(tm.process ? { process: tm.process } : {}),
          })),
          totalSlots: this.rm.totalSlots(),
          freeSlots: this.rm.freeSlots(),
          restAddress: this.restAddress,
        });
      },
    };
    this.server.addService(dispatcherProto.Dispatcher.service, dispatcher);
    const gateway = jobManagerGateway(this);
    this.server.addService(controlProto.JobManagerGateway.service, gateway);
    this.port = await bindServer(this.server, this.opts.host, this.opts.port);
    this.log.info(
      {
        host: this.opts.host,
        port: this.port,
        jobManagerId: this.id,
        tls: sec.tls ? { ca: sec.tls.files.ca, cert: sec.tls.files.cert, mutual: true } : false,
        clientAuth: sec.token ? 'bearer token' : 'none',
        // how the internal services know cluster processes
        clusterAuth:
          [
            ...(sec.tls ? ['cluster identity certificate'] : []),
            ...(sec.clusterSecret ? ['cluster secret'] : []),
          ].join(' + ') || 'none',
        maxMessageBytes: sec.maxMessageBytes,
        ...(this.store ? { jobStore: this.store.uri } : {}),
      },
      'JobManager listening',
    );
    // in the background: there may be hundreds, and none is in this JobManager's way
    void this.removeStaleBundleDirectories().catch((err: Error) =>
      this.log.warn({ error: err.message }, 'cannot look for stale bundle directories'),
    );
    if (this.opts.rest) await this.startRest(this.opts.rest, sec);
    await this.recoverJobs();
    this.health.set('SERVING');
    return this.port;
  }

  /** The REST API binds under the same rules as the gRPC port; a port in use fails the start. */
  private async startRest(
    rest: NonNullable<JobManagerOptions['rest']>,
    sec: ReturnType<typeof getTransportSecurity>,
  ): Promise<void> {
    const refusal = checkExposure(rest.host, sec, 'JobManager', this.opts.insecure ?? false);
    if (refusal) throw new Error(`REST API (rest.address): ${refusal}`);
    // loaded only here: every other command of the CLI (and prom-client with it) stays lighter
    const { RestServer } = await import('./rest/rest-server.js');
    this.rest = new RestServer(this, { ...rest, log: this.log });
    const port = await this.rest.start();
    this.restAddress = `${rest.host}:${port}`;
    this.log.info(
      { rest: this.restAddress, tls: !!sec.tls, auth: sec.token ? 'bearer token' : 'none' },
      `REST API, dashboard and /metrics listening: ${sec.tls ? 'https' : 'http'}://${this.restAddress}/`,
    );
  }

  /**
   * Starts a savepoint of a job (gRPC and REST). Rejects with status 400 for a target the
   * storage policy refuses, 404 for an unknown job, 409 when the savepoint itself fails.
   */
  triggerSavepoint(jobId: string, targetDir: string, cancelJob: boolean): Promise<string> {
    let target;
    try {
      target = createCheckpointStorage(this.paths.savepointTarget(targetDir, this.jobOutputs(false)));
    } catch (err) {
      return Promise.reject(new HttpError(400, (err as Error).message));
    }
    const job = this.jobs.get(jobId);
    if (!job) return Promise.reject(new HttpError(404, `No job with id '${jobId}'`));
    return job.coordinator.triggerSavepoint(target, { terminate: cancelJob }).then(
      (p) => {
        this.log.info({ jobId: job.jobId, path: p }, 'savepoint completed');
        if (cancelJob) job.cancel();
        return p;
      },
      (err: Error) => {
        throw new HttpError(409, err.message);
      },
    );
  }

  private readonly submitJob: DispatcherHandlers['SubmitJob'] = (call, cb) => {
    const req = call.request;
    let graph: JobGraph;
    try {
      graph = parseJobGraph(req.jobGraphJson, 'Invalid job graph');
    } catch (err) {
      return cb(invalid((err as Error).message));
    }
    try {
      parseJobContext(req.jobContextJson, 'Invalid job context');
    } catch (err) {
      return cb(invalid((err as Error).message));
    }
    if (!req.bundle || req.bundle.length === 0) return cb(invalid('The job bundle is empty'));
    const jobId = randomUUID().replace(/-/g, '');
    const outputs = outputDirectories(graph.sinkPaths, workingDirectoryOf(req.jobContextJson));
    try {
      this.paths.checkOutputs(graph.jobName, outputs, this.jobOutputs(true), graph.checkpoint?.storage);
    } catch (err) {
      return cb(invalid((err as Error).message));
    }
    // reserved now, so a second submission while this one loads its restore state is refused too
    this.outputs.set(jobId, { jobName: graph.jobName, outputs });
    void (async () => {
      // the path is checked against the storage policy before anything is read
      const restore = req.restorePath
        ? await RestorePlan.load(this.paths.restorePath(req.restorePath), graph, req.allowNonRestoredState)
        : undefined;
      try {
        await this.store?.putJob({
          jobId,
          graph,
          jobContextJson: req.jobContextJson,
          bundle: req.bundle,
          restorePath: req.restorePath,
          allowNonRestoredState: req.allowNonRestoredState,
          submittedAt: Date.now(),
        });
      } catch (err) {
        throw new RpcFailure(
          grpc.status.UNAVAILABLE,
          `Cannot store the job for recovery in ${this.store!.uri}: ${(err as Error).message}`,
        );
      }
      this.startJob(jobId, graph, req, restore);
      cb(null, { jobId });
    })().catch((err: Error) => {
      if (!this.jobs.has(jobId)) this.outputs.delete(jobId);
      cb(err instanceof RpcFailure ? { code: err.code, details: err.message } : invalid(err.message));
    });
  };

  /**
   * Output directories of the jobs that are not over. `writing`: only those still writing
   * (a job being canceled or failing is leaving, so its successor may start on its path).
   */
  private jobOutputs(writing: boolean): JobOutputs[] {
    const out: JobOutputs[] = [];
    for (const [jobId, o] of this.outputs) {
      const job = this.jobs.get(jobId);
      if (job?.isTerminal) continue;
      if (writing && (job?.status === 'JOB_CANCELLING' || job?.status === 'JOB_FAILING')) continue;
      out.push({ jobId, ...o });
    }
    return out;
  }

  private startJob(
    jobId: string,
    graph: JobGraph,
    req: { bundle: Buffer; jobContextJson: string },
    restore: RestorePlan | undefined,
    recovered?: {
      retained: StoredJob['retained'];
      highestCheckpointId: number;
      history?: StoredJob['history'];
    },
  ): void {
    this.bundles.set(jobId, req.bundle);
    if (!this.outputs.has(jobId))
      this.outputs.set(jobId, {
        jobName: graph.jobName,
        outputs: outputDirectories(graph.sinkPaths, workingDirectoryOf(req.jobContextJson)),
      });
    const job = new JobMaster(jobId, graph, req.jobContextJson, this.rm, this.log.child({ jobId }), {
      slotRequestTimeoutMs: this.opts.settings['slot.request.timeout'],
      failoverStrategy: this.opts.settings['jobmanager.execution.failover-strategy'],
      ...(restore ? { restore } : {}),
      checkpointStorage: this.opts.checkpointStorage,
      ...(this.opts.checkpointDefaults ? { checkpointDefaults: this.opts.checkpointDefaults } : {}),
      ...(this.opts.stateBackend ? { stateBackend: this.opts.stateBackend } : {}),
      ...(this.opts.incrementalCheckpoints !== undefined
        ? { incrementalCheckpoints: this.opts.incrementalCheckpoints }
        : {}),
      ...(this.opts.restartStrategy ? { restartStrategy: this.opts.restartStrategy } : {}),
      ...(this.store ? { jobStore: this.store } : {}),
      ...(recovered ? { recovered } : {}),
      // only jobs whose sources have split enumerators run user code here, and only those
      ...(graph.vertices.some((v) => v.coordinatedSource)
        ? { planGraph: () => this.planGraph(jobId, req) }
        : {}),
    });
    this.jobs.set(jobId, job);
    job.onTerminal(() => this.planned.delete(jobId));
    if (!recovered)
      this.log.info(
        {
          jobId,
          name: graph.jobName,
          vertices: graph.vertices.length,
          ...(restore ? { restoredFrom: restore.metadataFile } : {}),
        },
        'job submitted',
      );
    job.start();
  }

  /** where planned bundles are unpacked, made on the first plan; removed when the JobManager stops */
  private bundleDir: Promise<string> | undefined;

  /** Plans a job's bundle once in this process, for the split enumerators of its sources. */
  private readonly planned = new Map<string, ReturnType<typeof planJobBundle>>();
  private planning: Promise<void> = Promise.resolve();
  private planGraph(
    jobId: string,
    req: { bundle: Buffer; jobContextJson: string },
  ): ReturnType<typeof planJobBundle> {
    let p = this.planned.get(jobId);
    if (!p) {
      // one at a time: planning mode is process-wide (the module's execute() reports to it)
      p = this.planning.then(async () =>
        planJobBundle(
          req.bundle.toString('utf8'),
          {
            workingDirectory: process.cwd(),
            args: [],
            ...parseJobContext(req.jobContextJson, 'the job context'),
          },
          path.join(await this.bundleDirectory(), 'bundles'),
        ),
      );
      this.planning = p.then(
        () => {},
        () => {},
      );
      this.planned.set(jobId, p);
      p.catch(() => this.planned.delete(jobId));
    }
    return p;
  }

  private bundleDirectory(): Promise<string> {
    this.bundleDir ??= createBundleDirectory(bundleDirectoryBase(this.opts.workDir));
    this.bundleDir.catch(() => (this.bundleDir = undefined));
    return this.bundleDir;
  }

  /** The bundle directories of JobManagers killed before they could remove them (see bundle-directory.ts). */
  private async removeStaleBundleDirectories(): Promise<void> {
    const base = bundleDirectoryBase(this.opts.workDir);
    const { removed, failed } = await removeStaleBundleDirectories(base);
    if (removed.length > 0)
      this.log.info(
        { base, removed: removed.length },
        'removed the bundle directories of JobManagers no longer running',
      );
    for (const f of failed)
      this.log.warn(
        { dir: f.dir, error: f.error },
        'cannot remove the bundle directory of a JobManager no longer running; remove it by hand',
      );
  }

  async stop(): Promise<void> {
    this.log.info('JobManager stopping');
    this.health.set('NOT_SERVING');
    // with a job store, running jobs are suspended, not canceled: the next JobManager resumes them
    for (const job of this.jobs.values()) {
      if (job.isTerminal) continue;
      if (this.store) job.suspend();
      else job.cancel();
    }
    await new Promise((r) => setTimeout(r, 300));
    await this.rest?.stop();
    this.rm.close();
    await shutdownServer(this.server, 1_000);
    const dir = await this.bundleDir?.catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}
