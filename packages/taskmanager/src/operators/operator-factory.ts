import {
  AbstractRichFunction,
  KeyedProcessFunction,
  ListStateDescriptor,
  ProcessFunction,
  ReducingStateDescriptor,
  type Collector,
  type KeySelector,
  type ReduceFunction,
} from '@weir/api';
import type { StreamNode } from '@weir/api/internal';
import { HeapKeyedStateBackend } from '../state/heap-keyed-state-backend.js';
import type { KeyedStateBackend } from '../state/keyed-state-backend.js';
import { StreamingRuntimeContext, type SubtaskInfo } from '../task/runtime-context.js';
import { OperatorStateBackend, type OperatorListSnapshot } from '../state/operator-state-backend.js';
import type { StreamOperator } from './stream-operator.js';
import { computeKeyGroupRangeForOperatorIndex } from '@weir/core/runtime';
import { createEventTimeState, type EventTimeKeyedBackend } from '../eventtime/event-time-state.js';
import {
  keyedProcessOperator,
  standaloneRuntime,
  timestampsAndWatermarksOperator,
  windowOperator,
  type OperatorRuntime,
} from './event-time-operators.js';

import {
  broadcastProcessOperator,
  coProcessOperator,
  intervalJoinOperator,
  keyedBroadcastProcessOperator,
  keyedCoProcessOperator,
} from './two-input-operators.js';

export type { OperatorRuntime } from './event-time-operators.js';

/**
 * Keyed operators with timers or namespaced state: their backend carries event-time state
 * (windows, keyed two-input operators, and process functions with onTimer). Others keep the plain backend, with its
 * incremental checkpoints.
 */
function hasEventTimeState(node: StreamNode): boolean {
  if (
    node.kind === 'window' ||
    node.kind === 'keyedCoProcess' ||
    node.kind === 'intervalJoin' ||
    node.kind === 'keyedBroadcastProcess'
  )
    return true;
  return (
    node.kind === 'keyedProcess' &&
    typeof (node.transformation.fn as { onTimer?: unknown })?.onTimer === 'function'
  );
}

type Fn = (...args: unknown[]) => unknown;

/** A lambda or a method of a rich function, as a plain function. */
function callable(fn: unknown, method: string): Fn {
  if (typeof fn === 'function') return fn as Fn;
  const m = (fn as Record<string, unknown> | undefined)?.[method];
  if (typeof m === 'function') return (m as Fn).bind(fn);
  throw new Error(`Expected a function or an object with ${method}()`);
}

abstract class BaseOperator implements StreamOperator {
  constructor(
    readonly name: string,
    protected readonly fn: unknown,
    protected readonly ctx: StreamingRuntimeContext,
  ) {}

  async open(): Promise<void> {
    if (this.fn instanceof AbstractRichFunction) {
      this.fn.setRuntimeContext(this.ctx);
      await this.fn.open();
    }
  }

  finish(): void {}

  async close(): Promise<void> {
    if (this.fn instanceof AbstractRichFunction) await this.fn.close();
  }

  abstract collect(record: unknown): void;
}

class KeyContext {
  constructor(
    readonly backend: KeyedStateBackend,
    readonly keySelector: KeySelector<unknown, unknown>,
  ) {}
  setKeyOf(record: unknown): void {
    this.backend.setCurrentKey(this.keySelector(record));
  }
}

/**
 * Builds the operator for one stream node. Keyed operators get a state backend and set the
 * current key from the record before calling the user function. `keyedBackend` makes the
 * backend of a keyed operator (heap by default).
 */
export function createOperator(
  node: StreamNode,
  info: SubtaskInfo,
  output: Collector<unknown>,
  restoredOperatorState?: OperatorListSnapshot,
  keyedBackend: () => KeyedStateBackend = () => new HeapKeyedStateBackend(),
  runtime: OperatorRuntime = standaloneRuntime(),
): StreamOperator {
  let backend = node.keySelector ? keyedBackend() : undefined;
  if (backend && hasEventTimeState(node))
    backend = createEventTimeState(
      backend,
      node.name,
      info.maxParallelism,
      computeKeyGroupRangeForOperatorIndex(info.maxParallelism, info.parallelism, info.subtaskIndex),
    );
  const keyed = backend ? new KeyContext(backend, node.keySelector!) : undefined;
  const operatorState = new OperatorStateBackend(restoredOperatorState);
  const op = buildOperator(
    node,
    info,
    output,
    keyed,
    new StreamingRuntimeContext(info, keyed?.backend, operatorState),
    operatorState,
    runtime,
  );
  if (keyed) {
    op.keyedBackend = keyed.backend;
    const backend = keyed.backend;
    if (backend.prefetch) op.prefetch = (records) => backend.prefetch!(records, keyed.keySelector);
  }
  op.operatorState = operatorState;
  return op;
}

/** Where a sink keeps what its writer returns at each checkpoint (pending transactions). */
const SINK_STATE = new ListStateDescriptor<unknown>('weir.sink-state');

