import {
  StorageError,
  childLocation,
  computeKeyGroupRangeForOperatorIndex,
  isIncrementalHandle,
  isRocksDBNativeHandle,
  isWithinLocation,
  keyGroupRanges,
  parseStorageLocation,
  resolveHandlePath,
  type CheckpointStorage,
  type FullKeyedHandle,
  type KeyGroupRange,
  type KeyedStateHandle,
  type TaskDeploymentDescriptor__Output,
  type TaskRestoreState,
} from '@weir/core/runtime';
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
  const inRange = (kg: number): boolean => range.contains(kg);
  const localCopies = own && storage instanceof LocalRecoveryStorage ? storage : undefined;
  for (const { operatorId, backend } of operators) {
    const handles = r.operators[operatorId]?.keyed;
    if (!handles || !backend) continue;
    const incremental = handles.filter(isIncrementalHandle);
    const native = handles.filter(isRocksDBNativeHandle);
    if (native.length > 0 && !backend.restoreNative)
      throw new Error(
        `Checkpoint ${r.checkpointId} holds the keyed state of operator ${operatorId} as RocksDB's own files (state.backend.rocksdb.native-checkpoints), which the ${backend.type} state backend cannot read: restore it with state.backend: rocksdb (a savepoint taken then restores into either backend)`,
      );
    // with local recovery, a RocksDB backend opens its own copy of the database when it has one
    const local = localCopies ? await backend.restoreLocalCheckpoint?.(r.checkpointId, native) : undefined;
    if (typeof local === 'object') localCopies?.restoredLocalCheckpoint(local.bytes, local.recovered);
    else {
      if (local !== undefined)
        localCopies?.fallBack(local, `reading the checkpoint's files of operator ${operatorId} instead`);
      // first: at the same key groups it replaces the (empty) database with the checkpoint's
      if (native.length > 0)
        await backend.restoreNative!(
          native,
          range,
          (f) => {
            const where = resolveHandlePath(r.storage, f.path);
            return taskCheckpointStorage(where.root).read(where.path, f.sha256);
          },
          own,
        );
      await restoreFromFiles(storage, handles, backend, range);
      if (incremental.length > 0) await restoreIncrementalState(r.storage, incremental, backend, inRange);
    }
    // a checkpoint of this job: the next checkpoints go on referencing its shared files; one of
    // another job (restored as a savepoint) is not ours to reference, so the next one is full
    if (own && incremental.length > 0) backend.adoptRestoredChains?.(r.checkpointId, incremental, inRange);
    backend.restoreFinished?.();
  }
  if (storage instanceof LocalRecoveryStorage)
    storage.logRestore(
      `${tdd.vertexName} (${tdd.subtaskIndex + 1}/${tdd.parallelism}) checkpoint ${r.checkpointId}`,
    );
}

/** The full (not incremental) keyed-state files of a restore, READ_AHEAD read at a time (parallel downloads), applied in order. */
async function restoreFromFiles(
  storage: CheckpointStorage,
  handles: readonly KeyedStateHandle[],
  backend: KeyedStateBackend,
  range: KeyGroupRange,
): Promise<void> {
  const full = handles.filter((h): h is FullKeyedHandle => h.format === undefined);
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
}
