import { randomUUID } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  bearerMatches,
  closeHttp,
  getTransportSecurity,
  listenHttp,
  maskSecrets,
  type Logger,
} from '@weir/core';
import type { Registry } from '@weir/core/prometheus';
import { HttpError } from './http-error.js';
import type { JobMaster } from '../job-master.js';
import type { ResourceManager } from '../resource-manager.js';
import { jobManagerRegistry } from './job-manager-metrics.js';
import {
  backpressure,
  checkpointDetails,
  checkpointVertexSubtasks,
  checkpoints,
  exceptions,
  jobDetails,
  jobOverview,
  jobState,
  restarts,
  taskManager,
  vertexDetails,
} from './job-views.js';

/** What the REST API reads and does on the JobManager. */
export interface RestHost {
  readonly id: string;
  readonly jobs: Map<string, JobMaster>;
  readonly rm: ResourceManager;
  /** starts a savepoint; rejects with an HttpError-like `status` for bad targets and unknown jobs */
  triggerSavepoint(jobId: string, target: string, cancelJob: boolean): Promise<string>;
}

export interface RestServerOptions {
  host: string;
  port: number;
  log: Logger;
  /** the built dashboard (index.html and its bundle); default: next to this module in dist/ */
  dashboardDir?: string;
}

export { HttpError };

type Params = Record<string, string>;
type Handler = (p: Params, url: URL, req: http.IncomingMessage) => unknown;

const JOB_ID = '(?<jid>[^/]+)';
const VERTEX_ID = '(?<vid>[^/]+)';
const CHECKPOINT_ID = '(?<cid>[^/]+)';
const STATIC_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
};
const MAX_BODY = 64 * 1024;
const SAVEPOINT_OPERATIONS = 100;

interface SavepointOperation {
  jobId: string;
  status: 'IN_PROGRESS' | 'COMPLETED';
  location?: string;
  failure?: string;
}

/**
 * The JobManager's REST API (Flink's paths and JSON shapes), the Prometheus endpoint at
 * GET /metrics and the dashboard at /. With a token configured, every API path and /metrics
 * need `Authorization: Bearer <token>`; the dashboard's static files do not (they hold no
 * data) and the dashboard asks for the token.
 */
export class RestServer {
  private server: http.Server | undefined;
  private readonly routes: Array<{ method: string; pattern: RegExp; handler: Handler }> = [];
  private readonly registry: Registry;
  private readonly savepoints = new Map<string, SavepointOperation>();
  private readonly dashboardDir: string;
  port = 0;

  constructor(
    private readonly host: RestHost,
    private readonly opts: RestServerOptions,
  ) {
    this.registry = jobManagerRegistry(host.jobs, host.rm);
    this.dashboardDir = opts.dashboardDir ?? fileURLToPath(new URL('../dashboard/', import.meta.url));
    this.defineRoutes();
  }

  private route(method: string, pathPattern: string, handler: Handler): void {
    this.routes.push({ method, pattern: new RegExp(`^${pathPattern}/?$`), handler });
  }

  private job(p: Params): JobMaster {
    const jid = p.jid!;
    if (!/^[0-9a-f]{32}$/.test(jid))
      throw new HttpError(400, `Malformed job id '${jid}': a job id is 32 hexadecimal characters`);
    const job = this.host.jobs.get(jid);
    if (!job) throw new HttpError(404, `No job with id '${jid}'`);
    return job;
  }

  private vertex(job: JobMaster, p: Params): JobMaster['graph']['vertices'][number] {
    const vid = p.vid!;
    if (!/^[\w.:-]{1,200}$/.test(vid)) throw new HttpError(400, `Malformed vertex id '${vid}'`);
    const v = job.graph.vertices.find((x) => x.id === vid);
    if (!v) throw new HttpError(404, `Job ${job.jobId} has no vertex '${vid}'`);
    return v;
  }

  private checkpoint(
    job: JobMaster,
    p: Params,
  ): ReturnType<JobMaster['coordinator']['snapshotStats']>['history'][number] {
    const cid = p.cid!;
    if (!/^\d{1,15}$/.test(cid))
      throw new HttpError(400, `Malformed checkpoint id '${cid}': a checkpoint id is a positive integer`);
    const c = job.coordinator.snapshotStats().history.find((x) => x.id === Number(cid));
    if (!c)
      throw new HttpError(
        404,
        `Job ${job.jobId} has no checkpoint ${cid} in its history (the last 50 are kept)`,
      );
    return c;
  }

