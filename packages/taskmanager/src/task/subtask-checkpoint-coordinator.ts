import type { SourceReader } from '@weir/api';
import { randomUUID } from 'node:crypto';
import {
  createCheckpointStorage,
  writeChunks,
  writeLocalFile,
  type ChannelEvent,
  type ChannelStateHandle,
  type CheckpointStorage,
  type FullKeyedHandle,
  type OperatorSubtaskState,
  type TaskDeploymentDescriptor__Output,
  type TaskStateSnapshot,
} from '@weir/core/runtime';
import type {
  IncrementalSnapshotMaterializer,
  NativeSnapshotMaterializer,
  KeyedStateSnapshotMaterializer,
} from '../state/keyed-state-backend.js';
import { SnapshotWriteStoppedError, writeKeyedSnapshot } from '../state/keyed-snapshot-writer.js';
import type { OperatorListSnapshot } from '../state/operator-state-backend.js';
import type { ResultPartition } from '../network/result-partition.js';
import type { StreamOperator } from '../operators/stream-operator.js';
import type { FromWorker } from '../worker-protocol.js';
import { encodeChannelState } from './channel-state.js';
import { ChannelStateCapture } from './channel-state-capture.js';
import {
  LocalRecoveryStorage,
  localRecoveryWarning,
  taskCheckpointStorage,
} from '../state/local-recovery-storage.js';

/** A file's batches as the chunks of a streamed write. */
async function* chunksOf(parts: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* parts;
}

type CheckpointBarrier = Extract<ChannelEvent, { type: 'CheckpointBarrier' }>;

/** What the checkpointing of a task needs from the task. */
export interface CheckpointedTask {
  readonly executionId: string;
  readonly isRunning: boolean;
  readonly isTerminal: boolean;
  /** the input ended and the operators were finished */
  readonly dataEnded: boolean;
  /** the chain, head first, with the operator ids; the source reader of a source task */
  readonly operators: readonly StreamOperator[];
  readonly operatorIds: readonly string[];
  readonly reader: SourceReader<unknown> | undefined;
  readonly partitions: readonly ResultPartition[];
  post(msg: FromWorker): void;
  /** a failure while handling a notification fails the task */
  fail(err: unknown): Promise<void>;
  /** a final checkpoint taken after this task's end of data completed: the task may finish */
  finalCheckpointCompleted(): void;
  /** a checkpoint was aborted: the task gives up aligning it */
  abortAlignment(checkpointId: number): void;
}

/**
 * The checkpointing of one task, after Flink's SubtaskCheckpointCoordinator: takes the snapshot
 * (synchronous part on the task thread, then the asynchronous upload), acknowledges or declines
 * it, sends cancel markers in place of a barrier it could not take, and handles the
 * JobManager's completion and abort notices in order.
 */
export class SubtaskCheckpointCoordinator {
  private storage: CheckpointStorage | undefined;
  /** the first checkpoint taken after the end of data: once it completes, the task may finish */
  private finalCheckpointId: number | undefined;
  /** checkpoints aborted while their files were still being written: those files are removed */
  private readonly abortedCheckpoints = new Set<number>();
  /** notifications run one after another, in order */
  private notifications: Promise<void> = Promise.resolve();
  /** the newest checkpoint whose completion was handled */
  private lastCompletedId = 0;

  constructor(
    private readonly tdd: TaskDeploymentDescriptor__Output,
    private readonly task: CheckpointedTask,
  ) {}

