import type { SourceSplit, SplitEnumerator, SplitEnumeratorContext, SplitSource } from '@weir/api';
import type { Logger } from '@weir/core';

/** What a source coordinator keeps in a checkpoint (the operator's `coordinatorState`). */
export interface SourceCoordinatorState {
  /** the enumerator's snapshotState */
  enumerator: unknown;
  /** splits assigned but not yet taken by their reader, by subtask: they go back on restore */
  assigned: Record<string, unknown[]>;
}

/**
 * Runs one source operator's split enumerator for one job attempt (Flink's SourceCoordinator).
 * Readers take their assignments by request. A split is in exactly one checkpoint side: the
 * coordinator's (the enumerator still has it, or it waits in `assigned`) or a reader's. So an
 * assignment made after the coordinator's snapshot for checkpoint c (which happens before any
 * source sees the trigger of c) goes only to a reader that has emitted barrier c, and a reader
 * answers the trigger only once its request under way came back.
 */
export class SourceCoordinator implements SplitEnumeratorContext<SourceSplit> {
  private enumerator: SplitEnumerator<SourceSplit, unknown> | undefined;
  private readonly readers = new Set<number>();
  private readonly registered = new Set<string>();
  /** assigned, not taken: with the id of the last coordinator snapshot that saw them */
  private readonly queues = new Map<number, Array<{ split: SourceSplit; after: number }>>();
  private readonly noMore = new Set<number>();
  private lastSnapshot = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  private failure: Error | undefined;
  private held: ReadonlySet<string> | undefined;

  constructor(
    private readonly source: SplitSource<unknown, SourceSplit>,
    readonly operatorId: string,
    private readonly operatorName: string,
    readonly currentParallelism: number,
    private readonly log: Logger,
    private readonly onFailure: (cause: string) => void,
  ) {}

  /**
   * Creates and starts the enumerator; restored splits nobody took go back to it.
   * `readerSplits`: the readers' splits of a checkpoint written before the source had an
   * enumerator (no coordinator state). The source's `legacyEnumeratorState` turns them into
   * the enumerator's state; without it, the enumerator's assignments of the split ids they
   * hold are dropped, not read twice.
   */
  async start(restored: SourceCoordinatorState | undefined, readerSplits?: unknown[]): Promise<void> {
    let enumeratorState = restored?.enumerator;
    if (!restored && readerSplits) {
      if (this.source.legacyEnumeratorState)
        enumeratorState = this.source.legacyEnumeratorState(readerSplits);
      else {
        const held = new Set<string>();
        for (const split of readerSplits) {
          const id = (split as { splitId?: unknown } | null)?.splitId;
          if (typeof id === 'string') held.add(id);
        }
        if (held.size > 0) this.held = held;
      }
    }
    this.enumerator = this.source.createEnumerator!(this, enumeratorState);
    for (const [subtask, splits] of Object.entries(restored?.assigned ?? {}))
      if (splits.length > 0)
        this.enumerator.addSplitsBack(splits as SourceSplit[], Number(subtask) % this.currentParallelism);
    try {
      await this.enumerator.start();
    } catch (err) {
      throw new Error(
        `The split enumerator of source '${this.operatorName}' could not start: ${(err as Error).message}`,
      );
    }
  }

  registeredReaders(): ReadonlySet<number> {
    return this.readers;
  }

  assignSplit(split: SourceSplit, subtask: number): void {
    if (!Number.isInteger(subtask) || subtask < 0 || subtask >= this.currentParallelism)
      throw new Error(
        `The split enumerator of source '${this.operatorName}' assigned split '${split.splitId}' to subtask ${subtask}; subtasks are 0..${this.currentParallelism - 1}`,
      );
    if (this.held?.has(split.splitId)) return;
    let q = this.queues.get(subtask);
    if (!q) this.queues.set(subtask, (q = []));
    // a copy: the enumerator may keep and change its own object
    q.push({ split: JSON.parse(JSON.stringify(split)) as SourceSplit, after: this.lastSnapshot });
  }

  signalNoMoreSplits(subtask: number): void {
    this.noMore.add(subtask);
  }

  callAsync<R>(
    callable: () => Promise<R>,
    handler: (result: R | undefined, error: Error | undefined) => void,
    initialDelayMs = 0,
    periodMs = 0,
  ): void {
    const run = (): void => {
      if (this.closed) return;
      callable().then(
        (r) => this.guard(() => handler(r, undefined)),
        (err: unknown) =>
          this.guard(() => handler(undefined, err instanceof Error ? err : new Error(String(err)))),
      );
    };
    const schedule = (delay: number): void => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        if (periodMs > 0) schedule(periodMs);
        run();
      }, delay);
      this.timers.add(t);
    };
    schedule(initialDelayMs);
  }

  /** A handler that throws fails the job, naming the source. */
  private guard(f: () => void): void {
    if (this.closed) return;
    try {
      f();
    } catch (err) {
      this.fail(err);
    }
  }

  private fail(err: unknown): void {
    const message = `The split enumerator of source '${this.operatorName}' failed: ${(err as Error).message}`;
    this.failure ??= new Error(message);
    this.log.warn({ operator: this.operatorName, err: (err as Error).message }, 'split enumerator failed');
    this.onFailure(message);
  }

  /**
   * A reader's request: its first one registers it; `wantMore` lets the enumerator assign;
   * then it takes what is assigned to it and may be taken before barrier `lastCheckpointId`.
   */
  request(
    executionId: string,
    subtask: number,
    lastCheckpointId: number,
    wantMore: boolean,
  ): { splits: SourceSplit[]; noMoreSplits: boolean } {
    if (this.failure) throw this.failure;
    if (subtask < 0 || subtask >= this.currentParallelism)
      throw new Error(`Source '${this.operatorName}' has no subtask ${subtask}`);
    const enumerator = this.enumerator!;
    try {
      if (!this.registered.has(executionId)) {
        this.registered.add(executionId);
        this.readers.add(subtask);
        enumerator.addReader(subtask);
      }
      if (wantMore) enumerator.handleSplitRequest(subtask);
    } catch (err) {
      this.fail(err);
      throw this.failure!;
    }
    const q = this.queues.get(subtask) ?? [];
    const splits: SourceSplit[] = [];
    const kept: typeof q = [];
    for (const e of q)
      if (e.after <= lastCheckpointId) splits.push(e.split);
      else kept.push(e);
    if (kept.length > 0) this.queues.set(subtask, kept);
    else this.queues.delete(subtask);
    return { splits, noMoreSplits: kept.length === 0 && this.noMore.has(subtask) };
  }

  /** Runs before any source sees the trigger of `checkpointId`. */
  snapshot(checkpointId: number): SourceCoordinatorState {
    const enumerator = this.enumerator!.snapshotState(checkpointId);
    const assigned: Record<string, unknown[]> = {};
    for (const [subtask, q] of this.queues) {
      assigned[subtask] = q.map((e) => e.split);
      // they are in this snapshot: a reader may take them only after this checkpoint's barrier
      for (const e of q) e.after = checkpointId;
    }
    this.lastSnapshot = checkpointId;
    return { enumerator: JSON.parse(JSON.stringify(enumerator ?? null)) as unknown, assigned };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.enumerator?.close?.();
  }
}
