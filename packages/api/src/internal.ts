/**
 * `@weir/api/internal`: the runtime's side of the API, for core, the JobManager and the
 * TaskManager, not for job code. The planner hook that turns a job module into a stream graph,
 * the graph's parts, and the defaults the cluster fills in. These are the same modules
 * `@weir/api` loads, so a job and the runtime share one planner and one set of classes.
 */
export { currentPlanner, installPlanner, type JobPlanner } from './planner.js';
export {
  buildStreamGraph,
  TWO_INPUT_KINDS,
  type SinkPath,
  type StreamEdge,
  type StreamGraph,
  type StreamNode,
} from './stream-graph.js';
export type {
  OperatorKind,
  Partitioner,
  PartitionerType,
  IntervalJoinSpec,
  Transformation,
  WindowSpec,
} from './transformation.js';
export {
  DEFAULT_CHECKPOINT_SETTINGS,
  unalignedCheckpointsApply,
  unalignedCheckpointsIgnored,
  type CheckpointSettings,
} from './checkpoint-config.js';
export { RESTART_STRATEGY_DEFAULTS, validateRestartStrategy } from './restart-strategy.js';
export { DEFAULT_MAX_PARALLELISM } from './environment.js';