  private defineRoutes(): void {
    const { jobs, rm } = this.host;
    this.route('GET', '/config', () => ({
      'refresh-interval': 2000,
      'timezone-name': Intl.DateTimeFormat().resolvedOptions().timeZone,
      'weir-version': '0.1.0',
      features: { 'web-submit': false, 'web-cancel': true },
    }));
    this.route('GET', '/overview', () => {
      const all = [...jobs.values()];
      const count = (s: string): number => all.filter((j) => jobState(j) === s).length;
      return {
        taskmanagers: rm.taskManagers.size,
        'slots-total': rm.totalSlots(),
        'slots-available': rm.freeSlots(),
        'jobs-running': all.filter((j) => !j.isTerminal).length,
        'jobs-finished': count('FINISHED'),
        'jobs-cancelled': count('CANCELED'),
        'jobs-failed': count('FAILED'),
        'weir-version': '0.1.0',
        'jobmanager-id': this.host.id,
      };
    });
    this.route('GET', '/jobs', () => ({
      jobs: [...jobs.values()].map((j) => ({ id: j.jobId, status: jobState(j) })),
    }));
    this.route('GET', '/jobs/overview', () => ({ jobs: [...jobs.values()].map(jobOverview) }));
    this.route('GET', `/jobs/${JOB_ID}`, (p) => jobDetails(this.job(p)));
    this.route('PATCH', `/jobs/${JOB_ID}`, (p, url) => {
      const job = this.job(p);
      const mode = url.searchParams.get('mode') ?? 'cancel';
      if (mode !== 'cancel')
        throw new HttpError(400, `Unsupported mode '${mode}': PATCH /jobs/:jobid accepts mode=cancel`);
      if (job.isTerminal) throw new HttpError(409, `Job ${job.jobId} already ended (${jobState(job)})`);
      job.cancel();
      return { status: 202, body: {} };
    });
    this.route('GET', `/jobs/${JOB_ID}/checkpoints`, (p) => checkpoints(this.job(p)));
    this.route('GET', `/jobs/${JOB_ID}/checkpoints/config`, (p) => {
      const s = this.job(p).checkpointSettings;
      return {
        mode: s.mode === 'AT_LEAST_ONCE' ? 'at_least_once' : 'exactly_once',
        interval: s.intervalMs,
        timeout: s.timeoutMs,
        min_pause: s.minPauseBetweenCheckpointsMs,
        max_concurrent: s.maxConcurrentCheckpoints,
        tolerable_failed_checkpoints: s.tolerableFailedCheckpoints,
        unaligned_checkpoints: s.unaligned && s.mode !== 'AT_LEAST_ONCE',
        aligned_checkpoint_timeout: s.alignedCheckpointTimeoutMs,
        externalization: {
          enabled: true,
          delete_on_cancellation: s.externalizedRetention !== 'RETAIN_ON_CANCELLATION',
        },
      };
    });
    this.route('GET', `/jobs/${JOB_ID}/checkpoints/details/${CHECKPOINT_ID}`, (p) => {
      const job = this.job(p);
      return checkpointDetails(job, this.checkpoint(job, p));
    });
    this.route('GET', `/jobs/${JOB_ID}/checkpoints/details/${CHECKPOINT_ID}/subtasks/${VERTEX_ID}`, (p) => {
      const job = this.job(p);
      const c = this.checkpoint(job, p);
      return checkpointVertexSubtasks(job, c, this.vertex(job, p).id);
    });
    this.route('GET', `/jobs/${JOB_ID}/exceptions`, (p) => exceptions(this.job(p)));
    this.route('GET', `/jobs/${JOB_ID}/restarts`, (p) => restarts(this.job(p)));
    this.route('GET', `/jobs/${JOB_ID}/vertices/${VERTEX_ID}`, (p) => {
      const job = this.job(p);
      return vertexDetails(job, this.vertex(job, p));
    });
    this.route('GET', `/jobs/${JOB_ID}/vertices/${VERTEX_ID}/backpressure`, (p) => {
      const job = this.job(p);
      return backpressure(job, this.vertex(job, p));
    });
    this.route('POST', `/jobs/${JOB_ID}/savepoints`, (p, _url, req) => this.triggerSavepoint(p, req));
    this.route('GET', `/jobs/${JOB_ID}/savepoints/(?<tid>[^/]+)`, (p) => {
      const job = this.job(p);
      const op = this.savepoints.get(p.tid!);
      if (!op || op.jobId !== job.jobId)
        throw new HttpError(404, `No savepoint operation '${p.tid}' for job ${job.jobId}`);
      return {
        status: { id: op.status },
        ...(op.status === 'COMPLETED'
          ? {
              operation: op.failure
                ? {
                    'failure-cause': {
                      class: 'Error',
                      'stack-trace': op.failure,
                      'serialized-throwable': null,
                    },
                  }
                : { location: op.location },
            }
          : {}),
      };
    });
    this.route('GET', '/taskmanagers', () => ({
      taskmanagers: [...rm.taskManagers.values()]
        .sort((a, b) => a.id.localeCompare(b.id))
        .map((tm) => taskManager(tm, false)),
    }));
    this.route('GET', '/taskmanagers/(?<tmid>[^/]+)', (p) => {
      const tm = rm.taskManagers.get(p.tmid!);
      if (!tm) throw new HttpError(404, `No TaskManager with id '${p.tmid}'`);
      return taskManager(tm, true);
    });
  }

