import type {
  AggregatingState,
  AggregatingStateDescriptor,
  KeyedStateStore,
  ListState,
  ListStateDescriptor,
  MapState,
  MapStateDescriptor,
  ReducingState,
  ReducingStateDescriptor,
  State,
  StateDescriptor,
  ValueState,
  ValueStateDescriptor,
} from './api.js';
import type { NamespaceKey, NamespacedKeyedState } from './namespaced-state.js';

/**
 * The user-facing state objects (ValueState, ListState, ReducingState, AggregatingState)
 * over namespaced state, scoped to the current key and to `namespace`, which the owner
 * (window operator) sets before calling user code. Serves a trigger's partitioned state and
 * a ProcessWindowFunction's windowState() (namespace = the window) and globalState()
 * (namespace = 0). State objects are created once per descriptor and reused.
 */
export class NamespacedStateStore implements KeyedStateStore {
  namespace: NamespaceKey = 0;
  private readonly cache = new Map<string, State>();

  constructor(
    private readonly backend: NamespacedKeyedState,
    /** keeps the names of triggers, window state and global state apart */
    private readonly prefix: string,
    private readonly operatorName: string,
  ) {}

  getPartitionedState<S extends State>(descriptor: StateDescriptor<S>): S {
    switch (descriptor.kind) {
      case 'value':
        return this.getState(descriptor as unknown as ValueStateDescriptor<unknown>) as unknown as S;
      case 'list':
        return this.getListState(descriptor as unknown as ListStateDescriptor<unknown>) as unknown as S;
      case 'reducing':
        return this.getReducingState(
          descriptor as unknown as ReducingStateDescriptor<unknown>,
        ) as unknown as S;
      case 'aggregating':
        return this.getAggregatingState(
          descriptor as unknown as AggregatingStateDescriptor<unknown, unknown, unknown>,
        ) as unknown as S;
      case 'map':
        return this.getMapState(
          descriptor as unknown as MapStateDescriptor<unknown, unknown>,
        ) as unknown as S;
    }
  }

  private cached<S extends State>(descriptor: StateDescriptor<S>, make: () => S): S {
    const name = descriptor.name;
    let s = this.cache.get(name);
    if (!s) {
      s = make();
      this.cache.set(name, s);
    }
    return s as S;
  }

  getState<T>(descriptor: ValueStateDescriptor<T>): ValueState<T> {
    return this.cached(descriptor, () => {
      const st = this.backend.getValueState<T>(this.prefix + descriptor.name);
      return {
        value: () => {
          const v = st.get(this.namespace);
          return v === undefined ? descriptor.defaultValue : v;
        },
        update: (v: T) => st.update(this.namespace, v),
        clear: () => st.clear(this.namespace),
      };
    });
  }

  getListState<T>(descriptor: ListStateDescriptor<T>): ListState<T> {
    return this.cached(descriptor, () => {
      const st = this.backend.getListState<T>(this.prefix + descriptor.name);
      return {
        get: () => st.get(this.namespace) ?? [],
        add: (v: T) => st.add(this.namespace, v),
        addAll: (vs: T[]) => {
          for (const v of vs) st.add(this.namespace, v);
        },
        update: (vs: T[]) => st.update(this.namespace, [...vs]),
        clear: () => st.clear(this.namespace),
      };
    });
  }

  getReducingState<T>(descriptor: ReducingStateDescriptor<T>): ReducingState<T> {
    return this.cached(descriptor, () => {
      const st = this.backend.getValueState<T>(this.prefix + descriptor.name);
      const reduce = descriptor.reduceFunction;
      return {
        get: () => st.get(this.namespace),
        add: (v: T) => {
          const cur = st.get(this.namespace);
          st.update(this.namespace, cur === undefined ? v : reduce(cur, v));
        },
        clear: () => st.clear(this.namespace),
      };
    });
  }

  getAggregatingState<IN, ACC, OUT>(
    descriptor: AggregatingStateDescriptor<IN, ACC, OUT>,
  ): AggregatingState<IN, OUT> {
    return this.cached(descriptor, () => {
      const st = this.backend.getValueState<ACC>(this.prefix + descriptor.name);
      const fn = descriptor.aggregateFunction;
      return {
        get: () => {
          const acc = st.get(this.namespace);
          return acc === undefined ? undefined : fn.getResult(acc);
        },
        add: (v: IN) => {
          const acc = st.get(this.namespace);
          st.update(this.namespace, fn.add(v, acc === undefined ? fn.createAccumulator() : acc));
        },
        clear: () => st.clear(this.namespace),
      };
    });
  }

  getMapState<UK, UV>(descriptor: MapStateDescriptor<UK, UV>): MapState<UK, UV> {
    throw new Error(
      `'${this.operatorName}': MapState '${descriptor.name}' is not available in window or trigger state; keep an object in a ValueState instead`,
    );
  }

  /**
   * Folds the state of `sources` into `target` and clears the sources (trigger state when
   * session windows merge). Value and map state cannot be merged.
   */
  mergeNamespaces<S extends State>(
    descriptor: StateDescriptor<S>,
    target: NamespaceKey,
    sources: NamespaceKey[],
  ): void {
    const name = this.prefix + descriptor.name;
    switch (descriptor.kind) {
      case 'reducing': {
        const st = this.backend.getValueState<unknown>(name);
        const reduce = (descriptor as unknown as ReducingStateDescriptor<unknown>).reduceFunction;
        let acc = st.get(target);
        for (const s of sources) {
          const v = st.get(s);
          if (v === undefined) continue;
          acc = acc === undefined ? v : reduce(acc, v);
          st.clear(s);
        }
        if (acc !== undefined) st.update(target, acc);
        return;
      }
      case 'aggregating': {
        const st = this.backend.getValueState<unknown>(name);
        const fn = (descriptor as unknown as AggregatingStateDescriptor<unknown, unknown, unknown>)
          .aggregateFunction;
        let acc = st.get(target);
        for (const s of sources) {
          const v = st.get(s);
          if (v === undefined) continue;
          if (acc !== undefined && !fn.merge) {
            throw new Error(
              `'${this.operatorName}': merging windows needs AggregateFunction.merge for aggregating state '${descriptor.name}'`,
            );
          }
          acc = acc === undefined ? v : fn.merge!(acc, v);
          st.clear(s);
        }
        if (acc !== undefined) st.update(target, acc);
        return;
      }
      case 'list': {
        const st = this.backend.getListState<unknown>(name);
        for (const s of sources) {
          const vs = st.get(s);
          if (!vs) continue;
          const copy = [...vs];
          st.clear(s);
          for (const v of copy) st.add(target, v);
        }
        return;
      }
      default:
        throw new Error(
          `'${this.operatorName}': ${descriptor.kind} state '${descriptor.name}' cannot be merged when windows merge; use reducing, aggregating or list state in triggers of session windows`,
        );
    }
  }
}
