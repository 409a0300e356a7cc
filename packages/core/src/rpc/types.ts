/** The generated message types, re-exported under short names. */
export type { Ack, Ack__Output } from '../generated/weir/Ack.js';
export type { RegisterTaskManagerResponse__Output } from '../generated/weir/RegisterTaskManagerResponse.js';
export type { SubmitJobResponse__Output } from '../generated/weir/SubmitJobResponse.js';
export type { ListJobsResponse__Output } from '../generated/weir/ListJobsResponse.js';
export type { CollectedRecordsResponse__Output } from '../generated/weir/CollectedRecordsResponse.js';
export type { CancelJobResponse__Output } from '../generated/weir/CancelJobResponse.js';
export type { ExecutionState } from '../generated/weir/ExecutionState.js';
export type { JobStatus } from '../generated/weir/JobStatus.js';
export type { TaskFailure, TaskFailure__Output } from '../generated/weir/TaskFailure.js';
export type { TaskMetrics, TaskMetrics__Output } from '../generated/weir/TaskMetrics.js';
export type { ProcessMetrics, ProcessMetrics__Output } from '../generated/weir/ProcessMetrics.js';
export type { RunningJob, RunningJob__Output } from '../generated/weir/RunningJob.js';
export type {
  TaskDeploymentDescriptor,
  TaskDeploymentDescriptor__Output,
} from '../generated/weir/TaskDeploymentDescriptor.js';
export type {
  InputChannelDescriptor,
  InputChannelDescriptor__Output,
} from '../generated/weir/InputChannelDescriptor.js';
export type {
  ResultPartitionDescriptor,
  ResultPartitionDescriptor__Output,
} from '../generated/weir/ResultPartitionDescriptor.js';
export type { JobDetails, JobDetails__Output } from '../generated/weir/JobDetails.js';
export type { JobRestart, JobRestart__Output } from '../generated/weir/JobRestart.js';
export type { JobSummary__Output } from '../generated/weir/JobSummary.js';
export type { ClusterOverview__Output } from '../generated/weir/ClusterOverview.js';
export type {
  TaskExecutionStateUpdate,
  TaskExecutionStateUpdate__Output,
} from '../generated/weir/TaskExecutionStateUpdate.js';
export type {
  TaskManagerHeartbeat,
  TaskManagerHeartbeat__Output,
} from '../generated/weir/TaskManagerHeartbeat.js';
export type {
  JobManagerHeartbeat,
  JobManagerHeartbeat__Output,
} from '../generated/weir/JobManagerHeartbeat.js';
export type { ConsumerMessage, ConsumerMessage__Output } from '../generated/weir/ConsumerMessage.js';
export type { ProducerMessage, ProducerMessage__Output } from '../generated/weir/ProducerMessage.js';
export type {
  JobManagerGatewayHandlers,
  JobManagerGatewayClient,
} from '../generated/weir/JobManagerGateway.js';
export type {
  TaskExecutorGatewayHandlers,
  TaskExecutorGatewayClient,
} from '../generated/weir/TaskExecutorGateway.js';
export type { DispatcherHandlers, DispatcherClient } from '../generated/weir/Dispatcher.js';
export type { DataExchangeHandlers, DataExchangeClient } from '../generated/weir/DataExchange.js';
