import { ListStateDescriptor, type Collector, type KeySelector, type OutputTag } from '@weir/api';
import type { StreamNode } from '@weir/api/internal';
import { computeKeyGroupRangeForOperatorIndex } from '@weir/core/runtime';
import {
  InternalTimerService,
  VOID_NAMESPACE_SERIALIZER,
  type ProcessingTimeService,
  type Triggerable,
} from '../eventtime/internal-timer-service.js';
import { EventTimeKeyedBackend } from '../eventtime/event-time-state.js';
import type { KeyedStateBackend } from '../state/keyed-state-backend.js';
import { KeyedProcessOperator, type KeyedProcessFunctionLike } from '../eventtime/keyed-process-operator.js';
import { TimestampsAndWatermarks, type SplitWatermarks } from '../eventtime/watermark-generation.js';
import type { WatermarkSink } from '../eventtime/watermark-valve.js';
import { WindowOperator, type WindowOutput } from '../eventtime/window-operator.js';
import type { RecordTimestamp } from '../network/record-writer.js';
import type { OperatorStateBackend } from '../state/operator-state-backend.js';
import type { SubtaskInfo } from '../task/runtime-context.js';
import type { StreamOperator } from './stream-operator.js';

/** What the task gives an operator besides its output: time, side outputs, watermarks downstream of it. */
export interface OperatorRuntime {
  /** the chain's current record timestamp */
  readonly timestamp: RecordTimestamp;
  readonly processingTimeService: ProcessingTimeService;
  /** where records for a side output go; undefined when nothing reads that output */
  sideOutput(tagId: string): Collector<unknown> | undefined;
  /** a watermark this operator produces, to the operators after it and the outputs */
  emitWatermark(timestamp: number): void;
  emitWatermarkStatus(idle: boolean): void;
  /** pipeline.auto-watermark-interval */
  readonly autoWatermarkIntervalMs: number;
}

/** The runtime of an operator outside a task (unit tests): no side outputs, watermarks dropped, wall clock. */
export function standaloneRuntime(): OperatorRuntime {
  return {
    timestamp: { value: undefined },
    processingTimeService: {
      getCurrentProcessingTime: () => Date.now(),
      registerTimer: (time, cb) => {
        const h = setTimeout(() => cb(time), Math.max(0, time - Date.now()));
        return { cancel: () => clearTimeout(h) };
      },
    },
    sideOutput: () => undefined,
    emitWatermark: () => {},
    emitWatermarkStatus: () => {},
    autoWatermarkIntervalMs: 200,
  };
}

/**
 * Emits with a timestamp of the operator's own (a window's end, a timer's time) and puts the
 * chain's timestamp back after, so a record emitted later by an upstream operator of the
 * chain keeps its own.
 */
export function timestampedOutput<OUT>(
  output: Collector<unknown>,
  runtime: OperatorRuntime,
): WindowOutput<OUT> {
  const slot = runtime.timestamp;
  return {
    collect(value, timestamp) {
      const prev = slot.value;
      slot.value = timestamp;
      output.collect(value);
      slot.value = prev;
    },
    sideOutput(tag: OutputTag<unknown>, value, timestamp) {
      const side = runtime.sideOutput(tag.id);
      if (!side) return;
      const prev = slot.value;
      slot.value = timestamp;
      side.collect(value);
      slot.value = prev;
    },
  };
}

/**
 * Holds a watermark a generator emits while its record is being handled until the record
 * went downstream (as Flink emits it after the record), so a generator's watermark never
 * makes its own record late.
 */
export class AfterRecordWatermarks implements WatermarkSink {
  private inRecord = false;
  private pending = NaN;

  constructor(private readonly out: WatermarkSink) {}

  begin(): void {
    this.inRecord = true;
  }

  end(): void {
    this.inRecord = false;
    const t = this.pending;
    if (t === t) {
      this.pending = NaN;
      this.out.emitWatermark(t);
    }
  }

  emitWatermark(timestamp: number): void {
    if (this.inRecord) this.pending = timestamp;
    else this.out.emitWatermark(timestamp);
  }

