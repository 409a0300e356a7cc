/*
 * The state of a checkpoint as both processes see it, after Flink's state-handle classes: a
 * TaskManager acknowledges a checkpoint with one `OperatorSubtaskState` per operator of its chain
 * (a `TaskStateSnapshot`), the CheckpointCoordinator writes them into `_metadata` unchanged, and
 * `RestorePlan` deals them out again as a `TaskRestoreState` per new subtask. The JSON shape is the
 * on-disk format of `_metadata`: existing checkpoints and savepoints must stay readable, so a
 * change here is a format change.
 */

/** A file in checkpoint storage; `path` is relative to the directory holding `_metadata`. */
export interface StreamStateHandle {
  path: string;
  size: number;
  sha256: string;
}

/**
 * The keyed state of one subtask in the canonical format: one file with an index
 * key group -> [offset, length] and the kind of every state. Untagged on disk (no `format`).
 * A key group written in segments (a heap snapshot stored while it is encoded) has
 * [offset, length, offset, length, ...]: each range is one MessagePack array of entries.
 */
export interface FullKeyedHandle extends StreamStateHandle {
  format?: undefined;
  index: Record<string, number[]>;
  kinds: Record<string, string>;
}

/** A shared file referenced by an incremental handle; `path` is relative to the checkpoint's directory (`../shared/<name>`). */
export interface SharedFileHandle extends StreamStateHandle {
  /** the checkpoint that wrote the file */
  checkpointId: number;
}

/** [index into files, offset, length, 1 for a full batch or 0 for a delta] */
export type ChainLink = [number, number, number, 0 | 1];

/**
 * The keyed state of one operator subtask in an incremental checkpoint: per key group a chain of
 * batches in shared files, oldest first (see the TaskManager's incremental-snapshot.ts).
 */
export interface IncrementalKeyedHandle {
  format: 'incremental';
  kinds: Record<string, string>;
  files: SharedFileHandle[];
  /** key group -> chain, oldest first */
  groups: Record<string, ChainLink[]>;
  /** bytes this checkpoint uploaded, and bytes of the whole state it references */
  checkpointedSize: number;
  fullSize: number;
}

/** A file of a RocksDB database in checkpoint storage, with its name in the database's directory. */
export interface RocksDBFileHandle extends SharedFileHandle {
  name: string;
}

/**
 * The keyed state of one operator subtask as the files of its RocksDB database (Flink's
 * IncrementalRemoteKeyedStateHandle of a native RocksDB checkpoint). Every file is a shared
 * file: table files never change, so a later checkpoint references those it still has; the
 * others (MANIFEST, CURRENT, OPTIONS, the write-ahead logs up to the checkpoint) are written by
 * each checkpoint anew, except that a log a later checkpoint finds longer is referenced and
 * only its tail written: `files` then lists the log's parts in order, under one name. Restored
 * at the same key groups by opening the database; otherwise its rows of the new subtask's key
 * groups are copied out.
 */
export interface RocksDBNativeKeyedHandle {
  format: 'rocksdb-native';
  /** the states, [name, kind], in the order of their ids (a row's key carries its state's id) */
  states: Array<[name: string, kind: string]>;
  /** the first and last key group of the subtask that wrote it */
  keyGroups: [number, number];
  /** RocksDB's latest sequence number at the checkpoint: what the opened database must show */
  sequence: string;
  files: RocksDBFileHandle[];
  /** bytes this checkpoint uploaded, and bytes of all the files it references */
  checkpointedSize: number;
  fullSize: number;
}

/** Keyed state of one operator subtask, tagged by `format` (absent for the full format). */
export type KeyedStateHandle = FullKeyedHandle | IncrementalKeyedHandle | RocksDBNativeKeyedHandle;

export function isIncrementalHandle(h: KeyedStateHandle): h is IncrementalKeyedHandle {
  return h.format === 'incremental';
}

export function isRocksDBNativeHandle(h: KeyedStateHandle): h is RocksDBNativeKeyedHandle {
  return h.format === 'rocksdb-native';
}

/** The shared files a keyed state handle references (none for the full format). */
export function sharedFilesOfHandle(h: KeyedStateHandle): readonly SharedFileHandle[] {
  return h.format === undefined ? [] : h.files;
}

/** The [offset, length] ranges of one key group's entry in a full handle's index (one, or its segments in order). */
export function keyGroupRanges(ranges: number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i + 1 < ranges.length; i += 2) out.push([ranges[i]!, ranges[i + 1]!]);
  return out;
}

/** The key groups a handle has state for. */
export function keyGroupsOf(h: KeyedStateHandle): number[] {
  if (isRocksDBNativeHandle(h))
    return Array.from({ length: h.keyGroups[1] - h.keyGroups[0] + 1 }, (_, i) => h.keyGroups[0] + i);
  return Object.keys(isIncrementalHandle(h) ? h.groups : h.index).map(Number);
}

export type OperatorListMode = 'split' | 'union';

/** Operator list state (Flink's ListState / UnionListState of an OperatorStateStore), by state name. */
export type OperatorLists = Record<string, { mode: OperatorListMode; items: unknown[] }>;

/**
 * The in-flight data of one subtask in an unaligned checkpoint (Flink's InputChannelStateHandle
 * and ResultSubpartitionStateHandle in one file): frames of its input channels and outputs.
 * Recorded with the head operator of the task's chain; restored only at the same parallelism.
 */
export interface ChannelStateHandle extends StreamStateHandle {
  /** bytes of input channel and of output frames in the file */
  inputBytes: number;
  outputBytes: number;
}

/** The state of one operator in one subtask (Flink's OperatorSubtaskState). */
export interface OperatorSubtaskState {
  /** a source's position: its splits */
  operatorState?: unknown[];
  lists?: OperatorLists;
  keyed?: KeyedStateHandle;
  /** the task's channel state (unaligned checkpoints), on the head operator of its chain */
  channelState?: ChannelStateHandle;
}

/** What a task acknowledges a checkpoint with: operator id -> its state (Flink's TaskStateSnapshot). */
export type TaskStateSnapshot = Record<string, OperatorSubtaskState>;

/** The `_metadata` file of a completed checkpoint or savepoint (Flink's CheckpointMetadata). */
export interface CheckpointMetadata {
  version: 1;
  jobId: string;
  checkpointId: number;
  /** absent in files written before these were recorded */
  savepoint?: boolean;
  timestamp?: number;
  maxParallelism: number;
  /** operator id -> its parallelism and the state of each old subtask (by subtask index) */
  operators: Record<string, OperatorState>;
}

/** One operator in a checkpoint (Flink's OperatorState). */
export interface OperatorState {
  parallelism: number;
  subtasks: Record<string, OperatorSubtaskState>;
  /** a source's split enumerator state (Flink's coordinator state), kept by the JobManager */
  coordinatorState?: unknown;
}

/** What one restored operator of a new subtask receives. */
export interface OperatorRestoreState {
  splits?: unknown[];
  lists?: OperatorLists;
  keyed?: KeyedStateHandle[];
  /** the same subtask's channel state (restored at the same parallelism only) */
  channelState?: ChannelStateHandle;
}

/** What the JobManager sends a restored task (planned by RestorePlan.forSubtask). */
export interface TaskRestoreState {
  /** storage root URI the handle paths are relative to */
  storage: string;
  checkpointId: number;
  operators: Record<string, OperatorRestoreState>;
}
