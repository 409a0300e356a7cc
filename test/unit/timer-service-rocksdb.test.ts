// The timer-service tests, with the timer queues in RocksDB (real files in a temp dir).
import '../helpers/rocksdb-event-time-state.js';
import './timer-service.test.js';