  emitWatermarkStatus(idle: boolean): void {
    this.out.emitWatermarkStatus(idle);
  }
}

/** A source head's output: a record with the timestamp its reader knows, if any. */
export interface TimestampingOutput extends Collector<unknown> {
  collect(record: unknown, timestamp?: number): void;
}

/**
 * The head of a source chain with a WatermarkStrategy for one split (or the whole subtask):
 * each record gets its timestamp into the chain's slot and goes on. Two shapes, so the common
 * one stays a straight line: with the built-in generators no watermark can come from a
 * record, so there is nothing to hold.
 */
export function timestampingSourceHead(
  split: SplitWatermarks<unknown>,
  hold: AfterRecordWatermarks,
  slot: RecordTimestamp,
  next: Collector<unknown>,
  counters: { recordsIn: number },
): TimestampingOutput {
  const assigner = split.assigner;
  if (split.maxOnly && assigner !== undefined)
    // the common shape (an assigner, a built-in generator) with SplitWatermarks.onRecord
    // written out: the assigner is the only call a record makes before the chain
    return {
      collect: (r, timestamp) => {
        counters.recordsIn++;
        const ts = assigner(r, timestamp);
        if (typeof ts !== 'number' || ts - ts !== 0) split.invalid(ts, r);
        if (ts > split.maxTimestamp) split.maxTimestamp = ts;
        slot.value = ts;
        next.collect(r);
      },
    };
  if (!split.emitsOnEvent)
    return {
      collect: (r, timestamp) => {
        counters.recordsIn++;
        slot.value = split.onRecord(r, timestamp);
        next.collect(r);
      },
    };
  return {
    collect: (r, timestamp) => {
      counters.recordsIn++;
      hold.begin();
      slot.value = split.onRecord(r, timestamp);
      next.collect(r);
      hold.end();
    },
  };
}

/**
 * What a source task with a WatermarkStrategy hands its reader (Flink's SourceOperator with
 * its WatermarkOutputMultiplexer): records of a reader that does not name splits go through
 * one generator for the subtask; a split reader (SplitSourceReader) asks for an output per
 * split, and each split gets a generator of its own, combined by minimum with idle and
 * finished splits left out, so a slow split holds the subtask's watermark back and an idle
 * one does not. The subtask's generator stops counting once per-split outputs are used.
 */
export function timestampingSourceOutput(
  tw: TimestampsAndWatermarks<unknown>,
  hold: AfterRecordWatermarks,
  slot: RecordTimestamp,
  next: Collector<unknown>,
  counters: { recordsIn: number },
): TimestampingOutput & {
  createOutputForSplit(splitId: string): TimestampingOutput;
  releaseOutputForSplit(splitId: string): void;
} {
  let subtask: SplitWatermarks<unknown> | undefined = tw.addSplit('subtask');
  // the subtask's head is the output itself, so a record costs no call more than the head
  const head = timestampingSourceHead(subtask, hold, slot, next, counters);
  const recordsBefore = counters.recordsIn;
  const splits = new Map<string, SplitWatermarks<unknown>>();
  return Object.assign(head, {
    createOutputForSplit: (splitId: string): TimestampingOutput => {
      const split = splits.get(splitId) ?? tw.addSplit(splitId);
      splits.set(splitId, split);
      // the subtask's own generator saw nothing: it must not hold the splits' minimum back
      if (subtask !== undefined && counters.recordsIn === recordsBefore) {
        tw.removeSplit(subtask);
        subtask = undefined;
      }
      return timestampingSourceHead(split, hold, slot, next, counters);
    },
    releaseOutputForSplit: (splitId: string): void => {
      const split = splits.get(splitId);
      if (split === undefined) return;
      splits.delete(splitId);
      tw.removeSplit(split);
    },
  });
}

const WATERMARK_STATE = new ListStateDescriptor<[number, number, string]>('weir.watermark');

/**
 * The operator's watermark kept with its state: every subtask writes
 * `[subtaskIndex, parallelism, watermark]` into union list state; on restore a subtask takes
 * its own entry when the parallelism is unchanged, else the minimum over the old subtasks.
 * Watermarks are strings so ±Infinity survive the JSON of operator state.
 */