  /**
   * Synchronous part: freeze the state (heap: serialize it; RocksDB: flush and take a
   * consistent view) and send the barrier on, in order after the records before it.
   * Asynchronous part: produce the keyed state bytes, write the files, then acknowledge.
   *
   * Unaligned (`capture`, or a source of a job with unaligned checkpoints): the barrier goes
   * ahead of the unsent output instead, which joins the capture; once every input channel's
   * barrier came, the capture is written as the task's channel state.
   */
  async checkpointState(
    barrier: CheckpointBarrier,
    alignmentMs: number,
    capture?: ChannelStateCapture,
  ): Promise<void> {
    const id = barrier.checkpointId;
    if (!this.task.isRunning) {
      capture?.cancel();
      return;
    }
    if (
      !capture &&
      this.task.reader &&
      this.tdd.unalignedCheckpoints &&
      this.tdd.checkpointingMode !== 'AT_LEAST_ONCE' &&
      !barrier.isSavepoint
    )
      capture = new ChannelStateCapture(id, 0);
    const t0 = performance.now();
    const snapshots: Array<{
      operatorId: string;
      keyed?: KeyedStateSnapshotMaterializer;
      incremental?: IncrementalSnapshotMaterializer;
      /** a full snapshot in files of the checkpoint's own directory (same handle format) */
      streamed?: IncrementalSnapshotMaterializer;
      /** RocksDB's own files, new ones in shared files (see rocksdb/native-checkpoint.ts) */
      native?: NativeSnapshotMaterializer;
      operatorState?: unknown[];
      lists?: OperatorListSnapshot;
    }> = [];
    // savepoints are always full and self-contained (the canonical format, no shared files)
    const incremental = this.tdd.incrementalCheckpoints && !barrier.isSavepoint;
    try {
      const position = this.task.reader?.snapshotState?.(id);
      if (position !== undefined)
        snapshots.push({ operatorId: this.tdd.operatorIds[0]!, operatorState: position });
      for (const op of this.task.operators) op.snapshotState?.(id);
      this.task.operators.forEach((op, i) => {
        const backend = op.keyedBackend;
        // savepoints stay in the canonical format, which any backend restores at any parallelism
        const native = barrier.isSavepoint
          ? undefined
          : backend?.snapshotNative?.(id, this.tdd.maxParallelism);
        const incr =
          !native && incremental && backend?.snapshotIncremental
            ? backend.snapshotIncremental(id, this.tdd.maxParallelism)
            : undefined;
        // state that may not fit in memory (RocksDB) is written in bounded files as it is read
        const streamed =
          !native && !incr && backend?.snapshotStreamed
            ? backend.snapshotStreamed(id, this.tdd.maxParallelism)
            : undefined;
        const keyed = native || incr || streamed ? undefined : backend?.snapshot(this.tdd.maxParallelism);
        const lists = op.operatorState?.snapshot();
        if (keyed || native || incr || streamed || lists)
          snapshots.push({
            operatorId: this.task.operatorIds[i]!,
            ...(keyed ? { keyed } : {}),
            ...(native ? { native } : {}),
            ...(incr ? { incremental: incr } : {}),
            ...(streamed ? { streamed } : {}),
            ...(lists ? { lists } : {}),
          });
      });
      // with local recovery, RocksDB keeps its files as they are now (a link each); never a savepoint's
      if (!barrier.isSavepoint)
        for (const op of this.task.operators) {
          const why = op.keyedBackend?.keepLocalCheckpoint?.(id);
          if (why !== undefined) localRecoveryWarning(why);
        }
    } catch (err) {
      for (const s of snapshots) s.keyed?.discard?.();
      this.task.post({
        t: 'checkpointDecline',
        executionId: this.task.executionId,
        checkpointId: id,
        reason: `snapshot failed: ${(err as Error).message}`,
      });
      // in place of the barrier, so consumers aligning this checkpoint do not wait for it
      capture?.cancel();
      this.cancelDownstream(id);
      return;
    }
    // a barrier that overtakes records overtakes the EndOfData behind them too: downstream
    // tasks take that checkpoint before their end of data, so it cannot be this task's final one
    const overtaking = capture !== undefined && this.task.partitions.some((p) => p.hasUnsentBuffers());
    if (capture) this.task.partitions.forEach((p, i) => capture.addOutput(i, p.overtake(barrier)));
    else for (const p of this.task.partitions) p.broadcastEvent(barrier);
    if (this.task.dataEnded && this.finalCheckpointId === undefined && !barrier.isSavepoint && !overtaking)
      this.finalCheckpointId = id;
    const syncMs = performance.now() - t0;
    const t1 = performance.now();
    const written: string[] = [];
    let storage: CheckpointStorage | undefined;
    try {
      // a savepoint names its own place; a checkpoint goes to the job's checkpoint storage
      // (with local recovery on, a checkpoint's files are also kept on local disk; a savepoint's never)
      storage = barrier.isSavepoint
        ? createCheckpointStorage(barrier.storage || this.tdd.checkpointStorage)
        : barrier.storage
          ? taskCheckpointStorage(barrier.storage)
          : (this.storage ??= taskCheckpointStorage(this.tdd.checkpointStorage));
      const directory = barrier.directory || `${this.tdd.jobId}/chk-${id}`;
      const state: TaskStateSnapshot = {};
      let size = 0;
      // written beside the keyed state, as soon as the last input channel's barrier came
      const channelStateWrite = capture
        ? this.writeChannelState(capture, storage, directory, written)
        : Promise.resolve(undefined);
      channelStateWrite.catch(() => {});
      // every whole-buffer materializer runs (each releases its view when done), even if one
      // fails; streamed ones (heap) are produced while they are written, below
      const keyedSnapshots = await Promise.all(
        snapshots.map((s) => (s.keyed && !s.keyed.batches ? s.keyed() : undefined)),
      );
      // incremental: new files go to <job>/shared/, named after checkpoint, operator and subtask
      const incrementalHandles = await Promise.all(
        snapshots.map((s) => {
          if (s.streamed) {
            // paths relative to the checkpoint's directory, so a savepoint can be moved
            const stem = `${s.operatorId}/${this.tdd.subtaskIndex}-${randomUUID().slice(0, 8)}`;
            return s.streamed(async (name, parts) => {
              const rel = `${directory}/${stem}-${name}`;
              written.push(rel);
              const h = await writeChunks(storage!, rel, chunksOf(parts));
              return { ...h, path: `${stem}-${name}` };
            });
          }
          const stem = `${id}-${s.operatorId.replace(/[^A-Za-z0-9_.-]/g, '_')}-${this.tdd.subtaskIndex}-${randomUUID().slice(0, 8)}`;
          const sharedFile = (name: string): string => {
            const rel = `${this.tdd.jobId}/shared/${stem}-${name}`;
            written.push(rel);
            return rel;
          };
          if (s.native) {
            // with local recovery, native RocksDB files are kept locally by the backend's local
            // RocksDB checkpoint (hard links), not copied a second time
            const target = storage instanceof LocalRecoveryStorage ? storage.remoteStorage : storage!;
            return s.native(async (name, file, size) => {
              const h = await writeLocalFile(target, sharedFile(name), file, size);
              return { ...h, path: `../shared/${stem}-${name}` };
            });
          }
          return s.incremental?.(async (name, parts) => {
            const h = await writeChunks(storage!, sharedFile(name), chunksOf(parts));
            return { ...h, path: `../shared/${stem}-${name}` };
          });
        }),
      );
      for (const [i, s] of snapshots.entries()) {
        const entry: OperatorSubtaskState = {};
        const incr = incrementalHandles[i];
        if (incr) {
          entry.keyed = incr;
          size += incr.checkpointedSize;
        }
        const keyed = keyedSnapshots[i];
        const batches = s.keyed?.batches;
        if (batches) {
          const file = `${s.operatorId}/${this.tdd.subtaskIndex}-${randomUUID()}`;
          written.push(`${directory}/${file}`);
          // each key group whole at the end: segments handed on while encoding made S3
          // checkpoints slower and their stalls longer in every measurement, and since the
          // snapshot's memory is reused from one checkpoint to the next, file checkpoints too
          // (1M keys: 111-118 ms against 137-173 ms, longest stall 9-10 ms against 18-19 ms;
          // bench/README.md, BENCH_ONLY=heap-snapshot)
          const kb = batches({ segments: false });
          // an abort stops the writing at the next key group and releases the snapshot's views
          const out = await writeKeyedSnapshot(storage, `${directory}/${file}`, kb, () =>
            this.abortedCheckpoints.has(id) || this.task.isTerminal ? `checkpoint ${id} aborted` : undefined,
          );
          if (out) {
            entry.keyed = {
              ...out.handle,
              path: file,
              index: out.index,
              kinds: kb.kinds,
            } satisfies FullKeyedHandle;
            size += out.handle.size;
          }
        } else if (keyed) {
          // handle paths are relative to the checkpoint's directory, so a savepoint can be moved
          const file = `${s.operatorId}/${this.tdd.subtaskIndex}-${randomUUID()}`;
          written.push(`${directory}/${file}`);
          const handle = await storage.write(`${directory}/${file}`, keyed.data);
          entry.keyed = {
            ...handle,
            path: file,
            index: keyed.index,
            kinds: keyed.kinds,
          } satisfies FullKeyedHandle;
          size += handle.size;
        }
        if (s.operatorState !== undefined) entry.operatorState = s.operatorState;
        if (s.lists) entry.lists = s.lists;
        if (Object.keys(entry).length > 0) state[s.operatorId] = entry;
      }
      // sinks whose pre-commit is I/O (PREPARE TRANSACTION, publish acknowledgements) finish it first
      for (const op of this.task.operators) await op.snapshotDurable?.(id);
      let persisted = 0;
      const channelState = await channelStateWrite;
      if (channelState === false) {
        await Promise.all(written.map((f) => storage!.delete(f).catch(() => {})));
        return;
      }
      if (channelState) {
        const head = this.tdd.operatorIds[0]!;
        state[head] = { ...state[head], channelState };
        size += channelState.size;
        persisted = channelState.inputBytes + channelState.outputBytes;
      }
      if (this.abortedCheckpoints.has(id) || this.task.isTerminal) {
        // aborted (or the task ended) while writing: the coordinator already removed the directory
        await Promise.all(written.map((f) => storage!.delete(f).catch(() => {})));
        return;
      }
      this.task.post({
        t: 'checkpointAck',
        executionId: this.task.executionId,
        checkpointId: id,
        stateJson: JSON.stringify(state),
        syncDurationMs: Math.round(syncMs),
        asyncDurationMs: Math.round(performance.now() - t1),
        alignmentDurationMs: Math.round(alignmentMs),
        stateSizeBytes: size,
        persistedDataBytes: persisted,
        unaligned: capture !== undefined,
      });
    } catch (err) {
      capture?.cancel();
      // what this attempt wrote for the checkpoint belongs to no checkpoint now (shared files
      // included: the JobManager learns of them only from an acknowledgement)
      await Promise.all(written.map((f) => storage!.delete(f).catch(() => {})));
      if (err instanceof SnapshotWriteStoppedError) return;
      this.task.post({
        t: 'checkpointDecline',
        executionId: this.task.executionId,
        checkpointId: id,
        reason: (err as Error).message,
      });
      // consumers still aligning it need not wait for the other inputs
      this.cancelDownstream(id);
    } finally {
      // views a failure left unread (no-op for those already released)
      for (const s of snapshots) s.keyed?.discard?.();
    }
  }

