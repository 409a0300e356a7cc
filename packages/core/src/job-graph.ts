import type { RestartStrategyConfiguration, StateBackendType } from '@weir/api';
import type {
  CheckpointSettings,
  OperatorKind,
  PartitionerType,
  SinkPath,
  StreamEdge,
  StreamGraph,
  StreamNode,
} from '@weir/api/internal';

/** Serializable plan of a job: vertices are operator chains, edges carry a partitioner. */
export interface JobGraph {
  jobName: string;
  maxParallelism: number;
  vertices: JobVertex[];
  edges: JobEdge[];
  /** set by the job; the JobManager merges them over its configuration */
  checkpoint: Partial<CheckpointSettings>;
  /** set by the job (setStateBackend); else the JobManager's configuration decides */
  stateBackend?: StateBackendType;
  /** set by the job (setStateBackend(.., { incremental })); else state.backend.incremental */
  incrementalCheckpoints?: boolean;
  restartStrategy?: RestartStrategyConfiguration;
  /** directories the job's sinks write to (FileSink paths, relative to the job's working directory) */
  sinkPaths?: SinkPath[];
}

export interface ChainedOperator {
  id: string;
  name: string;
  kind: OperatorKind;
  keyed: boolean;
}

export interface JobVertex {
  /** the head operator's id */
  id: string;
  name: string;
  parallelism: number;
  maxParallelism: number;
  /** head first */
  operators: ChainedOperator[];
  isSource: boolean;
}

export interface JobEdge {
  sourceVertexId: string;
  targetVertexId: string;
  /** the operator at the producing end of the edge (the tail of the source chain) */
  sourceOperatorId: string;
  targetOperatorId: string;
  partitioner: PartitionerType;
}

/**
 * Chains operators connected one-to-one (forward edge, equal parallelism, single input), as
 * Flink does, so records pass between them as function calls.
 */
export function buildJobGraph(graph: StreamGraph): JobGraph {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const inEdges = new Map<string, StreamEdge[]>();
  const outEdges = new Map<string, StreamEdge[]>();
  for (const e of graph.edges) {
    (inEdges.get(e.targetId) ?? inEdges.set(e.targetId, []).get(e.targetId)!).push(e);
    (outEdges.get(e.sourceId) ?? outEdges.set(e.sourceId, []).get(e.sourceId)!).push(e);
  }
  const chainable = (e: StreamEdge): boolean => {
    const src = byId.get(e.sourceId)!;
    const dst = byId.get(e.targetId)!;
    return (
      e.partitioner.type === 'forward' &&
      src.parallelism === dst.parallelism &&
      (inEdges.get(dst.id)?.length ?? 0) === 1 &&
      (outEdges.get(src.id)?.length ?? 0) === 1 &&
      dst.kind !== 'source'
    );
  };

  const headOf = new Map<string, string>();
  const vertices: JobVertex[] = [];
  for (const node of graph.nodes) {
    const ins = inEdges.get(node.id) ?? [];
    if (ins.length === 1 && chainable(ins[0]!)) continue; // not a chain head
    const chain: StreamNode[] = [node];
    let cur = node;
    for (;;) {
      const outs = outEdges.get(cur.id) ?? [];
      if (outs.length !== 1 || !chainable(outs[0]!)) break;
      cur = byId.get(outs[0]!.targetId)!;
      chain.push(cur);
    }
    for (const n of chain) headOf.set(n.id, node.id);
    vertices.push({
      id: node.id,
      name: chain.map((n) => n.name).join(' -> '),
      parallelism: node.parallelism,
      maxParallelism: graph.maxParallelism,
      operators: chain.map((n) => ({
        id: n.id,
        name: n.name,
        kind: n.kind,
        keyed: n.keySelector !== undefined,
      })),
      isSource: node.kind === 'source',
    });
  }
  const edges: JobEdge[] = graph.edges
    .filter((e) => headOf.get(e.sourceId) !== headOf.get(e.targetId))
    .map((e) => ({
      sourceVertexId: headOf.get(e.sourceId)!,
      targetVertexId: headOf.get(e.targetId)!,
      sourceOperatorId: e.sourceId,
      targetOperatorId: e.targetId,
      partitioner: e.partitioner.type,
    }));
  return {
    jobName: graph.jobName,
    maxParallelism: graph.maxParallelism,
    vertices,
    edges,
    checkpoint: graph.checkpoint ?? {},
    ...(graph.stateBackend ? { stateBackend: graph.stateBackend } : {}),
    ...(graph.incrementalCheckpoints !== undefined
      ? { incrementalCheckpoints: graph.incrementalCheckpoints }
      : {}),
    ...(graph.restartStrategy ? { restartStrategy: graph.restartStrategy } : {}),
    ...(graph.sinkPaths ? { sinkPaths: graph.sinkPaths } : {}),
  };
}

/** How many slots a job needs: slot sharing puts one subtask of every vertex in a slot. */
export function requiredSlots(graph: JobGraph): number {
  return Math.max(...graph.vertices.map((v) => v.parallelism));
}
