// The interval-join tests, with the join buffers and cleanup timers in RocksDB (real files in a temp dir).
import '../helpers/rocksdb-event-time-state.js';
import './timer-interval-join.test.js';
