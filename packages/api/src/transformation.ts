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
  | 'window'
  | 'coProcess'
  | 'keyedCoProcess'
  | 'intervalJoin'
  | 'broadcastProcess'
  | 'keyedBroadcastProcess';

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

/** What `intervalJoin(...).between(lo, hi)...process(fn)` builds. */
export interface IntervalJoinSpec {
  lowerBound: number;
  upperBound: number;
  lowerBoundExclusive: boolean;
  upperBoundExclusive: boolean;
  leftLateDataOutputTag?: OutputTag<unknown>;
  rightLateDataOutputTag?: OutputTag<unknown>;
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
  /** set on co-function operators (`connect(...).map/flatMap/process`): which methods fn has */
  coFunction?: 'process' | 'map' | 'flatMap';
  /** set on keyed two-input operators: the key of a record of the second input */
  keySelector2?: KeySelector<unknown, unknown>;
  /** set on 'intervalJoin' nodes */
  intervalJoin?: IntervalJoinSpec;
  /** set on broadcast operators: the names of the broadcast states */
  broadcastStateNames?: string[];
  /** set on 'sideOutput' nodes: which of the input's side outputs they read */
  outputTag?: OutputTag<unknown>;
}
