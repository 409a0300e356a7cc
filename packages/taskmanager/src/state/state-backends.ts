import { computeKeyGroupRangeForOperatorIndex } from '@weir/core/runtime';
import { HeapKeyedStateBackend } from './heap-keyed-state-backend.js';
import type { KeyedStateBackend, RocksDBSettings, StateBackendType } from './keyed-state-backend.js';
import { RocksDBKeyedStateBackend, rocksDBDirectory } from './rocksdb-keyed-state-backend.js';
import { databaseMemory } from './rocksdb/memory-budget.js';

export function parseStateBackendType(v: string | undefined, what: string): StateBackendType {
  if (v === undefined || v === '' || v === 'heap' || v === 'hashmap') return 'heap';
  if (v === 'rocksdb') return 'rocksdb';
  throw new Error(`Unknown state backend '${v}' in ${what}; expected heap or rocksdb`);
}

/** The keyed state backend of one operator of one task attempt (one of `databases` RocksDB ones of the task). */
export function createKeyedStateBackend(
  type: StateBackendType,
  rocksdb: RocksDBSettings,
  task: {
    jobId: string;
    operatorId: string;
    subtaskIndex: number;
    attemptNumber: number;
    maxParallelism: number;
    parallelism: number;
  },
  incremental = false,
  databases = 1,
  /** with local recovery on, where a RocksDB backend keeps its local checkpoints */
  localCheckpoints?: string,
): KeyedStateBackend {
  if (type === 'heap') return new HeapKeyedStateBackend();
  const range = computeKeyGroupRangeForOperatorIndex(
    task.maxParallelism,
    task.parallelism,
    task.subtaskIndex,
  );
  return new RocksDBKeyedStateBackend({
    directory: rocksDBDirectory(rocksdb.localDir, task),
    maxParallelism: task.maxParallelism,
    ...databaseMemory(rocksdb.memory, databases),
    // native checkpoints are incremental by nature: no change tracking beside them
    incremental: incremental && !rocksdb.nativeCheckpoints,
    ...(localCheckpoints !== undefined ? { localCheckpoints } : {}),
    ...(rocksdb.nativeCheckpoints ? { nativeCheckpoints: [range.start, range.end] as [number, number] } : {}),
  });
}
