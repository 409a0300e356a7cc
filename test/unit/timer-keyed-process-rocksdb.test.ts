// The KeyedProcessFunction / KeyedCoProcessFunction timer tests, with the timers in RocksDB (real files in a temp dir).
import '../helpers/rocksdb-event-time-state.js';
import './timer-keyed-process.test.js';
