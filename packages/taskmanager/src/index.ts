export { TaskExecutor, startSpareSlotWorkers, type TaskManagerOptions } from './task-executor.js';
export { HeapKeyedStateBackend } from './state/heap-keyed-state-backend.js';
export { writeKeyedSnapshot } from './state/keyed-snapshot-writer.js';
