import type {
  StateBackendType,
  AggregatingState,
  AggregatingStateDescriptor,
  ListState,
  ListStateDescriptor,
  MapState,
  MapStateDescriptor,
  ReducingState,
  ReducingStateDescriptor,
  ValueState,
  ValueStateDescriptor,
} from '@weir/api';
import type { IncrementalKeyedHandle } from './incremental-snapshot.js';
import type { KeyGroupRange, RocksDBFileHandle, RocksDBNativeKeyedHandle } from '@weir/core/runtime';
import type { ManagedMemory } from './rocksdb/memory-budget.js';

/**
 * The canonical snapshot of keyed state, the same for every backend, so a checkpoint or
 * savepoint of one backend restores into the other: per key group one msgpack batch
 * (`encodeRecords`) of `[stateName, normalizedKey, value]` entries, map-state values as
 * `[userKey, userValue]` entry lists.
 */
export interface KeyedStateSnapshot {
  data: Uint8Array;
  /** key group -> [offset, length] in data */
  index: Record<number, [number, number]>;
  kinds: Record<string, string>;
}

/**
 * One key group's entries (or a segment of them) of a canonical snapshot: a MessagePack array
 * of `count` elements whose encoded elements are `parts` (bounded chunks), without the array
 * header. The parts must not change once handed on (the writer may still hold them).
 */
export interface KeyGroupBatch {
  keyGroup: number;
  count: number;
  parts: Uint8Array[];
}

/**
 * A canonical snapshot produced as it is written: key group batches in any order; a key group
 * may come in several batches (segments), which its index entry lists in order.
 */
export interface KeyedStateBatches {
  kinds: Record<string, string>;
  batches: AsyncIterable<KeyGroupBatch>;
  /**
   * The batches were written durably and nobody reads them any more: their memory may be reused
   * by the next snapshot. Only after a completed write (a failed one may have bytes in flight).
   */
  release?: () => void;
}

/**
 * What the synchronous part of a snapshot returns: a consistent view taken now. Calling it
 * (the asynchronous part) produces the canonical bytes while processing goes on; undefined
 * when there is no state. Exactly one of calling it, `batches()` or `discard()` must happen,
 * so the view is released.
 */
export interface KeyedStateSnapshotMaterializer {
  (): Promise<KeyedStateSnapshot | undefined>;
  /**
   * Backends that produce their snapshot piecewise (heap): the batches, produced while the
   * checkpoint's writer consumes them, so no whole-state buffer exists; the view is released
   * when the iteration ends, fails or is abandoned with `return()`. `segments: false`: each key
   * group in one batch at the end (see heapSnapshotBatches; the writer of an S3 upload asks so).
   */
  batches?: (opts?: { segments?: boolean }) => KeyedStateBatches;
  /** gives the view up unread (a checkpoint that failed before its asynchronous part) */
  discard?: () => void;
}

/**
 * Writes one new shared file of an incremental checkpoint (name unique within the snapshot) and
 * returns its handle. The file comes as its batches, written one after the other, so no copy of
 * the whole file (up to 64 MiB, outside the JavaScript heap) is made to write it.
 */
export type SharedFileWriter = (
  name: string,
  parts: readonly Uint8Array[],
) => Promise<{ path: string; size: number; sha256: string }>;

/**
 * As SharedFileWriter, for the first `size` bytes of a local file (a RocksDB file, never whole in
 * memory): copied by the kernel where the storage is a directory (writeLocalFile).
 */
export type LocalFileWriter = (
  name: string,
  file: string,
  size: number,
) => Promise<{ path: string; size: number; sha256: string }>;

/** The asynchronous part of an incremental snapshot: writes the new shared files, returns the handle of the whole state. */
export type IncrementalSnapshotMaterializer = (
  write: SharedFileWriter,
) => Promise<IncrementalKeyedHandle | undefined>;

/** The asynchronous part of a native RocksDB checkpoint: uploads the database's new files. */
export type NativeSnapshotMaterializer = (write: LocalFileWriter) => Promise<RocksDBNativeKeyedHandle>;

export type { StateBackendType } from '@weir/api';

/**
 * Keyed state of one operator in one subtask (Flink's KeyedStateBackend): the operator sets
 * the current key before each record; the state objects read and write that key's state,
 * synchronously.
 */
