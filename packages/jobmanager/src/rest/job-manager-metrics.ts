import { NO_RATES } from '@weir/core';
import {
  Gauge,
  createRegistry,
  registerProcessMetrics,
  registerTaskMetrics,
  type Registry,
  type TaskMetricsView,
} from '@weir/core/prometheus';
import type { JobMaster } from '../job-master.js';
import type { ResourceManager } from '../resource-manager.js';
import { jobState } from './job-views.js';

/**
 * The JobManager's Prometheus registry: cluster figures, per-job checkpoint and restart
 * figures, every subtask's I/O figures (from the samples TaskManagers send with their
 * heartbeats), the TaskManagers' process figures and the JobManager's own. Read at scrape time.
 */
export function jobManagerRegistry(jobs: Map<string, JobMaster>, rm: ResourceManager): Registry {
  const registry = createRegistry();
  registerTaskMetrics(registry, function* (): Iterable<TaskMetricsView> {
    for (const job of jobs.values()) {
      if (job.isTerminal) continue;
      for (const e of job.executionsOfAttempt()) {
        const m = job.taskMetrics.get(e.executionId);
        if (!m) continue;
        yield {
          labels: {
            job: job.jobId,
            job_name: job.name,
            operator: e.vertex.name,
            operator_id: e.vertex.id,
            subtask: String(e.subtaskIndex),
          },
          sample: m.sample,
          rates: m.rates ?? NO_RATES,
        };
      }
    }
  });
  registerProcessMetrics(registry, 'taskmanager', () =>
    [...rm.taskManagers.values()].flatMap((tm) => (tm.process ? [{ id: tm.id, process: tm.process }] : [])),
  );
  const cluster = (name: string, help: string, read: () => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  };
  cluster('weir_cluster_taskmanagers', 'registered TaskManagers', () => rm.taskManagers.size);
  cluster('weir_cluster_slots_total', 'task slots of all TaskManagers', () => rm.totalSlots());
  cluster('weir_cluster_slots_available', 'free task slots', () => rm.freeSlots());
  new Gauge({
    name: 'weir_cluster_jobs',
    help: 'jobs by state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      const counts = new Map<string, number>();
      for (const j of jobs.values()) counts.set(jobState(j), (counts.get(jobState(j)) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  const perJob = (name: string, help: string, read: (j: JobMaster) => number | undefined): void => {
    new Gauge({
      name,
      help,
      labelNames: ['job', 'job_name'],
      registers: [registry],
      collect() {
        this.reset();
        for (const j of jobs.values()) {
          if (j.isTerminal) continue;
          const v = read(j);
          if (v !== undefined) this.set({ job: j.jobId, job_name: j.name }, v);
        }
      },
    });
  };
  const stats = (j: JobMaster): ReturnType<JobMaster['coordinator']['snapshotStats']> =>
    j.coordinator.snapshotStats();
  perJob('weir_job_running', '1 while the job is RUNNING, else 0', (j) =>
    j.status === 'JOB_RUNNING' ? 1 : 0,
  );
  perJob(
    'weir_job_uptime_ms',
    'time since the job was submitted or recovered',
    (j) => Date.now() - j.startTime,
  );
  perJob('weir_job_num_restarts', 'restarts of the job (Flink numRestarts)', (j) => j.restarts.count);
  perJob('weir_job_last_recovery_ms', 'from failure detection to all tasks running, latest restart', (j) => {
    const r = j.restarts.latest();
    return r && r.runningAt ? r.runningAt - r.detectedAt : undefined;
  });
  perJob(
    'weir_job_checkpoints_completed',
    'completed checkpoints (Flink numberOfCompletedCheckpoints)',
    (j) => stats(j).counts.completed,
  );
  perJob(
    'weir_job_checkpoints_failed',
    'failed checkpoints (Flink numberOfFailedCheckpoints)',
    (j) => stats(j).counts.failed,
  );
  perJob('weir_job_checkpoints_in_progress', 'checkpoints in progress', (j) => stats(j).counts.inProgress);
  perJob(
    'weir_job_checkpoints_restored',
    'restores from a checkpoint or savepoint',
    (j) => stats(j).counts.restored,
  );
  perJob(
    'weir_job_last_checkpoint_id',
    'id of the latest completed checkpoint',
    (j) => stats(j).latestCompleted?.id,
  );
  perJob(
    'weir_job_last_checkpoint_duration_ms',
    'duration of the latest completed checkpoint',
    (j) => stats(j).latestCompleted?.durationMs,
  );
  perJob(
    'weir_job_last_checkpoint_size_bytes',
    'state size of the latest completed checkpoint',
    (j) => stats(j).latestCompleted?.stateSizeBytes,
  );
  perJob(
    'weir_job_last_checkpoint_alignment_ms',
    'longest barrier alignment of the latest completed checkpoint',
    (j) => stats(j).latestCompleted?.maxAlignmentDurationMs,
  );
  return registry;
}
