import type {
  AggregatingState,
  AggregatingStateDescriptor,
  ListState,
  ListStateDescriptor,
  MapState,
  MapStateDescriptor,
  ReducingState,
  ReducingStateDescriptor,
  StateDescriptor,
  State,
  ValueState,
  ValueStateDescriptor,
} from '@weir/api';
import { SlabArena, normalizeKey } from '@weir/core/runtime';
import { aggregatingState, reducingState, type AccumulatorCell } from './appending-state.js';
import { CopyOnWriteTable } from './copy-on-write-table.js';
import {
  DEFAULT_SLICING,
  collectBatches,
  heapSnapshotBatches,
  type SnapshotSlicing,
  type TableView,
} from './heap-snapshot.js';
import { DeltaOp } from './incremental-snapshot.js';
import { RestoredEventTimeRows, isEventTimeKind } from './restored-event-time-rows.js';
import type {
  KeyedStateBackend,
  KeyedStateBatches,
  KeyedStateSnapshotMaterializer,
} from './keyed-state-backend.js';

export type { KeyedStateSnapshot } from './keyed-state-backend.js';

type StateTable<V> = CopyOnWriteTable<V>;

/**
 * Keyed state in the task's memory: one table per state name, keyed by the normalized
 * current key. The operator sets the key before each record; state objects read it here.
 * Snapshots are copy-on-write (see CopyOnWriteTable): the synchronous part opens a view per
 * table, serialization runs in slices off the record path (see heap-snapshot.ts).
 */
export class HeapKeyedStateBackend implements KeyedStateBackend {
  readonly type = 'heap' as const;
  private currentKey: unknown;
  private currentMapKey: string | number = '';
  private readonly tables = new Map<string, StateTable<unknown>>();
  private readonly states = new Map<string, State>();
  /** how snapshots slice their serialization (tests make every entry a slice) */
  snapshotSlicing: SnapshotSlicing = DEFAULT_SLICING;
  /** namespaced state and timers of a RocksDB checkpoint, until eventTimeStores takes them */
  readonly restoredEventTime = new RestoredEventTimeRows();

  async open(): Promise<void> {}

  async dispose(): Promise<void> {
    for (const t of this.tables.values()) t.clear();
    this.tables.clear();
    this.states.clear();
  }

  setCurrentKey(key: unknown): void {
    this.currentKey = key;
    this.currentMapKey = normalizeKey(key);
  }

  getCurrentKey(): unknown {
    return this.currentKey;
  }

  /** @internal the normalized key the state objects index by */
  get mapKey(): string | number {
    return this.currentMapKey;
  }

  private table<V>(desc: StateDescriptor<State>): StateTable<V> {
    const existing = this.tables.get(desc.name);
    if (existing) {
      if (existing.kind !== desc.kind) {
        throw new Error(
          `State '${desc.name}' is already registered as ${existing.kind} state, not ${desc.kind}`,
        );
      }
      return existing as StateTable<V>;
    }
    const table = new CopyOnWriteTable<V>(desc.name, desc.kind);
    this.tables.set(desc.name, table as StateTable<unknown>);
    return table;
  }

  private cached<S extends State>(desc: StateDescriptor<S>, make: () => S): S {
    const s = this.states.get(desc.name);
    if (s) {
      this.table(desc); // kind check
      return s as S;
    }
    const created = make();
    this.states.set(desc.name, created);
    return created;
  }

  getState<T>(desc: ValueStateDescriptor<T>): ValueState<T> {
    return this.cached(desc, () => {
      const table = this.table<T>(desc);
      const backend = this;
      const dflt = desc.defaultValue;
      return {
        value: () => {
          const v = table.get(backend.currentMapKey);
          return v === undefined ? dflt : v;
        },
        update: (v: T) => {
          if (v === undefined || v === null) table.delete(backend.currentMapKey);
          else table.set(backend.currentMapKey, v);
        },
        clear: () => void table.delete(backend.currentMapKey),
      };
    });
  }