  private async triggerSavepoint(p: Params, req: http.IncomingMessage): Promise<unknown> {
    const job = this.job(p);
    const body = await readJson(req);
    const target = body['target-directory'] ?? '';
    const cancelJob = body['cancel-job'] ?? false;
    if (typeof target !== 'string') throw new HttpError(400, "'target-directory' must be a string");
    if (typeof cancelJob !== 'boolean') throw new HttpError(400, "'cancel-job' must be true or false");
    if (job.isTerminal) throw new HttpError(409, `Job ${job.jobId} already ended (${jobState(job)})`);
    const requestId = randomUUID().replace(/-/g, '');
    const op: SavepointOperation = { jobId: job.jobId, status: 'IN_PROGRESS' };
    this.savepoints.set(requestId, op);
    if (this.savepoints.size > SAVEPOINT_OPERATIONS)
      this.savepoints.delete(this.savepoints.keys().next().value!);
    // a bad target is the caller's mistake and is answered now; a failed savepoint is the operation's result
    const started = this.host.triggerSavepoint(job.jobId, target, cancelJob);
    const early = await Promise.race([
      started.then(
        () => undefined,
        (err: Error & { status?: number }) => (err.status ? err : undefined),
      ),
      new Promise<undefined>((r) => setImmediate(() => r(undefined))),
    ]);
    if (early) {
      this.savepoints.delete(requestId);
      throw new HttpError(early.status!, early.message);
    }
    started.then(
      (location) => Object.assign(op, { status: 'COMPLETED', location }),
      (err: Error) => Object.assign(op, { status: 'COMPLETED', failure: maskSecrets(err.message) }),
    );
    return { status: 202, body: { 'request-id': requestId } };
  }

  async start(): Promise<number> {
    const { server, port } = await listenHttp(
      this.opts.host,
      this.opts.port,
      (req, res) => void this.handle(req, res),
      'rest.port (--rest-port)',
    );
    this.server = server;
    this.port = port;
    return port;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return send(res, 400, { errors: ['Malformed request URL'] });
    }
    const method = req.method ?? 'GET';
    try {
      const token = getTransportSecurity().token;
      const pathname = url.pathname;
      const api = this.routes.filter((r) => r.pattern.test(pathname));
      if (pathname === '/metrics' || api.length > 0) {
        if (token && !bearerMatches(req.headers.authorization, token))
          return send(
            res,
            401,
            { errors: ['Authentication required: send Authorization: Bearer <token>'] },
            {
              'www-authenticate': 'Bearer',
            },
          );
        if (pathname === '/metrics') {
          if (method !== 'GET') throw new HttpError(405, 'GET /metrics only');
          const text = await this.registry.metrics();
          res.writeHead(200, { 'content-type': this.registry.contentType }).end(text);
          return;
        }
        const r = api.find((x) => x.method === method);
        if (!r) throw new HttpError(405, `${method} is not supported on ${pathname}`);
        const params = Object.fromEntries(
          Object.entries(r.pattern.exec(pathname)!.groups ?? {}).map(([k, v]) => [k, decodeURIComponent(v)]),
        );
        const out = await r.handler(params, url, req);
        if (
          out &&
          typeof out === 'object' &&
          'status' in out &&
          'body' in out &&
          Object.keys(out).length === 2
        )
          return send(res, (out as { status: number }).status, (out as { body: unknown }).body);
        return send(res, 200, maskSecrets(out));
      }
      if (method === 'GET' || method === 'HEAD') return this.serveStatic(pathname, res);
      throw new HttpError(404, `Not found: ${method} ${pathname}`);
    } catch (err) {
      if (err instanceof HttpError) return send(res, err.status, { errors: [err.message] });
      if (err instanceof URIError) return send(res, 400, { errors: [`Malformed path: ${url.pathname}`] });
      this.opts.log.error({ err: (err as Error).message, path: url.pathname }, 'REST handler failed');
      return send(res, 500, { errors: [`Internal error: ${maskSecrets((err as Error).message)}`] });
    }
  }

  private serveStatic(pathname: string, res: http.ServerResponse): void {
    const rel = pathname === '/' ? 'index.html' : pathname.slice(1);
    const file = path.resolve(this.dashboardDir, rel);
    if (!file.startsWith(path.resolve(this.dashboardDir) + path.sep))
      return send(res, 404, { errors: [`Not found: ${pathname}`] });
    if (!existsSync(file) || !statSync(file).isFile()) {
      if (pathname === '/')
        return send(res, 404, {
          errors: [`The dashboard is not built (${this.dashboardDir} has no index.html): run npm run build`],
        });
      return send(res, 404, { errors: [`Not found: ${pathname}`] });
    }
    res.writeHead(200, {
      'content-type': STATIC_TYPES[path.extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-cache',
    });
    createReadStream(file).pipe(res);
  }

  async stop(): Promise<void> {
    if (this.server) await closeHttp(this.server);
  }
}

function send(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res
    .writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers })
    .end(JSON.stringify(body));
}

async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new HttpError(413, `Request body larger than ${MAX_BODY} bytes`);
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `Request body is not JSON: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new HttpError(400, 'Request body must be a JSON object');
  return v as Record<string, unknown>;
}
