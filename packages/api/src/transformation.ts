import type { KeySelector } from './functions.js';
import type { Sink } from './sink.js';
import type { Source } from './source.js';
import type { AggregateFunction } from './state.js';
import type { ReduceFunction } from './functions.js';
import type { WatermarkStrategy } from './eventtime/watermark.js';
import type { OutputTag } from './eventtime/output-tag.js';
import type { Window } from './windowing/windows.js';
import type { WindowAssigner } from './windowing/assigners.js';
import type { Trigger } from './windowing/triggers.js';
import type { Evictor } from './windowing/evictors.js';
import type { ProcessWindowFunction } from './windowing/process-window-function.js';

export type PartitionerType = 'forward' | 'hash' | 'rebalance' | 'broadcast';

export interface Partitioner {
  type: PartitionerType;
  keySelector?: KeySelector<unknown, unknown>;
}

export type OperatorKind =
  | 'source'
  | 'map'
  | 'flatMap'
  | 'filter'
  | 'process'
  | 'keyedProcess'
  | 'reduce'
  | 'sink'
  | 'timestampsAndWatermarks'
  | 'window';

/** What `keyed.window(...)...reduce/aggregate/process` builds: the window operator's settings. */
export interface WindowSpec {
  assigner: WindowAssigner<unknown, Window>;
  trigger?: Trigger<unknown, Window>;
  evictor?: Evictor<unknown, Window>;
  allowedLateness: number;
  lateDataOutputTag?: OutputTag<unknown>;
  reduce?: ReduceFunction<unknown>;
  aggregate?: AggregateFunction<unknown, unknown, unknown>;
  /** structural, so a copy of the API class from another module instance fits */
  process?: Pick<ProcessWindowFunction<unknown, unknown, unknown, Window>, 'process' | 'clear'>;
}

/**
 * One node of the user's pipeline as the API records it. Virtual nodes (union, partition)
 * only shape the edges; physical nodes become operators.
 */
export interface Transformation {
  readonly seq: number;
  kind: OperatorKind | 'union' | 'partition' | 'sideOutput';
  name: string;
  uid?: string;
  /** undefined: the environment's default parallelism */
  parallelism?: number;
  /** upper bound imposed by the operator itself (a socket source runs once) */
  parallelismCap?: number;
  inputs: Transformation[];
  /** the user function, source or sink */
  fn?: unknown;
  /** set on keyed operators: the key of the record being processed */
  keySelector?: KeySelector<unknown, unknown>;
  /** set on 'partition' nodes */
  partitioner?: Partitioner;
  source?: Source<unknown>;
  sink?: Sink<unknown>;
  /** a source's or assignTimestampsAndWatermarks' strategy */
  watermarkStrategy?: WatermarkStrategy<unknown>;
  /** set on 'window' nodes */
  window?: WindowSpec;
  /** set on 'sideOutput' nodes: which of the input's side outputs they read */
  outputTag?: OutputTag<unknown>;
}
