import { DeltaOp } from './incremental-snapshot.js';

type Scalar = string | number;

/** A namespaced-state row [key, value, namespace], or a timer row [key, timestamp, namespace]. */
export type EventTimeRow = [Scalar, unknown, Scalar];

/** Whether a state kind in a snapshot is namespaced state or timers (written by the RocksDB backend). */
export function isEventTimeKind(kind: string): kind is 'namespaced' | 'timers' {
  return kind === 'namespaced' || kind === 'timers';
}

/**
 * Namespaced state and timers that a RocksDB backend's checkpoint carries in its keyed state
 * (kinds 'namespaced' and 'timers', see eventtime/event-time-state.ts), restored into the
 * heap backend: kept here, full entries and deltas applied in order, until
 * eventTimeStores moves them into the heap's namespaced state and timer queues.
 */
export class RestoredEventTimeRows {
  /** state name -> row id -> row */
  private readonly states = new Map<
    string,
    { kind: 'namespaced' | 'timers'; rows: Map<string, EventTimeRow> }
  >();

  private rows(name: string, kind: 'namespaced' | 'timers'): Map<string, EventTimeRow> {
    let s = this.states.get(name);
    if (!s) this.states.set(name, (s = { kind, rows: new Map() }));
    return s.rows;
  }

  /** A canonical entry [name, key, value or timestamp, namespace]. */
  entry(kind: 'namespaced' | 'timers', e: unknown[]): void {
    const [name, key, value, ns] = e as [string, Scalar, unknown, Scalar];
    const row: EventTimeRow = [key, value, ns];
    this.rows(name, kind).set(rowId(kind, row), row);
  }

  /** A delta op of an incremental checkpoint (see deltaBatch in rocksdb/snapshot-batches.ts). */
  delta(kind: 'namespaced' | 'timers', op: unknown[]): void {
    const [code, name, key] = op as [number, string, Scalar];
    const rows = this.rows(name, kind);
    if (code === DeltaOp.DELETE_KEY) {
      for (const [id, row] of rows) if (row[0] === key) rows.delete(id);
      return;
    }
    const ns = op[3] as Scalar;
    // timers: [op, name, key, namespace, timestamp]; namespaced: [op, name, key, namespace, value?]
    const row: EventTimeRow = [key, op[4], ns];
    if (code === DeltaOp.MAP_PUT) rows.set(rowId(kind, row), row);
    else if (code === DeltaOp.MAP_REMOVE) rows.delete(rowId(kind, row));
    else throw new Error(`Unexpected operation ${String(code)} on ${kind} state '${name}' in a delta`);
  }

  /** The rows of every state of a kind, removed from here. */
  take(kind: 'namespaced' | 'timers'): Map<string, EventTimeRow[]> {
    const out = new Map<string, EventTimeRow[]>();
    for (const [name, s] of this.states) {
      if (s.kind !== kind) continue;
      out.set(name, [...s.rows.values()]);
      this.states.delete(name);
    }
    return out;
  }
}

function rowId(kind: 'namespaced' | 'timers', row: EventTimeRow): string {
  return JSON.stringify(kind === 'timers' ? [row[0], row[2], row[1]] : [row[0], row[2]]);
}
