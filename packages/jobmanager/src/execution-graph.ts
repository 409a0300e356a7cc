import { randomUUID } from 'node:crypto';
import type { ExecutionState, JobDetails, JobGraph, JobVertex, TaskDeploymentDescriptor } from '@weir/core';
import type { SlotAllocation } from './resource-manager.js';
import type { RestorePlan } from './restore.js';

/*
 * The execution graph of one attempt (Flink's ExecutionGraph, much reduced): one execution per
 * subtask, the deployment descriptors that wire them together, and the per-vertex view of the
 * job's status. The JobMaster decides when to build, deploy and cancel; this module knows how.
 */

/** One attempt to run one subtask. */
export interface Execution {
  executionId: string;
  vertex: JobVertex;
  subtaskIndex: number;
  /** the index of its pipelined region (see pipelined-regions.ts) */
  region: number;
  /** the failover that created it: 0 for the first deployment; a region's restart raises only its own */
  attempt: number;
  state: ExecutionState;
  slot?: SlotAllocation;
  recordsIn: number;
  recordsOut: number;
  /** a running source whose input ended; it waits for the final checkpoint */
  endOfData?: boolean;
}

export const TERMINAL_TASK: ReadonlySet<ExecutionState> = new Set(['FINISHED', 'CANCELED', 'FAILED']);

/**
 * One new execution per subtask of `vertices` (default: all) for an attempt; reports from older
 * ones are ignored by execution id.
 */
export function createExecutions(
  jobId: string,
  graph: JobGraph,
  attempt: number,
  regionOf: ReadonlyMap<string, number> = new Map(),
  vertices: readonly JobVertex[] = graph.vertices,
): Execution[] {
  const executions: Execution[] = [];
  for (const vertex of vertices) {
    for (let i = 0; i < vertex.parallelism; i++) {
      executions.push({
        executionId: `${jobId.slice(0, 8)}-${vertex.id}-${i}-${randomUUID().slice(0, 4)}`,
        vertex,
        subtaskIndex: i,
        region: regionOf.get(vertex.id) ?? 0,
        attempt,
        state: 'CREATED',
        recordsIn: 0,
        recordsOut: 0,
      });
    }
  }
  return executions;
}

function partitionId(producer: Execution, consumerVertexId: string): string {
  return `${producer.executionId}>${consumerVertexId}`;
}

/** What every task of an attempt is deployed with, besides its place in the graph. */
export interface DeploymentSettings {
  jobContextJson: string;
  checkpointStorage: string;
  checkpointingMode: string;
  /** unaligned checkpoints apply (EXACTLY_ONCE with unaligned enabled) */
  unalignedCheckpoints: boolean;
  alignedCheckpointTimeoutMs: number;
  stateBackend: string;
  incrementalCheckpoints: boolean;
  finalCheckpoint: boolean;
  /** the state the attempt restores, if any */
  restore: RestorePlan | undefined;
}

/**
 * The TaskDeploymentDescriptor of one execution (Flink's TaskDeploymentDescriptorFactory): its
 * input channels (one per connected producer subtask, with the producer's address), its result
 * partitions and what it restores.
 */
export function createDeploymentDescriptor(
  jobId: string,
  g: JobGraph,
  executions: readonly Execution[],
  e: Execution,
  settings: DeploymentSettings,
): TaskDeploymentDescriptor {
  const inputChannels = [];
  for (const edge of g.edges.filter((x) => x.targetVertexId === e.vertex.id)) {
    const producers = executions.filter((p) => p.vertex.id === edge.sourceVertexId);
    const connected =
      edge.partitioner === 'forward' ? producers.filter((p) => p.subtaskIndex === e.subtaskIndex) : producers;
    for (const p of connected) {
      inputChannels.push({
        partitionId: partitionId(p, e.vertex.id),
        subpartitionIndex: e.subtaskIndex,
        producerAddress: p.slot!.taskManager.address,
        producerTaskManagerId: p.slot!.taskManager.id,
        // two-input consumers only: which of their inputs the channel feeds
        ...(edge.typeNumber !== undefined ? { inputIndex: edge.typeNumber } : {}),
      });
    }
  }
  const resultPartitions = g.edges
    .filter((x) => x.sourceVertexId === e.vertex.id)
    .map((edge) => ({
      partitionId: partitionId(e, edge.targetVertexId),
      numberOfSubpartitions: g.vertices.find((v) => v.id === edge.targetVertexId)!.parallelism,
      partitioner: edge.partitioner,
      consumerVertexId: edge.targetVertexId,
      // subpartition i goes to consumer subtask i; the producer serves it to that execution only
      consumerExecutionIds: executions
        .filter((c) => c.vertex.id === edge.targetVertexId)
        .sort((a, b) => a.subtaskIndex - b.subtaskIndex)
        .map((c) => c.executionId),
    }));
  return {
    jobId,
    jobName: g.jobName,
    executionId: e.executionId,
    vertexId: e.vertex.id,
    vertexName: e.vertex.name,
    subtaskIndex: e.subtaskIndex,
    parallelism: e.vertex.parallelism,
    maxParallelism: e.vertex.maxParallelism,
    attemptNumber: e.attempt,
    slotIndex: e.slot!.slotIndex,
    operatorIds: e.vertex.operators.map((o) => o.id),
    inputChannels,
    resultPartitions,
    jobContextJson: settings.jobContextJson,
    checkpointStorage: settings.checkpointStorage,
    checkpointingMode: settings.checkpointingMode,
    unalignedCheckpoints: settings.unalignedCheckpoints,
    alignedCheckpointTimeoutMs: settings.alignedCheckpointTimeoutMs,
    stateBackend: settings.stateBackend,
    incrementalCheckpoints: settings.incrementalCheckpoints,
    restoreJson: settings.restore
      ? JSON.stringify(
          settings.restore.forSubtask(
            e.vertex.operators.map((o) => o.id),
            e.subtaskIndex,
            e.vertex.parallelism,
          ),
        )
      : '',
    finalCheckpoint: settings.finalCheckpoint,
  };
}

/** The vertices, subtasks and record counts of `weir status`. */
export function executionDetails(
  graph: JobGraph,
  executions: readonly Execution[],
): Pick<JobDetails, 'vertices' | 'recordsIn' | 'recordsOut'> {
  const vertices = graph.vertices.map((v) => ({
    vertexId: v.id,
    name: v.name,
    parallelism: v.parallelism,
    subtasks: executions
      .filter((e) => e.vertex === v)
      .map((e) => ({
        executionId: e.executionId,
        subtaskIndex: e.subtaskIndex,
        state: e.state,
        taskManagerId: e.slot?.taskManager.id ?? '',
        recordsIn: e.recordsIn,
        recordsOut: e.recordsOut,
      })),
  }));
  const sources = executions.filter((e) => e.vertex.isSource);
  const sinks = executions.filter((e) => !graph.edges.some((x) => x.sourceVertexId === e.vertex.id));
  return {
    vertices,
    recordsIn: sources.reduce((s, e) => s + e.recordsIn, 0),
    recordsOut: sinks.reduce((s, e) => s + e.recordsIn, 0),
  };
}
