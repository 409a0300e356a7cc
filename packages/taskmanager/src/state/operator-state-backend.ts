import type { ListState, ListStateDescriptor, OperatorStateStore } from '@weir/api';

export type OperatorListMode = 'split' | 'union';

/** One operator's list states in one subtask, snapshotted inline in the checkpoint metadata. */
export interface OperatorListSnapshot {
  [name: string]: { mode: OperatorListMode; items: unknown[] };
}

export class OperatorStateBackend implements OperatorStateStore {
  private readonly lists = new Map<string, { mode: OperatorListMode; items: unknown[] }>();

  constructor(restored?: OperatorListSnapshot) {
    for (const [name, l] of Object.entries(restored ?? {}))
      this.lists.set(name, { mode: l.mode, items: [...l.items] });
  }

  private list<T>(desc: ListStateDescriptor<T>, mode: OperatorListMode): ListState<T> {
    let l = this.lists.get(desc.name);
    if (!l) this.lists.set(desc.name, (l = { mode, items: [] }));
    else if (l.mode !== mode)
      throw new Error(
        `Operator state '${desc.name}' is ${l.mode === 'union' ? 'union ' : ''}list state, not ${mode === 'union' ? 'union ' : ''}list state`,
      );
    const entry = l;
    return {
      get: () => entry.items as T[],
      add: (v: T) => void entry.items.push(v),
      addAll: (vs: T[]) => void entry.items.push(...vs),
      update: (vs: T[]) => void (entry.items = [...vs]),
      clear: () => void (entry.items = []),
    };
  }

  getListState<T>(desc: ListStateDescriptor<T>): ListState<T> {
    return this.list(desc, 'split');
  }

  getUnionListState<T>(desc: ListStateDescriptor<T>): ListState<T> {
    return this.list(desc, 'union');
  }

  /** A deep copy taken in the synchronous part of a checkpoint; undefined when empty. */
  snapshot(): OperatorListSnapshot | undefined {
    if (this.lists.size === 0) return undefined;
    return JSON.parse(JSON.stringify(Object.fromEntries(this.lists))) as OperatorListSnapshot;
  }
}