  getListState<T>(desc: ListStateDescriptor<T>): ListState<T> {
    return this.cached(desc, () => {
      const table = this.table<T[]>(desc);
      const backend = this;
      const list = (): T[] => {
        let l = table.get(backend.currentMapKey);
        if (!l) table.set(backend.currentMapKey, (l = []));
        return l;
      };
      return {
        get: () => table.get(backend.currentMapKey) ?? [],
        add: (v: T) => void list().push(v),
        addAll: (vs: T[]) => void list().push(...vs),
        update: (vs: T[]) => {
          if (vs.length === 0) table.delete(backend.currentMapKey);
          else table.set(backend.currentMapKey, [...vs]);
        },
        clear: () => void table.delete(backend.currentMapKey),
      };
    });
  }

  /** Map state: user keys are normalized like keys (`[1,2]` finds what `[1,2]` put), each entry kept as [user key, value]. */
  getMapState<UK, UV>(desc: MapStateDescriptor<UK, UV>): MapState<UK, UV> {
    return this.cached(desc, () => {
      const table = this.table<Map<string | number, [UK, UV]>>(desc);
      const backend = this;
      const empty = new Map<string | number, [UK, UV]>();
      const get = (): Map<string | number, [UK, UV]> => table.get(backend.currentMapKey) ?? empty;
      const getOrCreate = (): Map<string | number, [UK, UV]> => {
        let m = table.get(backend.currentMapKey);
        if (!m) table.set(backend.currentMapKey, (m = new Map()));
        return m;
      };
      return {
        get: (k: UK) => get().get(normalizeKey(k))?.[1],
        put: (k: UK, v: UV) => void getOrCreate().set(normalizeKey(k), [k, v]),
        putAll: (entries: Iterable<[UK, UV]>) => {
          const m = getOrCreate();
          for (const [k, v] of entries) m.set(normalizeKey(k), [k, v]);
        },
        remove: (k: UK) => {
          const m = table.get(backend.currentMapKey);
          if (!m) return;
          m.delete(normalizeKey(k));
          if (m.size === 0) table.delete(backend.currentMapKey);
        },
        contains: (k: UK) => get().has(normalizeKey(k)),
        entries: () => [...get().values()].map(([k, v]): [UK, UV] => [k, v]),
        keys: () => [...get().values()].map((e) => e[0]),
        values: () => [...get().values()].map((e) => e[1]),
        isEmpty: () => get().size === 0,
        clear: () => void table.delete(backend.currentMapKey),
      };
    });
  }

  /** The current key's accumulator of reducing and aggregating state. */
  private cell<ACC>(desc: StateDescriptor<State>): AccumulatorCell<ACC> {
    const table = this.table<ACC>(desc);
    const backend = this;
    return {
      get: () => table.get(backend.currentMapKey),
      set: (acc: ACC) => void table.set(backend.currentMapKey, acc),
      clear: () => void table.delete(backend.currentMapKey),
    };
  }

  getReducingState<T>(desc: ReducingStateDescriptor<T>): ReducingState<T> {
    return this.cached(desc, () => reducingState(desc, this.cell<T>(desc)));
  }

  getAggregatingState<IN, ACC, OUT>(
    desc: AggregatingStateDescriptor<IN, ACC, OUT>,
  ): AggregatingState<IN, OUT> {
    return this.cached(desc, () => aggregatingState(desc, this.cell<ACC>(desc)));
  }