  /**
   * The channel state file of an unaligned checkpoint once its capture is complete: its handle,
   * undefined when nothing was in flight, false when the checkpoint was given up first.
   */
  private async writeChannelState(
    capture: ChannelStateCapture,
    storage: CheckpointStorage,
    directory: string,
    written: string[],
  ): Promise<ChannelStateHandle | undefined | false> {
    if (!(await capture.done)) return false;
    const entries = capture.entries();
    if (entries.length === 0) return undefined;
    const file = `channel-state/${this.tdd.subtaskIndex}-${randomUUID()}`;
    written.push(`${directory}/${file}`);
    const handle = await storage.write(`${directory}/${file}`, encodeChannelState(entries));
    return { ...handle, path: file, inputBytes: capture.inputBytes, outputBytes: capture.outputBytes };
  }

  /** Flink's CancelCheckpointMarker: consumers give the checkpoint up and release its alignment. */
  cancelDownstream(checkpointId: number): void {
    if (!this.task.isRunning) return;
    for (const p of this.task.partitions) p.broadcastEvent({ type: 'CancelCheckpointMarker', checkpointId });
  }

  /**
   * The JobManager's word on a checkpoint. Completion lets sinks commit and, after the end of
   * data, lets the task finish; savepoints are never announced as complete (they are not
   * restored on failover, so nothing may be committed on their account).
   */
  notifyCheckpoint(checkpointId: number, completed: boolean, final = false): void {
    if (!completed) {
      this.abortedCheckpoints.add(checkpointId);
      if (this.abortedCheckpoints.size > 64)
        this.abortedCheckpoints.delete(this.abortedCheckpoints.values().next().value!);
      // an alignment of it ends now, and consumers hear of it (Flink's abort notification)
      if (this.task.isRunning) this.task.abortAlignment(checkpointId);
    }
    // completions are handled in increasing order: one older than a completion already handled
    // (its message overtaken in transit) is covered by that one
    const stale = completed && checkpointId <= this.lastCompletedId;
    if (completed) this.lastCompletedId = Math.max(this.lastCompletedId, checkpointId);
    this.notifications = this.notifications.then(async () => {
      if (this.task.isTerminal) return;
      try {
        if (!stale)
          for (const op of this.task.operators) {
            if (completed) op.keyedBackend?.notifyCheckpointComplete?.(checkpointId);
            else op.keyedBackend?.notifyCheckpointAborted?.(checkpointId);
            if (completed) await op.notifyCheckpointComplete?.(checkpointId);
            else op.notifyCheckpointAborted?.(checkpointId);
          }
      } catch (err) {
        await this.task.fail(err);
        return;
      }
      // only a checkpoint taken after every source ended may end the tasks: a task that finished
      // earlier could not take part in the checkpoints the others still need
      if (
        completed &&
        final &&
        this.finalCheckpointId !== undefined &&
        checkpointId >= this.finalCheckpointId
      ) {
        this.task.finalCheckpointCompleted();
      }
    });
  }
}
