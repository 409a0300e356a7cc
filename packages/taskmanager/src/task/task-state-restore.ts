import {
  StorageError,
  childLocation,
  computeKeyGroupRangeForOperatorIndex,
  isIncrementalHandle,
  isWithinLocation,
  keyGroupRanges,
  parseStorageLocation,
  type TaskDeploymentDescriptor__Output,
  type TaskRestoreState,
} from '@weir/core';
import type { KeyedStateBackend } from '../state/keyed-state-backend.js';
import { restoreFullBatch, restoreIncrementalState } from '../state/incremental-snapshot.js';
import { LocalRecoveryStorage, taskCheckpointStorage } from '../state/local-recovery-storage.js';

/** state files of one operator read at the same time on restore */
const READ_AHEAD = 4;

/**
 * The state-restore step of a task (Flink's StreamTaskStateInitializer): reads the key groups of
 * this subtask's range from the restored files into the opened keyed state backends, verifying
 * checksums. Operator list state and source splits are handed to the operators when they are
 * created; keyed state is restored here, before the operators open.
 */
export async function restoreKeyedState(
  r: TaskRestoreState,
  tdd: TaskDeploymentDescriptor__Output,
  operators: ReadonlyArray<{ operatorId: string; backend: KeyedStateBackend | undefined }>,
): Promise<void> {
  const range = computeKeyGroupRangeForOperatorIndex(tdd.maxParallelism, tdd.parallelism, tdd.subtaskIndex);
  const storage = taskCheckpointStorage(r.storage);
  // a checkpoint of this job (not a savepoint, nor another job's checkpoint restored as one)
  const own = isWithinLocation(
    storage.location,
    childLocation(parseStorageLocation(tdd.checkpointStorage), tdd.jobId),
  );
  for (const { operatorId, backend } of operators) {
    const handles = r.operators[operatorId]?.keyed;
    if (!handles || !backend) continue;
    const incremental = handles.filter(isIncrementalHandle);
    if (own && storage instanceof LocalRecoveryStorage && backend.restoreLocalCheckpoint) {
      const local = await backend.restoreLocalCheckpoint(r.checkpointId);
      if (typeof local === 'object') {
        storage.restoredLocalCheckpoint(local.bytes);
        if (incremental.length > 0)
          backend.adoptRestoredChains?.(r.checkpointId, incremental, (kg) => range.contains(kg));
        backend.restoreFinished?.();
        continue;
      }
      if (local !== undefined) storage.fallBack(local, `the keyed state of operator ${operatorId}`);
    }
    const full = handles.filter((h) => !isIncrementalHandle(h));
    // files are read READ_AHEAD at a time (parallel downloads) and applied in order
    const reads = full.map(() => undefined as Promise<Buffer> | undefined);
    const readAt = (i: number): void => {
      if (i < full.length) (reads[i] = storage.read(full[i]!.path, full[i]!.sha256)).catch(() => {});
    };
    for (let i = 0; i < READ_AHEAD; i++) readAt(i);
    for (let i = 0; i < full.length; i++) {
      const h = full[i]!;
      const data = await reads[i]!;
      reads[i] = undefined;
      readAt(i + READ_AHEAD);
      for (const [kg, ranges] of Object.entries(h.index)) {
        if (!range.contains(Number(kg))) continue;
        // one range, or a key group's segments in order
        for (const [off, len] of keyGroupRanges(ranges)) {
          if (off + len > data.byteLength)
            throw new StorageError('CORRUPT', `Checkpoint file ${h.path} is truncated`);
          restoreFullBatch(backend, h.kinds, data.subarray(off, off + len));
        }
      }
    }
    if (incremental.length > 0) {
      await restoreIncrementalState(r.storage, incremental, backend, (kg) => range.contains(kg));
      // a checkpoint of this job: the next checkpoints go on referencing its shared files; one of
      // another job (restored as a savepoint) is not ours to reference, so the next one is full
      if (own) backend.adoptRestoredChains?.(r.checkpointId, incremental, (kg) => range.contains(kg));
    }
    backend.restoreFinished?.();
  }
  if (storage instanceof LocalRecoveryStorage)
    storage.logRestore(
      `${tdd.vertexName} (${tdd.subtaskIndex + 1}/${tdd.parallelism}) checkpoint ${r.checkpointId}`,
    );
}
