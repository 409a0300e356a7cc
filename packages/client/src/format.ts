import type {
  CheckpointStats,
  CheckpointStatsSnapshot,
  ClusterOverview__Output,
  JobDetails__Output,
  JobRestart__Output,
} from '@weir/core';

export function formatRate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)}M/s`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)}k/s`;
  return `${Math.round(perSecond)}/s`;
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

export function shortStatus(s: string): string {
  return s.replace(/^JOB_/, '');
}

/** Counts of subtasks per state, e.g. "4 RUNNING, 2 FINISHED". */
export function taskStates(d: JobDetails__Output): string {
  const counts = new Map<string, number>();
  for (const v of d.vertices) for (const s of v.subtasks) counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
  return [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
}

/** The cluster in a few lines: dashboard, TaskManagers with slots, memory and Prometheus endpoint. */
export function describeCluster(c: ClusterOverview__Output): string {
  const mb = (b: number | string): string => `${Math.round(Number(b) / 1048576)} MB`;
  const lines = [
    `Cluster: ${c.taskManagers.length} TaskManagers, ${c.freeSlots} of ${c.totalSlots} slots free`,
    c.restAddress
      ? `  dashboard and REST API: http://${c.restAddress}/ (Prometheus: /metrics)`
      : '  REST API: off',
  ];
  for (const tm of c.taskManagers)
    lines.push(
      `  ${tm.taskManagerId.padEnd(12)} ${tm.address.padEnd(21)} slots ${tm.freeSlots}/${tm.slots} free, RSS ${mb(tm.rssBytes)}, heap ${mb(tm.heapUsedBytes)}, metrics ${tm.metricsAddress ? `http://${tm.metricsAddress}/metrics` : 'none'}`,
    );
  return lines.join('\n');
}

export function describeJob(d: JobDetails__Output): string {
  const lines = [
    `Job ${d.jobId} '${d.name}': ${shortStatus(d.status)}`,
    `  started ${new Date(Number(d.startTime)).toISOString()}${Number(d.endTime) ? `, ended ${new Date(Number(d.endTime)).toISOString()}` : ''}`,
    `  records read by sources: ${d.recordsIn}, written to sinks: ${d.recordsOut}`,
  ];
  if (d.waitingReason) lines.push(`  ${d.waitingReason}`);
  if (d.failureCause)
    lines.push(
      `  ${d.restarts.length > 0 && d.status !== 'JOB_FAILED' ? 'last failure' : 'cause'}: ${d.failureCause}`,
    );
  if (d.restarts.length > 0) {
    lines.push(`  restarts: ${d.numRestarts}`);
    for (const r of d.restarts) lines.push(`    ${describeRestart(r)}`);
  }
  for (const v of d.vertices) {
    lines.push(`  ${v.name} (parallelism ${v.parallelism})`);
    for (const s of v.subtasks) {
      lines.push(
        `    #${s.subtaskIndex} ${s.state.padEnd(9)} ${s.taskManagerId.padEnd(12)} in ${s.recordsIn} out ${s.recordsOut}`,
      );
    }
  }
  if (d.failure?.stack) lines.push('', `  ${d.failure.stack.split('\n').join('\n  ')}`);
  return lines.join('\n');
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

/** One failover in a line: when, why, and how long each step of the recovery took. */
export function describeRestart(r: JobRestart__Output): string {
  const at = (t: number | string): number => Number(t);
  const steps: string[] = [];
  if (at(r.runningAt)) {
    steps.push(`running again after ${secs(at(r.runningAt) - at(r.detectedAt))}`);
    if (at(r.canceledAt)) steps.push(`old tasks ended ${secs(at(r.canceledAt) - at(r.detectedAt))}`);
    if (at(r.deployedAt)) steps.push(`deployed ${secs(at(r.deployedAt) - at(r.detectedAt))}`);
    if (at(r.stateRestoreMs)) steps.push(`state restore ${at(r.stateRestoreMs)} ms`);
  } else {
    steps.push('recovering');
  }
  if (at(r.firstCheckpointAt))
    steps.push(`first checkpoint ${secs(at(r.firstCheckpointAt) - at(r.detectedAt))}`);
  const from = at(r.restoredCheckpointId)
    ? `from checkpoint ${r.restoredCheckpointId}`
    : r.restoredFrom
      ? `from ${r.restoredFrom}`
      : 'from scratch';
  const what = r.region ? ` ${r.region}` : '';
  return `#${r.attempt} ${new Date(at(r.detectedAt)).toISOString()}${what} ${from}: ${steps.join(', ')}; cause: ${r.cause}`;
}

export function formatBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

export function checkpointLine(c: CheckpointStats): string {
  const timing = c.durationMs !== undefined ? `${c.durationMs} ms` : 'in progress';
  return `#${c.id} ${c.status.padEnd(11)} ${new Date(c.triggerTime).toISOString()}  ${timing.padStart(10)}  sync ${c.maxSyncDurationMs} ms  async ${c.maxAsyncDurationMs} ms  alignment ${c.maxAlignmentDurationMs} ms  ${formatBytes(c.stateSizeBytes)}${c.unaligned ? `  unaligned, in-flight ${formatBytes(c.persistedDataBytes ?? 0)}` : ''}${c.failureReason ? `  (${c.failureReason})` : ''}`;
}

export function describeCheckpoints(s: CheckpointStatsSnapshot): string {
  if (s.disabled) return 'Checkpointing is not enabled for this job (env.enableCheckpointing(ms)).';
  const lines = [
    `checkpoints: ${s.counts!.completed} completed, ${s.counts!.failed} failed, ${s.counts!.inProgress} in progress`,
  ];
  if (s.latestCompleted)
    lines.push(`latest completed: #${s.latestCompleted.id} at ${s.latestCompleted.path}`);
  for (const c of [...(s.history ?? [])].reverse()) {
    lines.push(checkpointLine(c));
    for (const t of c.subtasks) {
      lines.push(
        `    ${t.vertex} (${t.subtask + 1}) ${t.acknowledged ? `sync ${t.syncDurationMs} ms, async ${t.asyncDurationMs} ms, alignment ${t.alignmentDurationMs} ms, ${formatBytes(t.stateSizeBytes ?? 0)}${t.unaligned ? `, unaligned, in-flight ${formatBytes(t.persistedDataBytes ?? 0)}` : ''}` : 'pending'}`,
      );
    }
  }
  return lines.join('\n');
}
