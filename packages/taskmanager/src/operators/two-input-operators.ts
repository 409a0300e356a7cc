import type {
  BroadcastProcessFunction,
  Collector,
  KeyedBroadcastProcessFunction,
  MapStateDescriptor,
  OutputTag,
  State,
  StateDescriptor,
  TimeDomain,
  TimerService,
} from '@weir/api';
import { decodeValue } from '@weir/core/runtime';
import { VOID_NAMESPACE_SERIALIZER } from '../eventtime/internal-timer-service.js';
import {
  KeyedCoProcessOperator,
  type KeyedCoProcessFunctionLike,
} from '../eventtime/keyed-co-process-operator.js';
import { IntervalJoinOperator, JOIN_SIDE_SERIALIZER } from '../eventtime/interval-join-operator.js';
import type { KeyedStateBackend } from '../state/keyed-state-backend.js';
import { BroadcastStateBackend } from '../state/broadcast-state-backend.js';
import {
  KeyedEventTimeOperator,
  timestampedOutput,
  type KeyedOperatorParts,
  type OperatorRuntime,
} from './event-time-operators.js';
import type { StreamOperator } from './stream-operator.js';
import type { OperatorStateBackend } from '../state/operator-state-backend.js';
import type { SubtaskInfo } from '../task/runtime-context.js';
import type { StreamNode } from '@weir/api/internal';

type Fn = (...args: unknown[]) => unknown;

function method(fn: unknown, name: string, operator: string): Fn {
  const m = (fn as Record<string, unknown> | undefined)?.[name];
  if (typeof m !== 'function') throw new Error(`Operator '${operator}' needs a function with ${name}()`);
  return (m as Fn).bind(fn);
}

/** The two element methods of a co-function, as a KeyedCoProcessFunction's (map/flatMap adapted). */
function coProcessFunction(node: StreamNode): KeyedCoProcessFunctionLike<unknown, unknown, unknown, unknown> {
  const fn = node.transformation.fn;
  const name = node.name;
  switch (node.transformation.coFunction ?? 'process') {
    case 'map': {
      const m1 = method(fn, 'map1', name);
      const m2 = method(fn, 'map2', name);
      return {
        processElement1: (v, _ctx, out) => out.collect(m1(v)),
        processElement2: (v, _ctx, out) => out.collect(m2(v)),
      };
    }
    case 'flatMap': {
      const f1 = method(fn, 'flatMap1', name);
      const f2 = method(fn, 'flatMap2', name);
      return {
        processElement1: (v, _ctx, out) => void f1(v, out),
        processElement2: (v, _ctx, out) => void f2(v, out),
      };
    }
    case 'process':
      return fn as KeyedCoProcessFunctionLike<unknown, unknown, unknown, unknown>;
  }
}

/** Timers of a non-keyed two-input function: only the clocks, registration fails clearly. */
function noTimers(name: string, watermark: () => number): TimerService {
  const refuse = (): never => {
    throw new Error(
      `'${name}' registered a timer on streams that are not keyed; timers need keyed inputs: connect(...).keyBy(key1, key2)`,
    );
  };
  return {
    currentProcessingTime: () => Date.now(),
    currentWatermark: watermark,
    registerEventTimeTimer: refuse,
    registerProcessingTimeTimer: refuse,
    deleteEventTimeTimer: refuse,
    deleteProcessingTimeTimer: refuse,
  };
}

function kindOf(key: unknown): string {
  if (Array.isArray(key)) return 'arrays';
  if (key === null) return 'null';
  return `${typeof key}s`;
}

/**
 * Keys of the two inputs meet only when they are equal values of one type: a first key of
 * each input of different kinds (a number and a string) means the key selectors disagree,
 * and no record would ever meet its partner. Checked on the first key of each input only.
 */
class KeyKindCheck {
  done = false;
  private readonly kinds: [string | undefined, string | undefined] = [undefined, undefined];
  private readonly samples: unknown[] = [];

  constructor(private readonly operatorName: string) {}

  see(input: 0 | 1, key: unknown): void {
    if (this.kinds[input] !== undefined) return;
    this.kinds[input] = kindOf(key);
    this.samples[input] = key;
    const [a, b] = this.kinds;
    if (a === undefined || b === undefined) return;
    this.done = true;
    if (a !== b)
      throw new Error(
        `'${this.operatorName}': the first input's keys are ${a} and the second input's are ${b} (${JSON.stringify(this.samples[0])} and ${JSON.stringify(this.samples[1])}), so no record meets a partner; make both key selectors return the same type`,
      );
  }
}

export interface TwoInputParts {
  node: StreamNode;
  runtime: OperatorRuntime;
  output: Collector<unknown>;
  open: () => void | Promise<void>;
  close: () => void | Promise<void>;
}

