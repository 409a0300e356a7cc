import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { ProcessMetrics__Output, TaskMetrics__Output } from '../rpc/types.js';
import type { TaskRates } from './task-rates.js';

/*
 * Prometheus exposition shared by the JobManager and the TaskManagers (prom-client). Every
 * family reads the latest samples when scraped (`collect`), so nothing is updated per record
 * and a scrape costs one pass over the tasks. Imported as `@weir/core/prometheus`, so a client
 * program never loads prom-client.
 */

export { Gauge, Registry };

export interface TaskLabels {
  job: string;
  job_name: string;
  operator: string;
  operator_id: string;
  subtask: string;
}

export interface TaskMetricsView {
  labels: TaskLabels;
  sample: TaskMetrics__Output;
  rates: TaskRates;
}

const TASK_LABELS = ['job', 'job_name', 'operator', 'operator_id', 'subtask'] as const;

type Read = (t: TaskMetricsView) => number | undefined;

/** A new registry with this process's own figures (heap, RSS, event-loop lag, GC) as weir_process_*. */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'weir_' });
  return registry;
}

/** The per-subtask families (Flink's task and operator I/O metrics), read from `tasks()` at each scrape. */
export function registerTaskMetrics(registry: Registry, tasks: () => Iterable<TaskMetricsView>): void {
  const counter = (name: string, help: string, read: Read): void => {
    new Counter({
      name,
      help,
      labelNames: TASK_LABELS,
      registers: [registry],
      collect() {
        this.reset();
        for (const t of tasks()) {
          const v = read(t);
          if (v !== undefined) this.inc(t.labels, Math.max(0, v));
        }
      },
    });
  };
  const gauge = (name: string, help: string, read: Read): void => {
    new Gauge({
      name,
      help,
      labelNames: TASK_LABELS,
      registers: [registry],
      collect() {
        this.reset();
        for (const t of tasks()) {
          const v = read(t);
          if (v !== undefined) this.set(t.labels, v);
        }
      },
    });
  };
  const num = (v: number | string | undefined | null): number => Number(v ?? 0) || 0;
  counter('weir_task_num_records_in_total', 'records the subtask read', (t) => num(t.sample.recordsIn));
  counter('weir_task_num_records_out_total', 'records the subtask emitted', (t) => num(t.sample.recordsOut));
  counter('weir_task_num_bytes_in_total', 'bytes the subtask read from its input channels', (t) =>
    num(t.sample.bytesIn),
  );
  counter('weir_task_num_bytes_out_total', 'bytes the subtask sent to its output channels', (t) =>
    num(t.sample.bytesOut),
  );
  counter(
    'weir_task_num_late_records_dropped_total',
    'records dropped because they arrived after the watermark passed their window',
    (t) => num(t.sample.numLateRecordsDropped),
  );
  gauge('weir_task_num_records_in_per_second', 'records read per second', (t) => t.rates.recordsInPerSecond);
  gauge(
    'weir_task_num_records_out_per_second',
    'records emitted per second',
    (t) => t.rates.recordsOutPerSecond,
  );
  gauge(
    'weir_task_busy_time_ms_per_second',
    'ms per second the subtask was processing (Flink busyTimeMsPerSecond)',
    (t) => t.rates.busyTimeMsPerSecond,
  );
  gauge(
    'weir_task_backpressured_time_ms_per_second',
    'ms per second the subtask waited for output credit (Flink backPressuredTimeMsPerSecond)',
    (t) => t.rates.backPressuredTimeMsPerSecond,
  );
  gauge(
    'weir_task_idle_time_ms_per_second',
    'ms per second the subtask had nothing to do (Flink idleTimeMsPerSecond)',
    (t) => t.rates.idleTimeMsPerSecond,
  );
  gauge(
    'weir_task_input_buffer_usage',
    'queued input buffers over the credits granted, 0..1',
    (t) => t.sample.inputBufferUsage,
  );
  gauge(
    'weir_task_output_buffer_usage',
    'unsent output buffers over the backlog allowed, fullest subpartition, 0..1',
    (t) => t.sample.outputBufferUsage,
  );
  gauge('weir_task_current_input_watermark', 'the smallest watermark over the inputs (ms)', (t) =>
    t.sample.hasInputWatermark ? t.sample.currentInputWatermark : undefined,
  );
}

/** Process figures other processes reported (the JobManager's view of its TaskManagers). */
export function registerProcessMetrics(
  registry: Registry,
  labelName: string,
  processes: () => Iterable<{ id: string; process: ProcessMetrics__Output }>,
): void {
  const families: Array<[string, string, (p: ProcessMetrics__Output) => number]> = [
    ['rss_bytes', 'resident set size', (p) => Number(p.rssBytes)],
    ['heap_used_bytes', 'JavaScript heap in use', (p) => Number(p.heapUsedBytes)],
    ['heap_total_bytes', 'JavaScript heap reserved', (p) => Number(p.heapTotalBytes)],
    [
      'event_loop_delay_p99_ms',
      'event-loop delay, 99th percentile over the last second',
      (p) => p.eventLoopDelayP99Ms,
    ],
    [
      'event_loop_delay_max_ms',
      'event-loop delay, maximum over the last second',
      (p) => p.eventLoopDelayMaxMs,
    ],
    ['gc_count', 'garbage collections since start', (p) => Number(p.gcCount)],
    ['gc_time_ms', 'time in garbage collection since start', (p) => p.gcTimeMs],
    ['rocksdb_disk_bytes', 'bytes of RocksDB state on local disk', (p) => Number(p.rocksdbDiskBytes)],
  ];
  for (const [suffix, help, read] of families) {
    new Gauge({
      name: `weir_${labelName}_${suffix}`,
      help,
      labelNames: [labelName],
      registers: [registry],
      collect() {
        this.reset();
        for (const p of processes()) this.set({ [labelName]: p.id }, read(p.process) || 0);
      },
    });
  }
}