export function keepWatermark(
  operatorState: OperatorStateBackend,
  info: SubtaskInfo,
  current: () => number,
  restore: (watermark: number) => void,
): (checkpointId: number) => void {
  const state = operatorState.getUnionListState(WATERMARK_STATE);
  const entries = [...state.get()];
  if (info.restoredCheckpointId !== undefined && entries.length > 0) {
    const own = entries.find((e) => e[0] === info.subtaskIndex && e[1] === info.parallelism);
    const restored = own ? Number(own[2]) : Math.min(...entries.map((e) => Number(e[2])));
    if (!Number.isNaN(restored)) restore(restored);
  }
  state.clear();
  return () => state.update([[info.subtaskIndex, info.parallelism, String(current())]]);
}

/** `assignTimestampsAndWatermarks`: one generator for the subtask, periodic emission from the task's mailbox. */
export function timestampsAndWatermarksOperator(
  node: StreamNode,
  runtime: OperatorRuntime,
  output: Collector<unknown>,
): StreamOperator {
  const strategy = node.transformation.watermarkStrategy;
  if (!strategy) throw new Error(`Operator '${node.name}' has no WatermarkStrategy`);
  const pts = runtime.processingTimeService;
  const sink = new AfterRecordWatermarks({
    emitWatermark: (t) => runtime.emitWatermark(t),
    emitWatermarkStatus: (idle) => runtime.emitWatermarkStatus(idle),
  });
  const tw = new TimestampsAndWatermarks<unknown>(
    strategy,
    node.name,
    () => pts.getCurrentProcessingTime(),
    sink,
    runtime.autoWatermarkIntervalMs,
  );
  const split: SplitWatermarks<unknown> = tw.addSplit('subtask');
  const slot = runtime.timestamp;
  let timer: { cancel(): void } | undefined;
  const tick = (now: number): void => {
    timer = pts.registerTimer(tw.onProcessingTime(now), tick);
  };
  return {
    name: node.name,
    collect: split.emitsOnEvent
      ? (r: unknown) => {
          const prev = slot.value;
          sink.begin();
          slot.value = split.onRecord(r, prev);
          output.collect(r);
          slot.value = prev;
          sink.end();
        }
      : (r: unknown) => {
          const prev = slot.value;
          slot.value = split.onRecord(r, prev);
          output.collect(r);
          slot.value = prev;
        },
    open() {
      if (strategy.emitsWatermarks)
        timer = pts.registerTimer(tw.onProcessingTime(pts.getCurrentProcessingTime()), tick);
    },
    // upstream watermarks end here, except the final one of a bounded input (as in Flink)
    processWatermark(t) {
      if (t === Infinity) tw.endInput();
      return false;
    },
    processWatermarkStatus: () => false,
    finish() {
      tw.endInput();
    },
    close() {
      timer?.cancel();
    },
  };
}

/** Base of the keyed event-time operators: rich function lifecycle, watermark kept with state. */
export abstract class KeyedEventTimeOperator implements StreamOperator {
  keyedBackend: KeyedStateBackend;
  private readonly saveWatermark: (checkpointId: number) => void;

  constructor(
    readonly name: string,
    backend: KeyedStateBackend,
    operatorState: OperatorStateBackend,
    info: SubtaskInfo,
    private readonly currentWatermark: () => number,
    restoreWatermark: (w: number) => void,
    private readonly openFn: () => void | Promise<void>,
    private readonly closeFn: () => void | Promise<void>,
  ) {
    this.keyedBackend = backend;
    this.saveWatermark = keepWatermark(operatorState, info, currentWatermark, restoreWatermark);
  }

  abstract collect(record: unknown): void;
  abstract processWatermark(timestamp: number): boolean;

  open(): void | Promise<void> {
    return this.openFn();
  }

  finish(): void {}

  close(): void | Promise<void> {
    return this.closeFn();
  }

  snapshotState(checkpointId: number): void {
    this.saveWatermark(checkpointId);
  }
}

