import type { Collector, KeySelector } from '@weir/api';
import type { PartitionerType } from '@weir/api/internal';
import { UnsupportedValueError, assignToKeyGroup, computeOperatorIndexForKeyGroup } from '@weir/core';
import type { ResultPartition } from './result-partition.js';

/**
 * The tail of a chain: picks the subpartition of each record by the edge's partitioner and
 * appends it to that subpartition's open buffer.
 */
export function createRecordWriter(
  partition: ResultPartition,
  partitioner: PartitionerType,
  ownSubtaskIndex: number,
  maxParallelism: number,
  keySelector: KeySelector<unknown, unknown> | undefined,
  counter: { recordsOut: number },
  /** who emits, for error messages */
  description = 'this task',
): Collector<unknown> {
  const n = partition.numberOfSubpartitions;
  switch (partitioner) {
    case 'forward': {
      const target = ownSubtaskIndex % n;
      return {
        collect: (r) => {
          counter.recordsOut++;
          partition.emit(target, r);
        },
      };
    }
    case 'broadcast':
      return {
        collect: (r) => {
          counter.recordsOut++;
          partition.broadcastEmit(r);
        },
      };
    case 'rebalance': {
      // start at a different channel per subtask, as Flink does, so small inputs spread out
      let next = ownSubtaskIndex % n;
      return {
        collect: (r) => {
          counter.recordsOut++;
          partition.emit(next, r);
          next = next + 1 === n ? 0 : next + 1;
        },
      };
    }
    case 'hash': {
      if (!keySelector)
        throw new Error('A hash-partitioned edge needs the key selector of its keyed operator');
      return {
        collect: (r) => {
          counter.recordsOut++;
          let kg: number;
          try {
            kg = assignToKeyGroup(keySelector(r), maxParallelism);
          } catch (e) {
            if (e instanceof UnsupportedValueError)
              throw new Error(e.describe('key', `Cannot use the key of a record from ${description}`));
            throw e;
          }
          partition.emit(computeOperatorIndexForKeyGroup(maxParallelism, n, kg), r);
        },
      };
    }
  }
}

/** Fans one chain output out to every outgoing edge. */
export function fanOut(collectors: Collector<unknown>[]): Collector<unknown> {
  if (collectors.length === 1) return collectors[0]!;
  return {
    collect: (r) => {
      for (const c of collectors) c.collect(r);
    },
  };
}
