import type { Collector, KeySelector } from '@weir/api';
import type { PartitionerType } from '@weir/api/internal';
import { UnsupportedValueError, assignToKeyGroup, computeOperatorIndexForKeyGroup } from '@weir/core/runtime';
import type { ResultPartition } from './result-partition.js';

/**
 * The event-time timestamp of the record being passed down a chain (Flink's StreamRecord
 * timestamp without a wrapper per record): one object per task, set by whoever emits.
 * Operators that emit with a timestamp of their own (timestamp assigners, windows, timers)
 * set it before collect and put the previous value back after.
 */
export interface RecordTimestamp {
  value: number | undefined;
}

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
  /** the chain's current record timestamp; records with one carry it over the network */
  timestamp: RecordTimestamp = { value: undefined },
): Collector<unknown> {
  const n = partition.numberOfSubpartitions;
  // each collect below reads the timestamp itself (no shared helper): a record's path through
  // a source chain is long, and a call less keeps more of it inlined
  switch (partitioner) {
    case 'forward': {
      const target = ownSubtaskIndex % n;
      return {
        collect: (r) => {
          counter.recordsOut++;
          const ts = timestamp.value;
          if (ts === undefined) partition.emit(target, r);
          else partition.emitTimestamped(target, r, ts);
        },
      };
    }
    case 'broadcast':
      return {
        collect: (r) => {
          counter.recordsOut++;
          partition.broadcastEmit(r, timestamp.value ?? NaN);
        },
      };
    case 'rebalance': {
      // start at a different channel per subtask, as Flink does, so small inputs spread out
      let next = ownSubtaskIndex % n;
      return {
        collect: (r) => {
          counter.recordsOut++;
          const ts = timestamp.value;
          if (ts === undefined) partition.emit(next, r);
          else partition.emitTimestamped(next, r, ts);
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
          const target = computeOperatorIndexForKeyGroup(maxParallelism, n, kg);
          const ts = timestamp.value;
          if (ts === undefined) partition.emit(target, r);
          else partition.emitTimestamped(target, r, ts);
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
