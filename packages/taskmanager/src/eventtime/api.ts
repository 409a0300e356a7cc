/**
 * The API's event-time types as the runtime sees them. Type-only and in one place: the API
 * package's index does not export its event-time module yet, so this reads it by path
 * (erased at compile time); switch the path to '@weir/api' when the index exports it.
 */
export type {
  AggregateFunction,
  Collector,
  KeyedProcessFunction,
  ReduceFunction,
  State,
  StateDescriptor,
  ValueState,
  ListState,
  MapState,
  ReducingState,
  AggregatingState,
  ValueStateDescriptor,
  ListStateDescriptor,
  MapStateDescriptor,
  ReducingStateDescriptor,
  AggregatingStateDescriptor,
} from '@weir/api';
export type {
  Evictor,
  KeyedStateStore,
  KeyedTimerContext,
  OnTimerContext,
  TimeDomain,
  TimerCallback,
  TimerService,
  MergingWindowAssigner,
  OnMergeContext,
  OutputTag,
  ProcessJoinFunction,
  ProcessWindowFunction,
  TimestampAssigner,
  TimestampedValue,
  Trigger,
  TriggerContext,
  TriggerResult,
  Watermark,
  WatermarkGenerator,
  WatermarkOutput,
  WatermarkStrategy,
  Window,
  WindowAssigner,
  WindowSerializer,
} from '../../../api/src/eventtime/index.js';
