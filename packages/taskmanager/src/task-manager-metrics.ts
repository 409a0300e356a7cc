import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type http from 'node:http';
import {
  ProcessMetricsSampler,
  TaskRateTracker,
  closeHttp,
  listenHttp,
  type Logger,
  type ProcessMetrics,
  type TaskMetrics,
  type TaskMetrics__Output,
} from '@weir/core';
import type { TaskLabels } from '@weir/core/prometheus';

/** Bytes of the files under a directory (RocksDB's local state); 0 when it does not exist. */
async function diskUsage(dir: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await diskUsage(p);
    else
      total += await stat(p).then(
        (s) => s.size,
        () => 0,
      );
  }
  return total;
}

/**
 * A TaskManager's metrics: the latest sample of each task (from its slot worker, about once a
 * second), the process's own figures for the heartbeat, and, when
 * `metrics.reporter.prometheus.port` is set, a Prometheus endpoint at GET /metrics.
 */
export class TaskManagerMetrics {
  /** the latest sample of every task, sent with each heartbeat and state report */
  readonly samples = new Map<string, TaskMetrics>();
  private readonly labels = new Map<string, TaskLabels>();
  private readonly rates = new TaskRateTracker();
  private readonly process = new ProcessMetricsSampler();
  private readonly diskTimer: NodeJS.Timeout;
  private server: http.Server | undefined;
  /** host:port of the Prometheus endpoint, empty when there is none */
  address = '';

  constructor(
    private readonly stateDir: string,
    private readonly log: Logger,
  ) {
    // a walk of the state directory is too slow for every heartbeat
    this.diskTimer = setInterval(() => {
      void diskUsage(this.stateDir).then((b) => (this.process.rocksdbDiskBytes = b));
    }, 10_000).unref();
  }

  taskDeployed(
    executionId: string,
    t: { jobId: string; jobName: string; vertexId: string; vertexName: string; subtaskIndex: number },
  ): void {
    this.labels.set(executionId, {
      job: t.jobId,
      job_name: t.jobName,
      operator: t.vertexName,
      operator_id: t.vertexId,
      subtask: String(t.subtaskIndex),
    });
  }

  update(m: TaskMetrics): void {
    this.samples.set(m.executionId!, m);
    this.rates.update(m as TaskMetrics__Output);
  }

  /** The task ended: its last sample stays a little so the JobManager hears the final counts. */
  taskEnded(executionId: string): void {
    setTimeout(() => {
      this.samples.delete(executionId);
      this.labels.delete(executionId);
      this.rates.delete(executionId);
    }, 5_000).unref();
  }

  processSample(): ProcessMetrics {
    return this.process.sample();
  }

  async serve(host: string, port: number, advertisedHost: string): Promise<void> {
    // prom-client is loaded only by a TaskManager that serves Prometheus
    const { createRegistry, registerTaskMetrics } = await import('@weir/core/prometheus');
    const registry = createRegistry();
    registerTaskMetrics(registry, () => this.views());
    const { server, port: bound } = await listenHttp(
      host,
      port,
      (req, res) => {
        if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
          res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":["only GET /metrics"]}');
          return;
        }
        registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
          (err: Error) => res.writeHead(500).end(err.message),
        );
      },
      'metrics.reporter.prometheus.port',
    );
    this.server = server;
    this.address = `${advertisedHost}:${bound}`;
    this.log.info({ address: this.address }, 'Prometheus endpoint listening (GET /metrics)');
  }

  private *views(): Iterable<{
    labels: TaskLabels;
    sample: TaskMetrics__Output;
    rates: ReturnType<TaskRateTracker['update']>['rates'];
  }> {
    for (const [executionId, labels] of this.labels) {
      const latest = this.rates.get(executionId);
      if (latest) yield { labels, sample: latest.sample, rates: latest.rates };
    }
  }

  async close(): Promise<void> {
    clearInterval(this.diskTimer);
    this.process.close();
    if (this.server) await closeHttp(this.server);
  }
}