  /**
   * The synchronous part of a snapshot: O(number of states), a copy-on-write view of each
   * table. The asynchronous part serializes the views in slices while records are processed.
   */
  snapshot(maxParallelism: number): KeyedStateSnapshotMaterializer {
    const kinds: Record<string, string> = {};
    const views: TableView[] = [];
    for (const [name, table] of this.tables) {
      kinds[name] = table.kind;
      views.push({ table, pre: table.openView() });
    }
    const slicing = this.snapshotSlicing;
    const batches = (opts?: { segments?: boolean }): KeyedStateBatches => {
      const arena = new SlabArena();
      return {
        kinds,
        batches: heapSnapshotBatches(
          views,
          maxParallelism,
          opts?.segments === false ? { ...slicing, minSegment: Infinity } : slicing,
          arena,
        ),
        release: () => arena.release(),
      };
    };
    const materialize = (() => collectBatches(batches())) as KeyedStateSnapshotMaterializer;
    materialize.batches = batches;
    materialize.discard = () => {
      for (const { table, pre } of views) table.releaseView(pre);
    };
    return materialize;
  }

  /** Loads entries of a snapshot (one key group's batch) back into the tables. */
  restoreEntries(kinds: Record<string, string>, entries: unknown[]): void {
    for (const e of entries as Array<[string, string | number, unknown]>) {
      const [name, key, value] = e;
      const kind = kinds[name];
      if (!kind) throw new Error(`Restored state '${name}' has no kind in the snapshot`);
      if (isEventTimeKind(kind)) {
        this.restoredEventTime.entry(kind, e);
        continue;
      }
      let t = this.tables.get(name);
      if (!t) this.tables.set(name, (t = new CopyOnWriteTable(name, kind)));
      if (kind !== 'map') {
        t.set(key, value);
        continue;
      }
      // a large map may come in several entries of the same key (RocksDB's streamed snapshots)
      const pairs = value as Array<[unknown, unknown]>;
      const have = t.get(key) as Map<unknown, [unknown, unknown]> | undefined;
      if (have) for (const p of pairs) have.set(normalizeKey(p[0]), p);
      else t.set(key, new Map(pairs.map((p) => [normalizeKey(p[0]), p])));
    }
  }

  /** Applies a delta batch of an incremental checkpoint (written by the RocksDB backend; see DeltaOp). */
  restoreDelta(kinds: Record<string, string>, ops: unknown[]): void {
    for (const op of ops as Array<[number, string, string | number, unknown?, unknown?]>) {
      const [code, name, key] = op;
      const kind = kinds[name];
      if (!kind) throw new Error(`Restored state '${name}' has no kind in the snapshot`);
      if (isEventTimeKind(kind)) {
        this.restoredEventTime.delta(kind, op);
        continue;
      }
      let t = this.tables.get(name);
      if (!t) this.tables.set(name, (t = new CopyOnWriteTable(name, kind)));
      if (code === DeltaOp.PUT) t.set(key, op[3]);
      else if (code === DeltaOp.DELETE_KEY) t.delete(key);
      else if (code === DeltaOp.MAP_PUT || code === DeltaOp.MAP_REMOVE) {
        let m = t.get(key) as Map<string | number, [unknown, unknown]> | undefined;
        if (code === DeltaOp.MAP_PUT) {
          if (!m) t.set(key, (m = new Map()));
          m.set(normalizeKey(op[3]), [op[3], op[4]]);
        } else if (m) {
          m.delete(normalizeKey(op[3]));
          if (m.size === 0) t.delete(key);
        }
      } else throw new Error(`Unknown operation ${String(code)} in a delta of incremental keyed state`);
    }
  }

  /** Snapshots in progress and tombstones left, over all tables (for tests). */
  openSnapshotViews(): number {
    let n = 0;
    for (const t of this.tables.values()) n += t.openViews;
    return n;
  }

  /** Entries held, tombstones included (for tests: none are left once no snapshot is in progress). */
  storedEntries(): number {
    let n = 0;
    for (const t of this.tables.values()) n += t.map.size;
    return n;
  }

  /** Number of keys with state, over all states (for metrics and tests). */
  numKeys(): number {
    const keys = new Set<string | number>();
    for (const table of this.tables.values())
      for (const [k, v] of table.map) if (v !== undefined) keys.add(k); // undefined: deleted during a snapshot
    return keys.size;
  }
}
