import { READ_CACHE_SHARE } from './state/rocksdb/memory-budget.js';

/*
 * A TaskManager's total memory, Flink's `taskmanager.memory.process.size`: when set, every part
 * of the process is sized from it, so the resident set stays under it by construction instead of
 * by luck of the garbage collector's heuristics:
 *
 *   process size = framework + task heap + managed + overhead
 *
 * - framework: the main thread (gRPC, heartbeats, metrics, the loaded code): a fixed 128 MiB,
 *   Flink's framework heap;
 * - overhead: thread stacks, network buffers in flight, V8's young generations, RocksDB's
 *   iterators and table readers, allocator slack: 10% of the process, at least 192 MiB and at most
 *   1 GiB (Flink's JVM overhead defaults);
 * - managed: RocksDB state (block caches, memtables, and the read caches in front of them),
 *   `taskmanager.memory.managed.size` or `taskmanager.memory.managed.fraction` of what framework
 *   and overhead leave;
 * - task heap: the rest, split evenly between the slots. Each slot's worker thread gets its share
 *   plus its read caches (which live on that heap) as its JavaScript heap limit, which V8 enforces.
 */

const MiB = 1 << 20;
export const FRAMEWORK_BYTES = 128 * MiB;
const OVERHEAD_FRACTION = 0.1;
const OVERHEAD_MIN = 192 * MiB;
const OVERHEAD_MAX = 1024 * MiB;
/** The least JavaScript heap a slot's worker thread can run a task in. */
export const MIN_TASK_HEAP_PER_SLOT = 64 * MiB;

export interface ProcessMemory {
  processSize: number;
  framework: number;
  overhead: number;
  /** managed memory of the whole TaskManager */
  managed: number;
  /** task heap of one slot, without its read caches */
  taskHeapPerSlot: number;
  /** the old-generation limit of one slot's worker thread: its task heap and its read caches */
  workerHeapMb: number;
}

function overheadOf(processSize: number): number {
  return Math.min(OVERHEAD_MAX, Math.max(OVERHEAD_MIN, Math.floor(processSize * OVERHEAD_FRACTION)));
}

function mib(bytes: number): string {
  return `${Math.ceil(bytes / MiB)} MiB`;
}

/**
 * Splits `processSize` as above. A size too small for `slots` slots is an error naming the
 * setting and the smallest size that works.
 */
export function resolveProcessMemory(
  processSize: number,
  managedSize: number | undefined,
  managedFraction: number,
  slots: number,
  readCacheSize?: number,
): ProcessMemory {
  const n = Math.max(1, slots);
  const overhead = overheadOf(processSize);
  const available = processSize - FRAMEWORK_BYTES - overhead;
  const managed = managedSize ?? Math.floor(Math.max(0, available) * managedFraction);
  const taskHeap = available - managed;
  const taskHeapPerSlot = Math.floor(taskHeap / n);
  if (!(taskHeapPerSlot >= MIN_TASK_HEAP_PER_SLOT)) {
    // the smallest process whose task heap reaches the minimum per slot with this managed memory
    let least = FRAMEWORK_BYTES + n * MIN_TASK_HEAP_PER_SLOT;
    for (;;) {
      const over = overheadOf(least);
      const need =
        managedSize !== undefined
          ? FRAMEWORK_BYTES + over + managedSize + n * MIN_TASK_HEAP_PER_SLOT
          : FRAMEWORK_BYTES + over + Math.ceil((n * MIN_TASK_HEAP_PER_SLOT) / (1 - managedFraction));
      if (need <= least) break;
      least = need;
    }
    const managedPart =
      managedSize !== undefined
        ? `taskmanager.memory.managed.size ${mib(managedSize)}`
        : `managed memory ${mib(managed)} (taskmanager.memory.managed.fraction ${managedFraction})`;
    throw new Error(
      `taskmanager.memory.process.size is ${processSize} bytes (${mib(processSize)}), too small for ${n} slot${n === 1 ? '' : 's'}: ` +
        `after the framework (${mib(FRAMEWORK_BYTES)}), the overhead (${mib(overhead)}) and ${managedPart}, ` +
        `each slot's task heap would be ${mib(Math.max(0, taskHeapPerSlot))}, under the ${mib(MIN_TASK_HEAP_PER_SLOT)} a task needs; ` +
        `set taskmanager.memory.process.size to at least ${least} bytes (${mib(least)})` +
        (managedSize !== undefined ? ' or lower taskmanager.memory.managed.size' : ''),
    );
  }
  const readCachePerSlot = readCacheSize ?? Math.floor((managed / n) * READ_CACHE_SHARE);
  return {
    processSize,
    framework: FRAMEWORK_BYTES,
    overhead,
    managed,
    taskHeapPerSlot,
    workerHeapMb: Math.floor((taskHeapPerSlot + readCachePerSlot) / MiB),
  };
}
