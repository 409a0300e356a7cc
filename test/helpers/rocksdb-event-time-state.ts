import { useRocksDbEventTimeState } from './event-time-state.js';

// imported before a test file's tests: they run over namespaced state and timers in RocksDB
useRocksDbEventTimeState();
