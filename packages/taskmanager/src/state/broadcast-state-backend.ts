import { ListStateDescriptor, type BroadcastState, type MapStateDescriptor } from '@weir/api';
import type { SubtaskInfo } from '../task/runtime-context.js';
import type { OperatorStateBackend } from './operator-state-backend.js';

/** One broadcast state entry as checkpointed: [subtaskIndex, parallelism, stateName, key, value]. */
type Entry = [number, number, string, unknown, unknown];

const BROADCAST_STATE = new ListStateDescriptor<Entry>('weir.broadcast-state');

/**
 * The broadcast states of one operator subtask (Flink's broadcast operator state): maps the
 * broadcast side writes and every subtask holds the same copy of. Each subtask snapshots its
 * copy into union list state; on restore a subtask takes its own copy when the parallelism
 * is unchanged, else subtask 0's, so a rescale hands every new subtask the same state.
 * Keys are compared as JavaScript Map keys (strings and numbers by value).
 */
export class BroadcastStateBackend {
  private readonly maps = new Map<string, Map<unknown, unknown>>();
  private readonly views = new Map<string, BroadcastState<unknown, unknown>>();
  private readonly readOnlyViews = new Map<string, BroadcastState<unknown, unknown>>();
  private readonly state;

  constructor(
    private readonly operatorName: string,
    names: readonly string[],
    operatorState: OperatorStateBackend,
    private readonly info: SubtaskInfo,
  ) {
    for (const n of names) this.maps.set(n, new Map());
    this.state = operatorState.getUnionListState(BROADCAST_STATE);
    const entries = [...this.state.get()];
    if (info.restoredCheckpointId !== undefined && entries.length > 0) {
      const own = entries.some((e) => e[0] === info.subtaskIndex && e[1] === info.parallelism);
      const from = own ? info.subtaskIndex : Math.min(...entries.map((e) => e[0]));
      for (const [subtask, , name, key, value] of entries) {
        if (subtask !== from) continue;
        // a state the job no longer declares is dropped, as Flink drops unregistered broadcast state
        this.maps.get(name)?.set(key, value);
      }
    }
    this.state.clear();
  }

  /** Writes every state of this subtask into the operator state (synchronous part of a checkpoint). */
  snapshot(): void {
    const out: Entry[] = [];
    const { subtaskIndex, parallelism } = this.info;
    for (const [name, m] of this.maps)
      for (const [k, v] of m) out.push([subtaskIndex, parallelism, name, k, v]);
    this.state.update(out);
  }

  get<K, V>(descriptor: MapStateDescriptor<K, V>): BroadcastState<K, V> {
    const name = descriptor?.name;
    let view = this.views.get(name);
    if (view) return view as BroadcastState<K, V>;
    const m = this.maps.get(name);
    if (!m)
      throw new Error(
        `'${this.operatorName}' has no broadcast state '${String(name)}'; declare it in broadcast(...descriptors) (declared: ${[...this.maps.keys()].map((n) => `'${n}'`).join(', ')})`,
      );
    view = {
      get: (k) => m.get(k),
      put: (k, v) => void m.set(k, v),
      putAll: (es) => {
        for (const [k, v] of es) m.set(k, v);
      },
      remove: (k) => void m.delete(k),
      contains: (k) => m.has(k),
      entries: () => m.entries(),
      keys: () => m.keys(),
      values: () => m.values(),
      isEmpty: () => m.size === 0,
      clear: () => m.clear(),
    };
    this.views.set(name, view);
    return view as BroadcastState<K, V>;
  }

  /** The read-only view the non-broadcast side gets (writes would make subtasks diverge). */
  getReadOnly<K, V>(descriptor: MapStateDescriptor<K, V>): BroadcastState<K, V> {
    const cached = this.readOnlyViews.get(descriptor?.name);
    if (cached) return cached as BroadcastState<K, V>;
    const s = this.get(descriptor);
    const refuse = (): never => {
      throw new Error(
        `'${this.operatorName}': broadcast state '${descriptor.name}' is read-only in processElement; only processBroadcastElement may change it, so every subtask keeps the same copy`,
      );
    };
    const view = { ...s, put: refuse, putAll: refuse, remove: refuse, clear: refuse };
    this.readOnlyViews.set(descriptor.name, view as BroadcastState<unknown, unknown>);
    return view;
  }
}
