import type { KeySelector } from './functions.js';
import type { Sink } from './sink.js';
import type { Source } from './source.js';

export type PartitionerType = 'forward' | 'hash' | 'rebalance' | 'broadcast';

export interface Partitioner {
  type: PartitionerType;
  keySelector?: KeySelector<unknown, unknown>;
}

export type OperatorKind =
  'source' | 'map' | 'flatMap' | 'filter' | 'process' | 'keyedProcess' | 'reduce' | 'sink';

/**
 * One node of the user's pipeline as the API records it. Virtual nodes (union, partition)
 * only shape the edges; physical nodes become operators.
 */
export interface Transformation {
  readonly seq: number;
  kind: OperatorKind | 'union' | 'partition';
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
}
