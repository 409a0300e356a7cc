/**
 * The client library: bundle a job file, submit it, follow it, cancel it, take savepoints and
 * read checkpoint statistics. It talks to a JobManager over gRPC and never starts one: the
 * `weir` CLI and the local cluster launcher are in @weir/cli.
 */
export { bundleJob, JobFileError } from './bundler.js';
export { ClusterClient } from './cluster-client.js';
export type { CheckpointStats, CheckpointStatsSnapshot } from '@weir/core';
export { defaultProgress, resolveLocation, runJob, type RunOptions } from './run-job.js';
export {
  checkpointLine,
  describeCheckpoints,
  describeCluster,
  describeJob,
  describeRestart,
  formatBytes,
  formatCount,
  formatRate,
  shortStatus,
  taskStates,
} from './format.js';