function buildOperator(
  node: StreamNode,
  info: SubtaskInfo,
  output: Collector<unknown>,
  keyed: KeyContext | undefined,
  ctx: StreamingRuntimeContext,
  operatorState: OperatorStateBackend,
  runtime: OperatorRuntime,
): StreamOperator {
  const t = node.transformation;
  const fn = t.fn;
  const name = node.name;
  switch (node.kind) {
    case 'map': {
      const f = callable(fn, 'map');
      return new (class extends BaseOperator {
        collect(r: unknown): void {
          keyed?.setKeyOf(r);
          output.collect(f(r));
        }
      })(name, fn, ctx);
    }
    case 'flatMap': {
      const f = callable(fn, 'flatMap');
      return new (class extends BaseOperator {
        collect(r: unknown): void {
          keyed?.setKeyOf(r);
          f(r, output);
        }
      })(name, fn, ctx);
    }
    case 'filter': {
      const f = callable(fn, 'filter');
      return new (class extends BaseOperator {
        collect(r: unknown): void {
          keyed?.setKeyOf(r);
          if (f(r)) output.collect(r);
        }
      })(name, fn, ctx);
    }
    case 'process':
    case 'keyedProcess': {
      if (
        !(fn instanceof ProcessFunction || fn instanceof KeyedProcessFunction) &&
        typeof (fn as { processElement?: unknown })?.processElement !== 'function'
      ) {
        throw new Error(`Operator '${name}' needs a ProcessFunction or KeyedProcessFunction`);
      }
      if (keyed) {
        const rich = new (class extends BaseOperator {
          collect(): void {}
        })(name, fn, ctx);
        return keyedProcessOperator({
          node,
          info,
          runtime,
          output,
          backend: keyed.backend,
          keySelector: keyed.keySelector,
          operatorState,
          open: () => rich.open(),
          close: () => rich.close(),
        });
      }
      const f = callable(fn, 'processElement');
      const slot = runtime.timestamp;
      const pctx: ProcessFunction.Context = {
        currentProcessingTime: () => Date.now(),
        timestamp: () => slot.value,
        output: (tag, value) => {
          const side = runtime.sideOutput(tag.id);
          side?.collect(value);
        },
      };
      return new (class extends BaseOperator {
        collect(r: unknown): void {
          f(r, pctx, output);
        }
      })(name, fn, ctx);
    }
    case 'window': {
      if (!keyed)
        throw new Error(`Window operator '${name}' needs a keyed stream: keyBy(...) before window(...)`);
      const rich = new (class extends BaseOperator {
        collect(): void {}
      })(name, t.window?.process, ctx);
      return windowOperator({
        node,
        info,
        runtime,
        output,
        backend: keyed.backend as EventTimeKeyedBackend,
        keySelector: keyed.keySelector,
        operatorState,
        open: () => rich.open(),
        close: () => rich.close(),
      });
    }
    case 'coProcess':
    case 'broadcastProcess': {
      const rich = new (class extends BaseOperator {
        collect(): void {}
      })(name, fn, ctx);
      const parts = { node, runtime, output, open: () => rich.open(), close: () => rich.close() };
      return node.kind === 'coProcess'
        ? coProcessOperator(parts)
        : broadcastProcessOperator({ ...parts, info, operatorState });
    }
    case 'keyedCoProcess':
    case 'intervalJoin':
    case 'keyedBroadcastProcess': {
      if (!keyed) throw new Error(`Operator '${name}' needs keyed inputs`);
      const rich = new (class extends BaseOperator {
        collect(): void {}
      })(name, fn, ctx);
      const parts = {
        node,
        info,
        runtime,
        output,
        backend: keyed.backend as EventTimeKeyedBackend,
        keySelector: keyed.keySelector,
        operatorState,
        open: () => rich.open(),
        close: () => rich.close(),
      };
      if (node.kind === 'keyedBroadcastProcess') return keyedBroadcastProcessOperator(parts);
      const key2 = t.keySelector2;
      if (!key2) throw new Error(`Operator '${name}' has no key selector for its second input`);
      return node.kind === 'intervalJoin'
        ? intervalJoinOperator(parts, key2)
        : keyedCoProcessOperator(parts, key2);
    }
    case 'timestampsAndWatermarks':
      return timestampsAndWatermarksOperator(node, runtime, output);
    case 'reduce': {
      if (!keyed) throw new Error('reduce() needs a keyed stream');
      const state = keyed.backend.getReducingState(
        new ReducingStateDescriptor<unknown>('reduce', fn as ReduceFunction<unknown>),
      );
      return new (class extends BaseOperator {
        collect(r: unknown): void {
          keyed.setKeyOf(r);
          state.add(r);
          output.collect(state.get());
        }
      })(name, fn, ctx);
    }
    case 'sink': {
      const sink = t.sink;
      if (!sink) throw new Error(`Sink operator '${name}' has no sink`);
      // union list state: after a rescale, every subtask sees every transaction and takes its share
      const state = operatorState.getUnionListState(SINK_STATE);
      const writer = sink.createWriter(
        info,
        info.restoredCheckpointId !== undefined ? [...state.get()] : undefined,
      );
      state.clear();
      return {
        name,
        collect: (r: unknown) => writer.write(r),
        ...(writer.isAvailable ? { isAvailable: () => writer.isAvailable!() } : {}),
        open: () => writer.open?.(),
        finish: async () => {
          await writer.flush?.(true);
        },
        close: async () => {
          await writer.close?.();
        },
        snapshotState: (checkpointId: number) => {
          if (writer.snapshotState) state.update(writer.snapshotState(checkpointId));
        },
        snapshotDurable: (checkpointId: number) => writer.preCommitted?.(checkpointId),
        notifyCheckpointComplete: (checkpointId: number) => writer.notifyCheckpointComplete?.(checkpointId),
        notifyCheckpointAborted: (checkpointId: number) => writer.notifyCheckpointAborted?.(checkpointId),
      };
    }
    case 'source':
      throw new Error('A source is driven by its task, not created as a chained operator');
  }
}
