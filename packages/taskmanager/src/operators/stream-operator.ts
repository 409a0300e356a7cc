import type { Collector } from '@weir/api';
import type { KeyedStateBackend } from '../state/keyed-state-backend.js';
import type { OperatorStateBackend } from '../state/operator-state-backend.js';

/**
 * One operator of a chain. It is the Collector of the operator before it, so a record
 * passes down a chain as nested function calls.
 */
export interface StreamOperator extends Collector<unknown> {
  readonly name: string;
  /** a record of the second input (two-input operators only; `collect` takes the first) */
  collect2?(record: unknown): void;
  open(): void | Promise<void>;
  /** a sink whose writer is at its bound: resolves when it takes records again (see SinkWriter.isAvailable) */
  isAvailable?(): Promise<void> | undefined;
  /** end of input: emit and flush what is still buffered */
  finish(): void | Promise<void>;
  close(): void | Promise<void>;
  /** synchronous part of a checkpoint, before state is copied (a sink pre-commits here) */
  snapshotState?(checkpointId: number): void;
  /**
   * Asynchronous part of a checkpoint: resolves once what `snapshotState` made committable is
   * durable (a database transaction prepared, published messages acknowledged); the checkpoint
   * is acknowledged only after.
   */
  snapshotDurable?(checkpointId: number): Promise<void> | undefined;
  notifyCheckpointComplete?(checkpointId: number): void | Promise<void>;
  notifyCheckpointAborted?(checkpointId: number): void;
  /**
   * The input's watermark advanced to `timestamp` (in order with the records): keyed
   * operators fire their due timers here. False: the operator swallows it (a timestamp
   * assigner makes its own), so the task does not pass it on.
   */
  processWatermark?(timestamp: number): boolean;
  /** The input turned idle or active; false: swallowed, as processWatermark. */
  processWatermarkStatus?(idle: boolean): boolean;
  /** late records dropped so far (window operators without a late-data side output) */
  numLateRecordsDropped?(): number;
  /** set on keyed operators: snapshotted at each checkpoint */
  keyedBackend?: KeyedStateBackend;
  /** set on keyed operators whose backend prefetches: called with each input buffer before its records */
  prefetch?(records: readonly unknown[]): void;
  operatorState?: OperatorStateBackend;
}
