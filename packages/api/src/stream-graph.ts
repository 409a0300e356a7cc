import type { KeySelector } from './functions.js';
import type { OperatorKind, Partitioner, Transformation } from './transformation.js';
import type { CheckpointSettings } from './checkpoint-config.js';
import type { RestartStrategyConfiguration } from './restart-strategy.js';

export interface StreamNode {
  /** stable across runs of the same job file: from `uid()`, else from the node's position */
  id: string;
  name: string;
  kind: OperatorKind;
  parallelism: number;
  maxParallelism: number;
  transformation: Transformation;
  keySelector?: KeySelector<unknown, unknown>;
}

export interface StreamEdge {
  sourceId: string;
  targetId: string;
  partitioner: Partitioner;
  /** the id of the producer's side output this edge carries (getSideOutput); none: its main output */
  outputTag?: string;
  /** on edges into a two-input operator: which input (0: first, 1: second) the edge feeds */
  typeNumber?: number;
}

export interface StreamGraph {
  jobName: string;
  maxParallelism: number;
  nodes: StreamNode[];
  edges: StreamEdge[];
  /** the checkpoint settings the job made itself; the cluster fills in the rest */
  checkpoint?: Partial<CheckpointSettings>;
  /** the keyed state backend the job chose; else the cluster's (state.backend.type), else heap */
  stateBackend?: StateBackendType;
  /** incremental checkpoints of keyed state, if the job said (setStateBackend's options); else the cluster's state.backend.incremental */
  incrementalCheckpoints?: boolean;
  /** the job's own restart strategy, if it set one */
  restartStrategy?: RestartStrategyConfiguration;
  /** pipeline.auto-watermark-interval the job set (setAutoWatermarkInterval); else the cluster's */
  autoWatermarkIntervalMs?: number;
  /** directories the job's sinks write to, so the JobManager can refuse two running jobs in one */
  sinkPaths?: SinkPath[];
}

/** A sink that writes files into a directory (a sink with an `outputPath`, as FileSink). */
export interface SinkPath {
  operatorId: string;
  operatorName: string;
  /** as the job gave it: relative paths are relative to the job's working directory */
  path: string;
}

/** Where keyed state lives: `heap` (maps in the task's memory) or `rocksdb` (on local disk). */
export type StateBackendType = 'heap' | 'rocksdb';

/** Options of a state backend (Flink's EmbeddedRocksDBStateBackend(enableIncrementalCheckpointing)). */
export interface StateBackendOptions {
  /**
   * Checkpoints upload only what changed since the last completed checkpoint and reference the
   * rest in shared files (RocksDB backend). Savepoints are always full and self-contained.
   */
  incremental?: boolean;
}

/** Operators with two inputs (`connect`, interval join, broadcast): their edges say which input they feed. */
export const TWO_INPUT_KINDS: ReadonlySet<OperatorKind> = new Set<OperatorKind>([
  'coProcess',
  'keyedCoProcess',
  'intervalJoin',
  'broadcastProcess',
  'keyedBroadcastProcess',
]);

function operatorId(t: Transformation): string {
  return t.uid !== undefined ? `uid-${t.uid}` : `${t.kind}-${t.seq}`;
}

/**
 * Resolves virtual union and partition nodes into edges. Where no partitioning was given,
 * equal parallelism means forward (chainable) and different parallelism means rebalance,
 * as in Flink.
 */
export function buildStreamGraph(
  jobName: string,
  sinks: Transformation[],
  defaultParallelism: number,
  maxParallelism: number,
): StreamGraph {
  const nodes = new Map<number, StreamNode>();
  const edges: StreamEdge[] = [];
  const ids = new Set<string>();

  const visit = (t: Transformation): void => {
    if (nodes.has(t.seq) || t.kind === 'union' || t.kind === 'partition' || t.kind === 'sideOutput') {
      if (t.kind === 'union' || t.kind === 'partition' || t.kind === 'sideOutput') t.inputs.forEach(visit);
      return;
    }
    const id = operatorId(t);
    if (ids.has(id))
      throw new Error(`Duplicate operator uid '${t.uid}': every uid() in a job must be unique`);
    ids.add(id);
    let parallelism = t.parallelism ?? defaultParallelism;
    if (t.parallelismCap !== undefined) parallelism = Math.min(parallelism, t.parallelismCap);
    if (parallelism > maxParallelism) {
      throw new Error(
        `Operator '${t.name}' has parallelism ${parallelism} above the max parallelism ${maxParallelism}`,
      );
    }
    const node: StreamNode = {
      id,
      name: t.name,
      kind: t.kind,
      parallelism,
      maxParallelism,
      transformation: t,
    };
    if (t.keySelector) node.keySelector = t.keySelector;
    nodes.set(t.seq, node);
    t.inputs.forEach(visit);
  };
  sinks.forEach(visit);

  /** physical upstream nodes of a transformation, each with the partitioner on its way */
  const upstream = (
    t: Transformation,
    partitioner: Partitioner | undefined,
    tag: string | undefined,
  ): Array<[StreamNode, Partitioner | undefined, string | undefined]> => {
    if (t.kind === 'union') return t.inputs.flatMap((i) => upstream(i, partitioner, tag));
    if (t.kind === 'partition')
      return t.inputs.flatMap((i) => upstream(i, partitioner ?? t.partitioner, tag));
    if (t.kind === 'sideOutput') return t.inputs.flatMap((i) => upstream(i, partitioner, t.outputTag!.id));
    return [[nodes.get(t.seq)!, partitioner, tag]];
  };

  for (const node of nodes.values()) {
    const twoInput = TWO_INPUT_KINDS.has(node.kind);
    const seen = new Map<string, number>();
    node.transformation.inputs.forEach((input, typeNumber) => {
      for (const [src, p, tag] of upstream(input, undefined, undefined)) {
        // one partition per producer and consumer: a producer cannot feed both inputs
        if (twoInput && seen.has(src.id) && seen.get(src.id) !== typeNumber)
          throw new Error(
            `'${node.name}' reads '${src.name}' on both inputs; connect two different streams (e.g. add a map() on one side)`,
          );
        seen.set(src.id, typeNumber);
        const partitioner: Partitioner = p ?? {
          type: src.parallelism === node.parallelism ? 'forward' : 'rebalance',
        };
        if (partitioner.type === 'forward' && src.parallelism !== node.parallelism) {
          throw new Error(
            `Forward partitioning needs equal parallelism: '${src.name}' (${src.parallelism}) -> '${node.name}' (${node.parallelism})`,
          );
        }
        edges.push({
          sourceId: src.id,
          targetId: node.id,
          partitioner,
          ...(tag ? { outputTag: tag } : {}),
          ...(twoInput ? { typeNumber } : {}),
        });
      }
    });
  }
  const ordered = [...nodes.values()].sort((a, b) => a.transformation.seq - b.transformation.seq);
  const sinkPaths = ordered.flatMap((n): SinkPath[] => {
    const p = (n.transformation.sink as { outputPath?: unknown } | undefined)?.outputPath;
    return typeof p === 'string' ? [{ operatorId: n.id, operatorName: n.name, path: p }] : [];
  });
  return { jobName, maxParallelism, nodes: ordered, edges, ...(sinkPaths.length ? { sinkPaths } : {}) };
}
