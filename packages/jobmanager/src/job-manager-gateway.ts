import type * as grpc from '@grpc/grpc-js';
import {
  parseTaskStateSnapshot,
  TASKMANAGER_SESSION_HEADER,
  type JobManagerGatewayHandlers,
} from '@weir/core';
import type { JobMaster } from './job-master.js';
import type { ResourceManager } from './resource-manager.js';
import { failedPrecondition, invalid, notFound, permissionDenied } from './rpc-status.js';

const BUNDLE_CHUNK = 1024 * 1024;

/** What the gateway reaches in the JobManager. */
export interface JobManagerGatewayHost {
  readonly id: string;
  readonly rm: ResourceManager;
  readonly jobs: ReadonlyMap<string, JobMaster>;
  readonly bundles: ReadonlyMap<string, Buffer>;
}

/**
 * The JobManagerGateway handlers: what TaskManagers call (Flink's JobMasterGateway and the
 * ResourceManagerGateway's registration and heartbeats): registration, heartbeats, task state,
 * checkpoint acknowledgements, collected records and job bundles.
 */
export function jobManagerGateway(host: JobManagerGatewayHost): JobManagerGatewayHandlers {
  /**
   * A report about an execution comes only from the TaskManager it is deployed to (by the session
   * of that TaskManager's registration): another cluster member cannot fail, finish or
   * acknowledge someone else's task. Unknown executions are left to the handlers (ignored).
   */
  const notItsTaskManager = (
    call: { metadata: grpc.Metadata },
    method: string,
    jobId: string,
    executionId: string,
  ): Partial<grpc.StatusObject> | undefined => {
    const tm = host.jobs.get(jobId)?.hostOf(executionId);
    if (!tm) return undefined;
    if (host.rm.bySession(call.metadata.get(TASKMANAGER_SESSION_HEADER)[0]) === tm) return undefined;
    return permissionDenied(
      `${method} for execution ${executionId} is accepted only from TaskManager ${tm.id}, which runs it (by the session of its registration)`,
    );
  };
  return {
    RegisterTaskManager: (call, cb) => {
      const r = call.request;
      if (!r.taskManagerId || !r.address || !(r.slots > 0)) {
        return cb(invalid('RegisterTaskManager needs taskManagerId, address and slots > 0'));
      }
      if (!host.rm.claimSession(r.session))
        return cb(
          permissionDenied(
            `RegisterTaskManager of '${r.taskManagerId}' repeats a session already used: a replayed registration is refused (a TaskManager makes a new session for every attempt)`,
          ),
        );
      const tm = host.rm.register(r.taskManagerId, r.address, r.slots, r.session, r.metricsAddress);
      cb(null, {
        accepted: true,
        registrationId: tm.registrationId,
        jobManagerId: host.id,
        heartbeatIntervalMs: host.rm.heartbeatIntervalMs,
        heartbeatTimeoutMs: host.rm.heartbeatTimeoutMs,
      });
    },
    Heartbeat: (stream) => host.rm.attachHeartbeat(stream),
    UpdateTaskExecutionState: (call, cb) => {
      const u = call.request;
      const denied = notItsTaskManager(call, 'UpdateTaskExecutionState', u.jobId, u.executionId);
      if (denied) return cb(denied);
      host.jobs.get(u.jobId)?.updateTaskState(u.executionId, u.state, u.failure, u.metrics, {
        endOfData: u.endOfData,
        restoreDurationMs: Number(u.restoreDurationMs),
      });
      cb(null, { ok: true });
    },
    AcknowledgeCheckpoint: (call, cb) => {
      const r = call.request;
      const denied = notItsTaskManager(call, 'AcknowledgeCheckpoint', r.jobId, r.executionId);
      if (denied) return cb(denied);
      const coordinator = host.jobs.get(r.jobId)?.coordinator;
      if (!coordinator) return cb(null, { ok: true });
      let state;
      try {
        state = parseTaskStateSnapshot(
          r.stateJson,
          `acknowledgement of checkpoint ${r.checkpointId} by ${r.executionId}`,
        );
      } catch (err) {
        // the checkpoint cannot complete without this task's state
        coordinator.decline(r.executionId, Number(r.checkpointId), (err as Error).message);
        return cb(invalid((err as Error).message));
      }
      coordinator.acknowledge(r.executionId, Number(r.checkpointId), state, {
        syncDurationMs: Number(r.syncDurationMs),
        asyncDurationMs: Number(r.asyncDurationMs),
        alignmentDurationMs: Number(r.alignmentDurationMs),
        stateSizeBytes: Number(r.stateSizeBytes),
        persistedDataBytes: Number(r.persistedDataBytes),
        unaligned: r.unaligned,
      });
      cb(null, { ok: true });
    },
    RequestSplits: (call, cb) => {
      const r = call.request;
      if (!r.jobId || !r.executionId || !r.operatorId || r.subtaskIndex < 0 || Number(r.lastCheckpointId) < 0)
        return cb(
          invalid(
            'RequestSplits needs jobId, executionId, operatorId, subtaskIndex >= 0 and lastCheckpointId >= 0',
          ),
        );
      const denied = notItsTaskManager(call, 'RequestSplits', r.jobId, r.executionId);
      if (denied) return cb(denied);
      const job = host.jobs.get(r.jobId);
      if (!job) return cb(notFound(`No job '${r.jobId}'`));
      try {
        const a = job.requestSplits(
          r.executionId,
          r.operatorId,
          r.subtaskIndex,
          Number(r.lastCheckpointId),
          r.wantMore,
        );
        cb(null, { splitsJson: JSON.stringify(a.splits), noMoreSplits: a.noMoreSplits });
      } catch (err) {
        cb(failedPrecondition((err as Error).message));
      }
    },
    DeclineCheckpoint: (call, cb) => {
      const r = call.request;
      const denied = notItsTaskManager(call, 'DeclineCheckpoint', r.jobId, r.executionId);
      if (denied) return cb(denied);
      host.jobs.get(r.jobId)?.coordinator?.decline(r.executionId, Number(r.checkpointId), r.reason);
      cb(null, { ok: true });
    },
    ReportCollectedRecords: (call, cb) => {
      const r = call.request;
      const denied = notItsTaskManager(call, 'ReportCollectedRecords', r.jobId, r.executionId);
      if (denied) return cb(denied);
      host.jobs.get(call.request.jobId)?.addCollected(call.request.batch);
      cb(null, { ok: true });
    },
    GetJobBundle: (call) => {
      // a job's code goes only to a registered TaskManager: one with a slot allocated to the job,
      // or any while the job has not ended (it may prewarm free slots for a failover)
      const tm = host.rm.bySession(call.metadata.get(TASKMANAGER_SESSION_HEADER)[0]);
      const job = host.jobs.get(call.request.jobId);
      if (!tm || (!tm.allocations.includes(call.request.jobId) && (!job || job.isTerminal))) {
        call.emit(
          'error',
          permissionDenied(
            `The bundle of job '${call.request.jobId}' goes only to a registered TaskManager with a slot for the job or while the job runs`,
          ),
        );
        return;
      }
      const bundle = host.bundles.get(call.request.jobId);
      if (!bundle) {
        call.emit('error', notFound(`No bundle for job '${call.request.jobId}'`));
        return;
      }
      for (let off = 0; off < bundle.length; off += BUNDLE_CHUNK)
        call.write({ data: bundle.subarray(off, off + BUNDLE_CHUNK) });
      call.end();
    },
  };
}