/** `connect(b).map/flatMap/process` without keys: records keep their timestamps. */
export function coProcessOperator(p: TwoInputParts): StreamOperator {
  const { node, runtime, output } = p;
  const fn = coProcessFunction(node);
  const slot = runtime.timestamp;
  let watermark = -Infinity;
  const timers = noTimers(node.name, () => watermark);
  const ctx = {
    timestamp: () => slot.value,
    output: <X>(tag: OutputTag<X>, value: X) => runtime.sideOutput(tag.id)?.collect(value),
    timerService: () => timers,
    getCurrentKey: (): never => {
      throw new Error(`'${node.name}': getCurrentKey() needs keyed inputs`);
    },
  };
  const e1 = fn.processElement1.bind(fn);
  const e2 = fn.processElement2.bind(fn);
  return {
    name: node.name,
    collect: (r) => e1(r, ctx, output),
    collect2: (r) => e2(r, ctx, output),
    processWatermark: (t) => {
      watermark = t;
      return true;
    },
    open: p.open,
    finish: () => {},
    close: p.close,
  };
}

/** What a keyed two-input operator core takes: a record of either input with its timestamp and key. */
interface KeyedTwoInputCore {
  processElement1(r: unknown, timestamp: number | undefined, key: unknown): void;
  processElement2(r: unknown, timestamp: number | undefined, key: unknown): void;
}

/**
 * The task-facing operator around a keyed two-input core: keys each record by its input's
 * selector (checking once that both inputs' keys are of one kind), passes the record's
 * timestamp, fires timers on watermarks and keeps the watermark with the state.
 */
function keyedTwoInput(
  p: KeyedOperatorParts,
  keySelector2: (r: unknown) => unknown,
  core: KeyedTwoInputCore,
  timers: {
    advanceWatermark(t: number): void;
    currentWatermark(): number;
    restoreWatermark(w: number): void;
  },
  lateRecordsDropped?: () => number,
): StreamOperator {
  const { node, runtime, backend, keySelector } = p;
  const slot = runtime.timestamp;
  const kinds = new KeyKindCheck(node.name);
  return new (class extends KeyedEventTimeOperator {
    collect(r: unknown): void {
      const key = keySelector(r);
      if (!kinds.done) kinds.see(0, key);
      core.processElement1(r, slot.value, key);
    }
    collect2(r: unknown): void {
      const key = keySelector2(r);
      if (!kinds.done) kinds.see(1, key);
      core.processElement2(r, slot.value, key);
    }
    processWatermark(t: number): boolean {
      timers.advanceWatermark(t);
      return true;
    }
    numLateRecordsDropped(): number {
      return lateRecordsDropped?.() ?? 0;
    }
  })(
    node.name,
    backend,
    p.operatorState,
    p.info,
    () => timers.currentWatermark(),
    (w) => timers.restoreWatermark(w),
    p.open,
    p.close,
  );
}

/** `connect(b).keyBy(k1, k2).process(KeyedCoProcessFunction)` (or map/flatMap on keyed inputs). */
export function keyedCoProcessOperator(
  p: KeyedOperatorParts,
  keySelector2: (r: unknown) => unknown,
): StreamOperator {
  const { node, runtime, backend } = p;
  let op: KeyedCoProcessOperator<unknown, unknown, unknown, unknown> | undefined;
  const timers = backend.createTimerService<undefined>(
    VOID_NAMESPACE_SERIALIZER,
    runtime.processingTimeService,
    {
      onEventTime: (t) => op!.onEventTime(t),
      onProcessingTime: (t) => op!.onProcessingTime(t),
    },
  );
  const co = (op = new KeyedCoProcessOperator(
    node.name,
    coProcessFunction(node),
    backend,
    timers,
    timestampedOutput(p.output, runtime),
  ));
  return keyedTwoInput(p, keySelector2, co, timers);
}

