import type { MergingWindowAssigner, Window, WindowSerializer } from './api.js';
import type { NamespaceKey, NamespacedValueState } from './namespaced-state.js';

/** Called when windows merge: state of `mergedStateWindows` must be merged into `stateWindowResult`. */
export type MergeFunction<W> = (
  mergeResult: W,
  mergedWindows: W[],
  stateWindowResult: W,
  mergedStateWindows: W[],
) => void;

/**
 * The session windows of one key and, for each, the window its contents are stored under
 * (Flink's MergingWindowSet). When windows merge, the merged window keeps the state window
 * of one of its parts, so only the other parts' state moves: contents are never copied
 * into a new namespace. Kept in keyed state as [windowKey, stateWindowKey] pairs.
 */
export class MergingWindowSet<W extends Window> {
  /** window key -> [window, state window] */
  private readonly mapping = new Map<NamespaceKey, [W, W]>();
  private changed = false;

  constructor(
    private readonly assigner: MergingWindowAssigner<unknown, W>,
    private readonly serializer: WindowSerializer<W>,
    private readonly state: NamespacedValueState<[NamespaceKey, NamespaceKey][]>,
    private readonly stateNamespace: NamespaceKey,
  ) {
    const stored = state.get(stateNamespace);
    if (stored) {
      for (const [w, s] of stored) this.mapping.set(w, [serializer.fromKey(w), serializer.fromKey(s)]);
    }
  }

  get size(): number {
    return this.mapping.size;
  }

  windows(): W[] {
    return [...this.mapping.values()].map(([w]) => w);
  }

  /** Writes the mapping back to keyed state if it changed. */
  persist(): void {
    if (!this.changed) return;
    this.changed = false;
    if (this.mapping.size === 0) {
      this.state.clear(this.stateNamespace);
      return;
    }
    const entries: [NamespaceKey, NamespaceKey][] = [];
    for (const [k, [, s]] of this.mapping) entries.push([k, this.serializer.toKey(s)]);
    this.state.update(this.stateNamespace, entries);
  }

  /** The window the contents of `window` are stored under, or undefined if it is not (any longer) in the set. */
  getStateWindow(window: W): W | undefined {
    return this.mapping.get(this.serializer.toKey(window))?.[1];
  }

  /** Removes a window that fired for the last time or was late. */
  retireWindow(window: W): void {
    const k = this.serializer.toKey(window);
    if (!this.mapping.delete(k)) {
      throw new Error(`Window ${String(window)} is not in the merging window set; cannot retire it`);
    }
    this.changed = true;
  }

  /**
   * Adds a new window and merges it with the windows it overlaps. Returns the window the
   * new one ended up in (itself, or the merge result); `mergeFunction` moves state.
   */
  addWindow(newWindow: W, mergeFunction: MergeFunction<W>): W {
    const s = this.serializer;
    const candidates: W[] = [];
    for (const [w] of this.mapping.values()) candidates.push(w);
    candidates.push(newWindow);
    const newKey = s.toKey(newWindow);

    const merges: [W, W[]][] = [];
    this.assigner.mergeWindows(candidates, (toBeMerged, mergeResult) => {
      if (toBeMerged.length > 1) merges.push([mergeResult, toBeMerged]);
    });

    let resultWindow = newWindow;
    let mergedNewWindow = false;
    for (const [mergeResult, group] of merges) {
      const mergedWindows = [...group];
      const at = mergedWindows.findIndex((w) => s.toKey(w) === newKey);
      if (at >= 0) {
        // the new window never had state of its own: it is merged by being left out
        mergedWindows.splice(at, 1);
        mergedNewWindow = true;
        resultWindow = mergeResult;
      }
      // the merged window keeps the state window of one of the existing parts
      const stateWindowResult = this.mapping.get(s.toKey(mergedWindows[0]!))![1];
      const stateWindowResultKey = s.toKey(stateWindowResult);
      const mergedStateWindows: W[] = [];
      for (const w of mergedWindows) {
        const k = s.toKey(w);
        const entry = this.mapping.get(k);
        if (entry) {
          this.mapping.delete(k);
          if (s.toKey(entry[1]) !== stateWindowResultKey) mergedStateWindows.push(entry[1]);
        }
      }
      const resultKey = s.toKey(mergeResult);
      this.mapping.set(resultKey, [mergeResult, stateWindowResult]);
      this.changed = true;
      // one existing window absorbing the new one without growing: nothing to merge
      if (!(mergedWindows.length === 1 && s.toKey(mergedWindows[0]!) === resultKey)) {
        mergeFunction(mergeResult, mergedWindows, stateWindowResult, mergedStateWindows);
      }
    }

    if (merges.length === 0 || (s.toKey(resultWindow) === newKey && !mergedNewWindow)) {
      this.mapping.set(newKey, [resultWindow, resultWindow]);
      this.changed = true;
    }
    return resultWindow;
  }
}
