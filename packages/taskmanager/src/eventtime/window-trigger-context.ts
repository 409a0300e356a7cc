import type { OnMergeContext, State, StateDescriptor, Window, WindowSerializer } from './api.js';
import type { NamespaceKey } from './namespaced-state.js';
import type { NamespacedStateStore } from './namespaced-state-store.js';

/** The timer service as the window operator uses it: timers namespaced by window. */
export interface WindowTimerService<W> {
  currentWatermark(): number;
  currentProcessingTime(): number;
  /** `windowKey` is the window's serializer key, passed so it is not computed again */
  registerEventTimeTimer(window: W, time: number, windowKey?: NamespaceKey): void;
  registerProcessingTimeTimer(window: W, time: number, windowKey?: NamespaceKey): void;
  deleteEventTimeTimer(window: W, time: number, windowKey?: NamespaceKey): void;
  deleteProcessingTimeTimer(window: W, time: number, windowKey?: NamespaceKey): void;
}

/**
 * The context triggers get (one object, re-pointed at the window being handled): timers
 * of the current key in that window's namespace, and partitioned state per key and window.
 */
export class WindowTriggerContext<IN, W extends Window> implements OnMergeContext {
  private window: W | undefined;
  private windowKey: NamespaceKey = 0;
  private mergedWindows: W[] = [];

  constructor(
    private readonly timers: WindowTimerService<W>,
    private readonly store: NamespacedStateStore,
    private readonly serializer: WindowSerializer<W>,
  ) {}

  declare readonly __in?: IN;

  at(window: W, windowKey: NamespaceKey = this.serializer.toKey(window)): this {
    this.window = window;
    this.windowKey = windowKey;
    this.store.namespace = windowKey;
    return this;
  }

  merging(window: W, mergedWindows: W[]): this {
    this.mergedWindows = mergedWindows;
    return this.at(window);
  }

  getCurrentProcessingTime(): number {
    return this.timers.currentProcessingTime();
  }

  getCurrentWatermark(): number {
    return this.timers.currentWatermark();
  }

  registerEventTimeTimer(time: number): void {
    this.timers.registerEventTimeTimer(this.window!, time, this.windowKey);
  }

  registerProcessingTimeTimer(time: number): void {
    this.timers.registerProcessingTimeTimer(this.window!, time, this.windowKey);
  }

  deleteEventTimeTimer(time: number): void {
    this.timers.deleteEventTimeTimer(this.window!, time, this.windowKey);
  }

  deleteProcessingTimeTimer(time: number): void {
    this.timers.deleteProcessingTimeTimer(this.window!, time, this.windowKey);
  }

  getPartitionedState<S extends State>(descriptor: StateDescriptor<S>): S {
    this.store.namespace = this.windowKey;
    return this.store.getPartitionedState(descriptor);
  }

  mergePartitionedState<S extends State>(descriptor: StateDescriptor<S>): void {
    this.store.mergeNamespaces(
      descriptor,
      this.windowKey,
      this.mergedWindows.map((w) => this.serializer.toKey(w)),
    );
  }
}
