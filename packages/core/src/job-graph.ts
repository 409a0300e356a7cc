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
import { PayloadReader, fieldPath } from './json-payload.js';

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
  /** the source has a split enumerator, which the JobManager runs */
  coordinatedSource?: boolean;
}

const hasEnumerator = (source: unknown): boolean =>
  typeof (source as { createEnumerator?: unknown } | undefined)?.createEnumerator === 'function';

export interface JobEdge {
  sourceVertexId: string;
  targetVertexId: string;
  /** the operator at the producing end of the edge (the tail of the source chain) */
  sourceOperatorId: string;
  targetOperatorId: string;
  partitioner: PartitionerType;
  /** into a two-input operator: which input (0: first, 1: second) */
  typeNumber?: number;
}

/**
 * The job graph a client submits (`job_graph_json`), checked field by field: every field the
 * JobManager schedules and deploys with, and that edges join vertices of the graph. `what`
 * names the payload in errors ("Invalid job graph: vertices[1].parallelism must be ...").
 */
export function parseJobGraph(text: string, what: string): JobGraph {
  const r = new PayloadReader(what);
  const g = r.object(r.parse(text), '');
  r.string(g.jobName, 'jobName');
  r.integer(g.maxParallelism, 'maxParallelism', 1);
  const vertices = r.eachElement(g.vertices, 'vertices', (v, p) => {
    const o = r.object(v, p);
    r.string(o.id, fieldPath(p, 'id'));
    r.string(o.name, fieldPath(p, 'name'));
    r.integer(o.parallelism, fieldPath(p, 'parallelism'), 1);
    r.integer(o.maxParallelism, fieldPath(p, 'maxParallelism'), 1);
    r.boolean(o.isSource, fieldPath(p, 'isSource'));
    r.optional(o, p, 'coordinatedSource', (x, q) => r.boolean(x, q));
    const ops = r.eachElement(o.operators, fieldPath(p, 'operators'), (op, opp) => {
      const x = r.object(op, opp);
      r.string(x.id, fieldPath(opp, 'id'));
      r.string(x.name, fieldPath(opp, 'name'));
      r.string(x.kind, fieldPath(opp, 'kind'));
      r.boolean(x.keyed, fieldPath(opp, 'keyed'));
    });
    if (ops.length === 0) r.fail(fieldPath(p, 'operators'), 'a non-empty array');
  }) as JobVertex[];
  if (vertices.length === 0) r.fail('vertices', 'a non-empty array (the job graph has no vertices)');
  const ids = new Set(vertices.map((v) => v.id));
  r.eachElement(g.edges, 'edges', (e, p) => {
    const o = r.object(e, p);
    for (const k of ['sourceVertexId', 'targetVertexId']) {
      if (!ids.has(r.string(o[k], fieldPath(p, k))))
        r.fail(fieldPath(p, k), 'the id of a vertex of the graph');
    }
    r.string(o.sourceOperatorId, fieldPath(p, 'sourceOperatorId'));
    r.string(o.targetOperatorId, fieldPath(p, 'targetOperatorId'));
    r.oneOf(o.partitioner, fieldPath(p, 'partitioner'), [
      'forward',
      'hash',
      'rebalance',
      'broadcast',
    ] as const);
  });
  r.object(g.checkpoint, 'checkpoint');
  r.optional(g, '', 'stateBackend', (x, p) => r.string(x, p));
  r.optional(g, '', 'incrementalCheckpoints', (x, p) => r.boolean(x, p));
  r.optional(g, '', 'restartStrategy', (x, p) => r.string(r.object(x, p).type, fieldPath(p, 'type')));
  r.optional(g, '', 'sinkPaths', (x, p) =>
    r.eachElement(x, p, (sp, spp) => {
      const o = r.object(sp, spp);
      for (const k of ['operatorId', 'operatorName', 'path']) r.string(o[k], fieldPath(spp, k));
    }),
  );
  return g as unknown as JobGraph;
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
      e.outputTag === undefined &&
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
      ...(hasEnumerator(node.transformation.source) ? { coordinatedSource: true } : {}),
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
      ...(e.typeNumber !== undefined ? { typeNumber: e.typeNumber } : {}),
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