/** `a.keyBy(k).intervalJoin(b.keyBy(k)).between(lo, hi).process(fn)`. */
export function intervalJoinOperator(
  p: KeyedOperatorParts,
  keySelector2: (r: unknown) => unknown,
): StreamOperator {
  const { node, runtime, backend } = p;
  const spec = node.transformation.intervalJoin;
  if (!spec) throw new Error(`Interval join '${node.name}' has no bounds`);
  let op: IntervalJoinOperator<unknown, unknown, unknown> | undefined;
  const timers = backend.createTimerService(JOIN_SIDE_SERIALIZER, runtime.processingTimeService, {
    onEventTime: (t) => op!.onEventTime(t),
    onProcessingTime: () => {},
  });
  const join = (op = new IntervalJoinOperator({
    operatorName: node.name,
    lowerBound: spec.lowerBound,
    upperBound: spec.upperBound,
    lowerBoundExclusive: spec.lowerBoundExclusive,
    upperBoundExclusive: spec.upperBoundExclusive,
    fn: { processElement: method(node.transformation.fn, 'processElement', node.name) as never },
    state: backend.namespacedState(),
    timers,
    output: timestampedOutput(p.output, runtime),
    ...(spec.leftLateDataOutputTag ? { leftLateDataOutputTag: spec.leftLateDataOutputTag } : {}),
    ...(spec.rightLateDataOutputTag ? { rightLateDataOutputTag: spec.rightLateDataOutputTag } : {}),
  }));
  return keyedTwoInput(p, keySelector2, join, timers, () => join.numLateRecordsDropped);
}

export interface BroadcastParts extends TwoInputParts {
  info: SubtaskInfo;
  operatorState: OperatorStateBackend;
}

/** `x.connect(stream.broadcast(descriptors)).process(BroadcastProcessFunction)`. */
export function broadcastProcessOperator(p: BroadcastParts): StreamOperator {
  const { node, runtime, output } = p;
  const states = new BroadcastStateBackend(
    node.name,
    node.transformation.broadcastStateNames ?? [],
    p.operatorState,
    p.info,
  );
  const fn = node.transformation.fn as BroadcastProcessFunction<unknown, unknown, unknown>;
  const slot = runtime.timestamp;
  let watermark = -Infinity;
  const base = {
    timestamp: () => slot.value,
    output: <X>(tag: OutputTag<X>, value: X) => runtime.sideOutput(tag.id)?.collect(value),
    currentProcessingTime: () => Date.now(),
    currentWatermark: () => watermark,
  };
  const readOnly: BroadcastProcessFunction.ReadOnlyContext = {
    ...base,
    getBroadcastState: <K, V>(d: MapStateDescriptor<K, V>) => states.getReadOnly(d),
  };
  const writable: BroadcastProcessFunction.Context = {
    ...base,
    getBroadcastState: <K, V>(d: MapStateDescriptor<K, V>) => states.get(d),
  };
  return {
    name: node.name,
    collect: (r) => fn.processElement(r, readOnly, output),
    collect2: (r) => fn.processBroadcastElement(r, writable, output),
    processWatermark: (t) => {
      watermark = t;
      return true;
    },
    snapshotState: () => states.snapshot(),
    open: p.open,
    finish: () => {},
    close: p.close,
  };
}

/** Registry of the keys the keyed side saw (namespaced state, so checkpointed and rescaled by key group). */
const KEYS_STATE = 'weir.broadcast-keys';

/** A key as the state maps hold it (normalizeKey), back to the key the selector returned. */
function denormalizeKey(k: string | number): unknown {
  if (typeof k === 'string' && k.charCodeAt(0) === 0) return decodeValue(Buffer.from(k.slice(1), 'latin1'));
  return k;
}

function keyedState(backend: KeyedStateBackend, d: StateDescriptor<State>): State {
  const desc = d as unknown as { kind: string };
  switch (desc.kind) {
    case 'value':
      return backend.getState(d as never);
    case 'list':
      return backend.getListState(d as never);
    case 'map':
      return backend.getMapState(d as never);
    case 'reducing':
      return backend.getReducingState(d as never);
    case 'aggregating':
      return backend.getAggregatingState(d as never);
    default:
      throw new Error(`applyToKeyedState() needs a state descriptor, got ${String(desc.kind)}`);
  }
}

/** Whether the current key has anything in `state` (applyToKeyedState visits only those keys). */
function hasState(kind: string, s: State): boolean {
  const state = s as unknown;
  switch (kind) {
    case 'value':
      return (state as { value(): unknown }).value() !== undefined;
    case 'list':
      return !(state as { get(): Iterable<unknown> }).get()[Symbol.iterator]().next().done;
    case 'map':
      return !(state as { isEmpty(): boolean }).isEmpty();
    default:
      return (state as { get(): unknown }).get() !== undefined;
  }
}

/**
 * `keyed.connect(stream.broadcast(descriptors)).process(KeyedBroadcastProcessFunction)`: keyed
 * state and timers on the keyed side, broadcast state on both, and `applyToKeyedState`
 * visiting every key of this subtask that has state under a descriptor.
 */
