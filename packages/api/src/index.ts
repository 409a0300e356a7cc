/**
 * What a job author imports: the environment and streams, functions, state, checkpoint and
 * restart settings, sources and sinks. The runtime's side of this package (the planner hook,
 * the stream graph, cluster defaults) is `@weir/api/internal`.
 */
export { StreamExecutionEnvironment, type JobExecutionResult } from './environment.js';
export { DataStream, DataStreamSink, KeyedStream, SingleOutputStreamOperator } from './datastream.js';
export { WindowedStream } from './windowing/windowed-stream.js';
export {
  BroadcastConnectedStream,
  BroadcastStream,
  CoGroupedStreams,
  ConnectedStreams,
  IntervalJoin,
  IntervalJoined,
  JoinedStreams,
} from './connected-streams.js';
export * from './eventtime/index.js';
export { getJobArgs } from './planner.js';

export {
  CheckpointConfig,
  type CheckpointingMode,
  type ExternalizedCheckpointRetention,
} from './checkpoint-config.js';
export {
  RestartStrategies,
  type RestartStrategyConfiguration,
  type RestartStrategyType,
} from './restart-strategy.js';
export type { StateBackendOptions, StateBackendType } from './stream-graph.js';

export {
  AbstractRichFunction,
  KeyedProcessFunction,
  ProcessFunction,
  RichFilterFunction,
  RichFlatMapFunction,
  RichMapFunction,
  type Collector,
  type FilterFunction,
  type FilterLike,
  type FlatMapFunction,
  type FlatMapLike,
  type KeySelector,
  type MapFunction,
  type MapLike,
  type ReduceFunction,
} from './functions.js';
export type { OperatorStateStore, RuntimeContext, TaskInfo } from './runtime-context.js';

export {
  AggregatingStateDescriptor,
  ListStateDescriptor,
  MapStateDescriptor,
  ReducingStateDescriptor,
  StateDescriptor,
  ValueStateDescriptor,
  type AggregateFunction,
  type AggregatingState,
  type AppendingState,
  type ListState,
  type MapState,
  type ReducingState,
  type State,
  type ValueState,
} from './state.js';

export {
  AVAILABLE,
  InputStatus,
  type Boundedness,
  type ReaderOutput,
  type Source,
  type SourceReader,
  type SplitRequester,
} from './source.js';
export type { SplitEnumerator, SplitEnumeratorContext } from './split-enumerator.js';
export {
  SplitSource,
  SplitSourceReader,
  CoordinatedSplitSourceReader,
  type SourceSplit,
  type SplitReader,
  type SplitReaderOutput,
} from './split-source.js';
export type { ProgressionSplit } from './sources/progression-reader.js';
export { CollectionSource } from './sources/collection-source.js';
export { NumberSequenceSource } from './sources/number-sequence-source.js';
export { DataGeneratorSource } from './sources/data-generator-source.js';
export {
  TextFileSource,
  type FileSourceSplit,
  type TextFileEnumeratorState,
  type TextFileSourceOptions,
} from './sources/text-file-source.js';
export { SocketTextSource } from './sources/socket-text-source.js';
export * from './sources/nexmark/index.js';

export type { Sink, SinkWriter } from './sink.js';
export {
  TwoPhaseCommittingSink,
  type Committer,
  type PrecommittingWriter,
  type TransactionContext,
} from './sinks/committing-sink.js';
export { FileSink, type FileSinkCommittable, type FileSinkOptions } from './sinks/file-sink.js';
export { PrintSink } from './sinks/print-sink.js';
export { CollectSink } from './sinks/collect-sink.js';
export { DiscardingSink } from './sinks/discarding-sink.js';
