/** A pending timer: fires for `key` (and its namespace, e.g. a window) at `timestamp`. */
export interface InternalTimer<N> {
  readonly timestamp: number;
  /** the key as the user's key selector returned it (onTimer's getCurrentKey()) */
  readonly key: unknown;
  /** the key as state maps use it */
  readonly normalizedKey: string | number;
  readonly keyGroup: number;
  readonly namespace: N;
  /** the namespace as its serializer writes it */
  readonly namespaceKey: string | number;
  /** position in the heap; -1 once removed */
  heapIndex: number;
  /** @internal the timer service's dedup map key, kept so firing does not rebuild it */
  readonly dedupKey?: string;
}

function compareScalar(a: string | number, b: string | number): number {
  if (typeof a === typeof b) return a < b ? -1 : a > b ? 1 : 0;
  return typeof a === 'number' ? -1 : 1;
}

/**
 * The total order timers fire in: by timestamp, ties broken by key group, key and namespace.
 * A total order (rather than Flink's arbitrary order among equal timestamps) makes the
 * firing sequence independent of insertion history, so a job restored from a checkpoint
 * fires equal-time timers in the same order as an undisturbed run.
 */
export function compareTimers(a: InternalTimer<unknown>, b: InternalTimer<unknown>): number {
  if (a.timestamp !== b.timestamp) return a.timestamp < b.timestamp ? -1 : 1;
  if (a.keyGroup !== b.keyGroup) return a.keyGroup - b.keyGroup;
  const k = compareScalar(a.normalizedKey, b.normalizedKey);
  if (k !== 0) return k;
  return compareScalar(a.namespaceKey, b.namespaceKey);
}

/**
 * A binary min-heap of timers that knows each element's position, so insert, poll and
 * delete of any element are O(log n) (Flink's HeapPriorityQueue).
 */
export class TimerHeap<N> {
  private readonly heap: InternalTimer<N>[] = [];

  get size(): number {
    return this.heap.length;
  }

  peek(): InternalTimer<N> | undefined {
    return this.heap[0];
  }

  add(timer: InternalTimer<N>): void {
    timer.heapIndex = this.heap.length;
    this.heap.push(timer);
    this.siftUp(timer.heapIndex);
  }

  poll(): InternalTimer<N> | undefined {
    const top = this.heap[0];
    if (top !== undefined) this.removeAt(0);
    return top;
  }

  remove(timer: InternalTimer<N>): void {
    const i = timer.heapIndex;
    if (i < 0 || this.heap[i] !== timer) return;
    this.removeAt(i);
  }

  /** All timers, in no particular order. */
  values(): readonly InternalTimer<N>[] {
    return this.heap;
  }

  private removeAt(i: number): void {
    const heap = this.heap;
    const removed = heap[i]!;
    const last = heap.pop()!;
    removed.heapIndex = -1;
    if (i < heap.length) {
      heap[i] = last;
      last.heapIndex = i;
      if (i > 0 && compareTimers(last, heap[(i - 1) >> 1]!) < 0) this.siftUp(i);
      else this.siftDown(i);
    }
  }

  private siftUp(i: number): void {
    const heap = this.heap;
    const t = heap[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p]!;
      if (compareTimers(t, parent) >= 0) break;
      heap[i] = parent;
      parent.heapIndex = i;
      i = p;
    }
    heap[i] = t;
    t.heapIndex = i;
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const t = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && compareTimers(heap[r]!, heap[l]!) < 0) c = r;
      const child = heap[c]!;
      if (compareTimers(child, t) >= 0) break;
      heap[i] = child;
      child.heapIndex = i;
      i = c;
    }
    heap[i] = t;
    t.heapIndex = i;
  }
}
