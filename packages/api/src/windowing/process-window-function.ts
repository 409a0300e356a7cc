import { AbstractRichFunction, type Collector } from '../functions.js';
import type { KeyedStateStore } from '../eventtime/keyed-state-store.js';
import type { OutputTag } from '../eventtime/output-tag.js';
import type { Window } from './windows.js';

/**
 * Evaluates a window when it fires (Flink's ProcessWindowFunction): all its elements, or the
 * one pre-aggregated result when given with reduce()/aggregate(). Records it emits carry the
 * window's maxTimestamp() as their timestamp.
 */
export abstract class ProcessWindowFunction<IN, OUT, KEY, W extends Window> extends AbstractRichFunction {
  abstract process(
    key: KEY,
    context: ProcessWindowFunction.Context<W>,
    elements: Iterable<IN>,
    out: Collector<OUT>,
  ): void;

  /** Called when the window is discarded: clear what was kept in `context.windowState()`. */
  clear(_context: ProcessWindowFunction.Context<W>): void {}
}

export namespace ProcessWindowFunction {
  export interface Context<W extends Window> {
    window(): W;
    currentProcessingTime(): number;
    currentWatermark(): number;
    /** state of this key and window; lives until the window is discarded (after its allowed lateness) */
    windowState(): KeyedStateStore;
    /** state of this key across all its windows */
    globalState(): KeyedStateStore;
    output<X>(outputTag: OutputTag<X>, value: X): void;
  }
}
