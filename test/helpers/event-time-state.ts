import { after, beforeEach } from 'node:test';
import type { KeyGroupRange } from '../../packages/core/src/index.js';
import {
  eventTimeStores,
  type EventTimeState,
} from '../../packages/taskmanager/src/eventtime/event-time-stores.js';
import type { KeyedStateBackend } from '../../packages/taskmanager/src/state/keyed-state-backend.js';
import { MAX_P, TestBackends } from './state-backends.js';

/*
 * Which backend the event-time unit tests keep namespaced state and timers in: the heap by
 * default; a test file that imports './rocksdb-event-time-state.js' before the tests runs them
 * over RocksDB (real files in a temp dir), so one set of tests covers both.
 */

let kind: 'heap' | 'rocksdb' = 'heap';
let backends: TestBackends | undefined;
/** opened RocksDB backends, ready for the synchronous harness constructors of the next test */
const ready: KeyedStateBackend[] = [];
/** every backend handed out, for tests that look at the backend (snapshots) */
export const handedOut = new Map<EventTimeState, KeyedStateBackend>();

/** RocksDB from now on: each test starts with `perTest` opened backends (small write buffers, so RocksDB is read). */
export function useRocksDbEventTimeState(perTest = 12): void {
  kind = 'rocksdb';
  backends = new TestBackends();
  beforeEach(async () => {
    while (ready.length < perTest) ready.push(await backends!.open('rocksdb', { maxBufferedEntries: 100 }));
  });
  after(() => backends!.dispose());
}

export function eventTimeBackendKind(): 'heap' | 'rocksdb' {
  return kind;
}

/** Namespaced state and timer queues as the runtime gets them (eventTimeStores), on the chosen backend. */
export function eventTimeStateFor(operatorName: string, range: KeyGroupRange): EventTimeState {
  const opts = { operatorName, maxParallelism: MAX_P, keyGroupRange: range };
  if (kind === 'heap') return eventTimeStores(undefined, opts);
  const backend = ready.shift();
  if (!backend)
    throw new Error('More RocksDB backends used in one test than useRocksDbEventTimeState(perTest) opens');
  const s = eventTimeStores(backend, opts);
  handedOut.set(s, backend);
  return s;
}