export interface KeyedOperatorParts<B extends KeyedStateBackend = EventTimeKeyedBackend> {
  node: StreamNode;
  info: SubtaskInfo;
  runtime: OperatorRuntime;
  output: Collector<unknown>;
  backend: B;
  keySelector: KeySelector<unknown, unknown>;
  operatorState: OperatorStateBackend;
  open: () => void | Promise<void>;
  close: () => void | Promise<void>;
}

/**
 * A KeyedProcessFunction with `ctx.timestamp()`, side outputs and timers. With an onTimer
 * method its timers live in the backend's event-time state and are checkpointed; without
 * one, a timer could never fire anything, so registering one fails when it fires (naming the
 * function) and the plain backend keeps its incremental checkpoints.
 */
export function keyedProcessOperator(p: KeyedOperatorParts<KeyedStateBackend>): StreamOperator {
  const { node, runtime, backend, keySelector, info } = p;
  let op: KeyedProcessOperator<unknown, unknown, unknown> | undefined;
  const target: Triggerable<undefined> = {
    onEventTime: (t) => op!.onEventTime(t),
    onProcessingTime: (t) => op!.onProcessingTime(t),
  };
  const timers =
    backend instanceof EventTimeKeyedBackend
      ? backend.createTimerService<undefined>(
          VOID_NAMESPACE_SERIALIZER,
          runtime.processingTimeService,
          target,
        )
      : new InternalTimerService<undefined>({
          operatorName: node.name,
          maxParallelism: info.maxParallelism,
          keyGroupRange: computeKeyGroupRangeForOperatorIndex(
            info.maxParallelism,
            info.parallelism,
            info.subtaskIndex,
          ),
          namespaceSerializer: VOID_NAMESPACE_SERIALIZER,
          keyContext: backend,
          processingTimeService: runtime.processingTimeService,
          target,
        });
  op = new KeyedProcessOperator(
    node.name,
    node.transformation.fn as KeyedProcessFunctionLike<unknown, unknown, unknown>,
    backend,
    timers,
    timestampedOutput(p.output, runtime),
  );
  const slot = runtime.timestamp;
  const process = op;
  return new (class extends KeyedEventTimeOperator {
    collect(r: unknown): void {
      process.processElement(r, slot.value, keySelector(r));
    }
    processWatermark(t: number): boolean {
      timers.advanceWatermark(t);
      return true;
    }
    override close(): void | Promise<void> {
      timers.close();
      return super.close();
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

/** Keyed windows (`keyed.window(...)`, `countWindow`, `windowAll`). */
export function windowOperator(p: KeyedOperatorParts): StreamOperator {
  const { node, runtime, backend, keySelector } = p;
  const spec = node.transformation.window;
  if (!spec) throw new Error(`Window operator '${node.name}' has no window settings`);
  let op: WindowOperator<unknown, unknown, unknown, unknown, unknown, never> | undefined;
  const timers = backend.createTimerService(
    spec.assigner.getWindowSerializer(),
    runtime.processingTimeService,
    {
      onEventTime: (t) => op!.onEventTime(t as never),
      onProcessingTime: (t) => op!.onProcessingTime(t as never),
    },
  );
  op = new WindowOperator({
    operatorName: node.name,
    assigner: spec.assigner as never,
    ...(spec.trigger ? { trigger: spec.trigger as never } : {}),
    ...(spec.evictor ? { evictor: spec.evictor as never } : {}),
    allowedLateness: spec.allowedLateness,
    ...(spec.lateDataOutputTag ? { lateDataOutputTag: spec.lateDataOutputTag } : {}),
    ...(spec.reduce ? { reduce: spec.reduce } : {}),
    ...(spec.aggregate ? { aggregate: spec.aggregate } : {}),
    ...(spec.process ? { process: spec.process as never } : {}),
    state: backend.namespacedState(),
    timers: timers as never,
    output: timestampedOutput(p.output, runtime),
  });
  const slot = runtime.timestamp;
  const window = op;
  return new (class extends KeyedEventTimeOperator {
    collect(r: unknown): void {
      window.processElement(r, slot.value, keySelector(r));
    }
    processWatermark(t: number): boolean {
      timers.advanceWatermark(t);
      return true;
    }
    numLateRecordsDropped(): number {
      return window.numLateRecordsDropped;
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
