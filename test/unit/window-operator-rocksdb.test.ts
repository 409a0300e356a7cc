// The window-operator tests, with namespaced state and timers in RocksDB (real files in a temp dir).
import '../helpers/rocksdb-event-time-state.js';
import './window-operator.test.js';