export interface KeyedStateBackend {
  readonly type: StateBackendType;
  /** Prepares storage (a RocksDB database is opened here); before restore and processing. */
  open(): Promise<void>;
  setCurrentKey(key: unknown): void;
  getCurrentKey(): unknown;
  getState<T>(desc: ValueStateDescriptor<T>): ValueState<T>;
  getListState<T>(desc: ListStateDescriptor<T>): ListState<T>;
  getMapState<UK, UV>(desc: MapStateDescriptor<UK, UV>): MapState<UK, UV>;
  getReducingState<T>(desc: ReducingStateDescriptor<T>): ReducingState<T>;
  getAggregatingState<IN, ACC, OUT>(
    desc: AggregatingStateDescriptor<IN, ACC, OUT>,
  ): AggregatingState<IN, OUT>;
  /** The synchronous part of a checkpoint; see KeyedStateSnapshotMaterializer. */
  snapshot(maxParallelism: number): KeyedStateSnapshotMaterializer;
  /** Loads entries of a canonical snapshot (one key group's batch). */
  restoreEntries(kinds: Record<string, string>, entries: unknown[]): void;
  /** restoreEntries from the batch's bytes, for backends that keep state as bytes (RocksDB) */
  restoreEntriesBytes?(kinds: Record<string, string>, bytes: Buffer): void;
  /** Applies a delta batch of an incremental checkpoint (one key group's, after the earlier links of its chain). */
  restoreDelta(kinds: Record<string, string>, ops: unknown[]): void;
  /** every restoreEntries/restoreDelta of a restore has been made (state that needs the whole picture settles here) */
  restoreFinished?(): void;
  /**
   * A full snapshot written to storage in bounded files as it is read (backends whose state may
   * not fit in memory: RocksDB), in place of snapshot() for checkpoints and savepoints. The
   * materializer's files belong to this checkpoint alone (its own directory).
   */
  snapshotStreamed?(checkpointId: number, maxParallelism: number): IncrementalSnapshotMaterializer;
  /**
   * Incremental checkpoints (backends that have them, when the job turned them on): the
   * synchronous part, like snapshot(); the materializer uploads only what changed since the
   * last completed checkpoint and references the rest.
   */
  snapshotIncremental?(checkpointId: number, maxParallelism: number): IncrementalSnapshotMaterializer;
  /**
   * Native checkpoints (RocksDB with state.backend.rocksdb.native-checkpoints): the synchronous
   * part links the database's files as they are now; the materializer uploads those the last
   * completed checkpoint did not have. Undefined when the backend does not take them.
   */
  snapshotNative?(checkpointId: number, maxParallelism: number): NativeSnapshotMaterializer | undefined;
  /**
   * Restores native checkpoint handles: the database as it was when one handle holds exactly
   * `range`, else the rows of `range` copied out of each. `own`: a checkpoint of this job,
   * whose files the next native checkpoint may reference.
   */
  restoreNative?(
    handles: RocksDBNativeKeyedHandle[],
    range: KeyGroupRange,
    read: (f: RocksDBFileHandle) => Promise<Buffer>,
    own: boolean,
  ): Promise<void>;
  notifyCheckpointComplete?(checkpointId: number): void;
  notifyCheckpointAborted?(checkpointId: number): void;
  /**
   * Local recovery with a copy of the backend's own files (RocksDB): kept at a checkpoint's
   * synchronous part, after its snapshot (returns why it could not), and restored in place of
   * reading the checkpoint's files (returns undefined when there is none, or why it was not
   * used; then those are read). `native`: the checkpoint's native handles, whose uploaded table
   * files the next native checkpoint may then reference instead of uploading them again.
   */
  keepLocalCheckpoint?(checkpointId: number): string | undefined;
  restoreLocalCheckpoint?(
    checkpointId: number,
    native?: readonly RocksDBNativeKeyedHandle[],
  ): Promise<{ bytes: number; recovered: boolean } | string | undefined>;
  /** The restored checkpoint's chains become the base of the next incremental checkpoint. */
  adoptRestoredChains?(
    checkpointId: number,
    handles: IncrementalKeyedHandle[],
    inRange: (kg: number) => boolean,
  ): void;
  /**
   * Backends with slow reads (RocksDB): reads ahead, in one round, the state of the keys of a
   * buffer of records about to be processed (keyOf: the operator's key selector).
   */
  prefetch?(records: readonly unknown[], keyOf: (record: unknown) => unknown): void;
  /** Number of keys with state, over all states (for metrics and tests). */
  numKeys(): number;
  /** Releases storage (a RocksDB database is closed and its directory deleted). Idempotent. */
  dispose(): Promise<void>;
}

/** Where and how a TaskManager keeps RocksDB state. */
export interface RocksDBSettings {
  /** the TaskManager's local state directory; each task attempt opens a fresh database below it */
  localDir: string;
  /** the slot's managed memory, shared by a task's databases (see rocksdb/memory-budget.ts) */
  memory: ManagedMemory;
  /** state.backend.rocksdb.native-checkpoints (see rocksdb/native-checkpoint.ts) */
  nativeCheckpoints?: boolean;
}
