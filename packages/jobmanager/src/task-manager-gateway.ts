import { unary, type Ack__Output, type TaskDeploymentDescriptor } from '@weir/core';
import type { CheckpointLocation } from './checkpoint-coordinator.js';
import type { Execution } from './execution-graph.js';

/*
 * The JobMaster's calls to the TaskManager hosting an execution (Flink's TaskManagerGateway as
 * used by Execution): deploy, cancel, trigger a checkpoint at a source, and tell of a
 * checkpoint's end. Each has its own deadline; a refusal (`ok: false`) is an error.
 */

export async function submitTask(e: Execution, tdd: TaskDeploymentDescriptor): Promise<void> {
  const tm = e.slot!.taskManager;
  const ack = await unary<Ack__Output>(tm.gateway.SubmitTask.bind(tm.gateway), tdd, 30_000);
  if (!ack.ok) throw new Error(ack.message);
}

export function cancelTask(jobId: string, e: Execution): Promise<unknown> {
  const gw = e.slot!.taskManager.gateway;
  return unary(gw.CancelTask.bind(gw), { jobId, executionId: e.executionId }, 10_000);
}

export async function triggerCheckpoint(
  jobId: string,
  e: Execution,
  checkpointId: number,
  timestamp: number,
  location: CheckpointLocation,
): Promise<void> {
  const gw = e.slot!.taskManager.gateway;
  const ack = await unary<Ack__Output>(
    gw.TriggerCheckpoint.bind(gw),
    {
      jobId,
      executionId: e.executionId,
      checkpointId,
      timestamp,
      storage: location.storage.root,
      directory: location.directory,
      isSavepoint: location.isSavepoint,
    },
    10_000,
  );
  if (!ack.ok) throw new Error(ack.message);
}

/** Fire and forget: a task that misses a notice hears of the next checkpoint's end. */
export function notifyCheckpoint(
  jobId: string,
  e: Execution | undefined,
  checkpointId: number,
  completed: boolean,
  final: boolean,
): void {
  const gw = e?.slot?.taskManager.gateway;
  if (gw)
    unary(
      gw.NotifyCheckpoint.bind(gw),
      { jobId, executionId: e.executionId, checkpointId, completed, final },
      10_000,
    ).catch(() => {});
}