export function keyedBroadcastProcessOperator(p: KeyedOperatorParts): StreamOperator {
  const { node, runtime, backend, keySelector } = p;
  const name = node.name;
  const states = new BroadcastStateBackend(
    name,
    node.transformation.broadcastStateNames ?? [],
    p.operatorState,
    p.info,
  );
  const fn = node.transformation.fn as KeyedBroadcastProcessFunction<unknown, unknown, unknown, unknown>;
  const ns = backend.namespacedState();
  // namespaced state exists once the backend is open (after construction)
  let keys: ReturnType<typeof ns.getValueState<number>> | undefined;
  const out = timestampedOutput(p.output, runtime);
  const collector = {
    timestamp: undefined as number | undefined,
    collect(v: unknown) {
      out.collect(v, this.timestamp);
    },
  };
  const ctx = {
    currentTimestamp: undefined as number | undefined,
    domain: undefined as TimeDomain | undefined,
  };
  const timers = backend.createTimerService<undefined>(
    VOID_NAMESPACE_SERIALIZER,
    runtime.processingTimeService,
    {
      onEventTime: (t) => fire(t.timestamp, 'EVENT_TIME' as TimeDomain, t.timestamp),
      onProcessingTime: (t) => fire(t.timestamp, 'PROCESSING_TIME' as TimeDomain, undefined),
    },
  );
  const timerService: TimerService = {
    currentProcessingTime: () => timers.currentProcessingTime(),
    currentWatermark: () => timers.currentWatermark(),
    registerEventTimeTimer: (t) => timers.registerEventTimeTimer(undefined, t, 0),
    registerProcessingTimeTimer: (t) => timers.registerProcessingTimeTimer(undefined, t, 0),
    deleteEventTimeTimer: (t) => timers.deleteEventTimeTimer(undefined, t, 0),
    deleteProcessingTimeTimer: (t) => timers.deleteProcessingTimeTimer(undefined, t, 0),
  };
  const base = {
    timestamp: () => ctx.currentTimestamp,
    output: <X>(tag: OutputTag<X>, value: X) =>
      out.sideOutput(tag as OutputTag<unknown>, value, ctx.currentTimestamp),
    currentProcessingTime: () => timers.currentProcessingTime(),
    currentWatermark: () => timers.currentWatermark(),
  };
  const onTimerCtx: KeyedBroadcastProcessFunction.OnTimerContext<unknown> = {
    ...base,
    getBroadcastState: <K, V>(d: MapStateDescriptor<K, V>) => states.getReadOnly(d),
    timerService: () => timerService,
    getCurrentKey: () => backend.getCurrentKey(),
    timeDomain: () => {
      if (ctx.domain === undefined) throw new Error(`'${name}': timeDomain() is only available in onTimer`);
      return ctx.domain;
    },
  };
  const broadcastCtx: KeyedBroadcastProcessFunction.Context = {
    ...base,
    getBroadcastState: <K, V>(d: MapStateDescriptor<K, V>) => states.get(d),
    applyToKeyedState: <S extends State>(d: StateDescriptor<S>, visit: (key: unknown, state: S) => void) => {
      const kind = (d as unknown as { kind: string }).kind;
      ns.forEachKey(KEYS_STATE, (normalized) => {
        const key = denormalizeKey(normalized);
        backend.setCurrentKey(key);
        const state = keyedState(backend, d as StateDescriptor<State>);
        if (hasState(kind, state)) visit(key, state as S);
      });
    },
  };
  function fire(timestamp: number, domain: TimeDomain, outputTimestamp: number | undefined): void {
    if (typeof fn.onTimer !== 'function')
      throw new Error(
        `'${name}' registered a timer but its ${fn.constructor.name} has no onTimer(timestamp, ctx, out) method`,
      );
    ctx.currentTimestamp = timestamp;
    ctx.domain = domain;
    collector.timestamp = outputTimestamp;
    fn.onTimer(timestamp, onTimerCtx, collector);
    ctx.domain = undefined;
  }
  const slot = runtime.timestamp;
  return new (class extends KeyedEventTimeOperator {
    collect(r: unknown): void {
      backend.setCurrentKey(keySelector(r));
      keys ??= ns.getValueState<number>(KEYS_STATE);
      if (keys.get(0) === undefined) keys.update(0, 1);
      ctx.currentTimestamp = collector.timestamp = slot.value;
      fn.processElement(r, onTimerCtx, collector);
    }
    collect2(r: unknown): void {
      ctx.currentTimestamp = collector.timestamp = slot.value;
      fn.processBroadcastElement(r, broadcastCtx, collector);
    }
    processWatermark(t: number): boolean {
      timers.advanceWatermark(t);
      return true;
    }
    override snapshotState(checkpointId: number): void {
      super.snapshotState(checkpointId);
      states.snapshot();
    }
  })(
    name,
    backend,
    p.operatorState,
    p.info,
    () => timers.currentWatermark(),
    (w) => timers.restoreWatermark(w),
    p.open,
    p.close,
  );
}
