import {
  AVAILABLE,
  InputStatus,
  type ReaderOutput,
  type Source,
  type SourceReader,
  type SplitRequester,
} from './source.js';
import type { TaskInfo } from './runtime-context.js';
import type { SplitEnumerator, SplitEnumeratorContext } from './split-enumerator.js';

/**
 * A unit of source work, after FLIP-27's SourceSplit: a partition, a subject filter, a key
 * range. It is plain JSON and carries its own position, so a checkpoint of a reader is the
 * list of its splits as they stand.
 */
export interface SourceSplit {
  readonly splitId: string;
}

/**
 * What a split reader emits into. `timestamp` is the record's event time as the external
 * system knows it (message time, row column); `createOutputForSplit` is the hook for
 * per-split watermark generation: a runtime that offers it gets every split's records
 * through that split's own output.
 */
export interface SplitReaderOutput<T> extends ReaderOutput<T> {
  collect(record: T, timestamp?: number): void;
  createOutputForSplit?(splitId: string): ReaderOutput<T> & { collect(record: T, timestamp?: number): void };
  releaseOutputForSplit?(splitId: string): void;
}

/** Reads one split; the task polls it through the source's reader. */
export interface SplitReader<T, S extends SourceSplit> {
  /** connects and seeks to the split's position (the restored one on restore) */
  start?(): void | Promise<void>;
  /**
   * Emits at most `budget` records of this split. END_OF_INPUT: the split is finished (a
   * bounded split reached its end) and is dropped from later checkpoints.
   */
  fetch(output: SplitReaderOutput<T>, budget: number): InputStatus;
  /** resolves when a NOTHING_AVAILABLE split has records again */
  isAvailable(): Promise<void>;
  /** the split with its position after the last record emitted; must be JSON */
  snapshot(): S;
  close?(): void | Promise<void>;
}

/**
 * A source made of splits, in the shape of FLIP-27. With `createEnumerator` the splits are
 * discovered and assigned by an enumerator the JobManager runs (it may find new splits while
 * the job runs); without it they are enumerated from the source's configuration alone (no
 * I/O, so every subtask computes the same list) and dealt out deterministically: split k to
 * subtask k % parallelism. Either way, once a reader has a split it lives in the reader's
 * checkpoints with its position; on restore the runtime deals the checkpointed splits
 * round-robin over the new subtasks, so failover and rescaling keep every position.
 */
export abstract class SplitSource<T, S extends SourceSplit> implements Source<T> {
  abstract readonly boundedness: Source<T>['boundedness'];
  /** every split of the source, in a fixed order (sources without an enumerator) */
  abstract createSplits(parallelism: number): S[];
  abstract createSplitReader(split: S, context: TaskInfo): SplitReader<T, S>;
  /**
   * The split enumerator, run on the JobManager; `restored` is what its `snapshotState`
   * returned in the checkpoint the job restores from.
   */
  createEnumerator?(context: SplitEnumeratorContext<S>, restored?: unknown): SplitEnumerator<S, unknown>;
  /**
   * For a checkpoint written before this source had an enumerator (it has no enumerator
   * state): what the enumerator is restored from, given every reader's splits as that
   * checkpoint kept them. Without it the enumerator starts afresh and its assignments of
   * split ids the readers restore are dropped.
   */
  legacyEnumeratorState?(readerSplits: unknown[]): unknown;

  createReader(context: TaskInfo, restored?: unknown[], requester?: SplitRequester): SourceReader<T> {
    if (this.createEnumerator && requester) {
      return new CoordinatedSplitSourceReader<T, S>(
        ((restored as S[] | undefined) ?? []).map((s) => this.createSplitReader(s, context)),
        this.boundedness === 'BOUNDED',
        (s) => this.createSplitReader(s, context),
        requester,
      );
    }
    const splits =
      (restored as S[] | undefined) ??
      this.createSplits(context.parallelism).filter(
        (_, k) => k % context.parallelism === context.subtaskIndex,
      );
    return new SplitSourceReader(
      splits.map((s) => this.createSplitReader(s, context)),
      this.boundedness === 'BOUNDED',
    );
  }
}

const NEVER = new Promise<void>(() => {});
/** small polls: a source emits a whole poll even when its output is full, ahead of the next barrier */
const POLL_BUDGET = 64;

/**
 * Drives the split readers of one subtask: polls them in turn so no split starves another,
 * ends when every split of a bounded source ended, and snapshots every split's position.
 * An unbounded subtask without splits idles instead of ending, so it keeps taking part in
 * checkpoints.
 */
export class SplitSourceReader<T, S extends SourceSplit> implements SourceReader<T> {
  private next = 0;
  private outputs: Array<SplitReaderOutput<T> | undefined> = [];
  private lastOutput: SplitReaderOutput<T> | undefined;

  constructor(
    protected readonly readers: Array<SplitReader<T, S>>,
    private readonly bounded: boolean,
  ) {}

  /** a started split reader joins the ones polled */
  protected addSplitReader(r: SplitReader<T, S>): void {
    this.readers.push(r);
    const out = this.lastOutput;
    if (out) this.outputs.push(out.createOutputForSplit?.(r.snapshot().splitId) ?? out);
  }

  async start(): Promise<void> {
    await Promise.all(this.readers.map((r) => r.start?.()));
  }

  pollNext(output: ReaderOutput<T>): InputStatus {
    const out = output as SplitReaderOutput<T>;
    if (out !== this.lastOutput) {
      this.lastOutput = out;
      this.outputs = this.readers.map((r) => out.createOutputForSplit?.(r.snapshot().splitId) ?? out);
    }
    const n = this.readers.length;
    if (n === 0) return this.bounded ? InputStatus.END_OF_INPUT : InputStatus.NOTHING_AVAILABLE;
    let more = false;
    const share = Math.max(16, Math.ceil(POLL_BUDGET / n));
    for (let turns = n; turns > 0 && this.readers.length > 0; turns--) {
      if (this.next >= this.readers.length) this.next = 0;
      const k = this.next;
      const status = this.readers[k]!.fetch(this.outputs[k]!, share);
      if (status === InputStatus.END_OF_INPUT) {
        const finished = this.readers.splice(k, 1)[0]!;
        this.outputs.splice(k, 1);
        out.releaseOutputForSplit?.(finished.snapshot().splitId);
        void finished.close?.();
      } else {
        if (status === InputStatus.MORE_AVAILABLE) more = true;
        this.next = k + 1;
      }
    }
    if (this.readers.length === 0 && this.bounded) return InputStatus.END_OF_INPUT;
    return more ? InputStatus.MORE_AVAILABLE : InputStatus.NOTHING_AVAILABLE;
  }

  isAvailable(): Promise<void> {
    if (this.readers.length === 0) return this.bounded ? AVAILABLE : NEVER;
    return Promise.race(this.readers.map((r) => r.isAvailable()));
  }

  snapshotState(): S[] {
    return this.readers.map((r) => r.snapshot());
  }

  async close(): Promise<void> {
    await Promise.all(this.readers.map((r) => r.close?.()));
  }
}

/** how often a reader asks its enumerator for splits assigned meanwhile (discovery) */
const REQUEST_INTERVAL_MS = 1_000;

/**
 * The reader of a source with a split enumerator: it starts with the splits it restored (none
 * on a fresh start), registers with the enumerator, asks for a split whenever it has nothing to
 * read, and picks up splits the enumerator assigned meanwhile (discovered ones) once a second.
 * A bounded reader ends when its splits ended and the enumerator said no more will come.
 */
export class CoordinatedSplitSourceReader<T, S extends SourceSplit> extends SplitSourceReader<T, S> {
  /** assigned splits whose readers are still connecting: already in checkpoints */
  private starting: Array<SplitReader<T, S>> = [];
  private inflight: Promise<void> | undefined;
  private nextRequestAt = 0;
  private askedForMore = false;
  private noMoreSplits = false;
  private lastCheckpointId = 0;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private woken: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    restored: Array<SplitReader<T, S>>,
    private readonly boundedSource: boolean,
    private readonly create: (split: S) => SplitReader<T, S>,
    private readonly requester: SplitRequester,
  ) {
    super(restored, false);
  }

  override async start(): Promise<void> {
    await super.start();
    this.request();
    await this.inflight;
  }

  private get idle(): boolean {
    return this.readers.length === 0 && this.starting.length === 0;
  }

  private request(): void {
    if (this.inflight || this.closed) return;
    const wantMore = this.idle && !this.noMoreSplits && !this.askedForMore;
    if (wantMore) this.askedForMore = true;
    this.nextRequestAt = Date.now() + REQUEST_INTERVAL_MS;
    this.inflight = this.requester.request(this.lastCheckpointId, wantMore).then(
      ({ splits, noMoreSplits }) => {
        this.inflight = undefined;
        if (noMoreSplits) this.noMoreSplits = true;
        for (const s of splits as S[]) this.startSplit(this.create(s));
        if (splits.length > 0) this.askedForMore = false;
        this.signal();
      },
      (err: Error) => {
        this.inflight = undefined;
        this.failure ??= err;
        this.signal();
      },
    );
  }

  private startSplit(r: SplitReader<T, S>): void {
    this.starting.push(r);
    Promise.resolve(r.start?.()).then(
      () => {
        const k = this.starting.indexOf(r);
        if (k < 0) return; // closed meanwhile
        this.starting.splice(k, 1);
        this.addSplitReader(r);
        this.signal();
      },
      (err: Error) => {
        this.failure ??= err;
        this.signal();
      },
    );
  }

  private signal(): void {
    const w = this.wake;
    this.wake = undefined;
    this.woken = undefined;
    w?.();
  }

  override pollNext(output: ReaderOutput<T>): InputStatus {
    if (this.failure) throw this.failure;
    const status = super.pollNext(output);
    // after the poll: a split that just ended may leave the reader with nothing to read
    if (!this.inflight && !(this.boundedSource && this.noMoreSplits))
      if ((this.idle && !this.askedForMore) || Date.now() >= this.nextRequestAt) this.request();
    if (this.boundedSource && this.noMoreSplits && this.idle && !this.inflight)
      return InputStatus.END_OF_INPUT;
    return status;
  }

  override isAvailable(): Promise<void> {
    if (this.failure) return AVAILABLE;
    if (this.boundedSource && this.noMoreSplits && this.idle && !this.inflight) return AVAILABLE;
    this.woken ??= new Promise<void>((resolve) => (this.wake = resolve));
    // a request under way wakes the reader when it comes back; else the next one is due at nextRequestAt
    if (!this.timer && !this.inflight && !(this.boundedSource && this.noMoreSplits)) {
      this.timer = setTimeout(
        () => {
          this.timer = undefined;
          this.signal();
        },
        Math.max(0, this.nextRequestAt - Date.now()),
      );
    }
    return this.idle ? this.woken : Promise.race([super.isAvailable(), this.woken]);
  }

  override snapshotState(checkpointId?: number): S[] {
    if (checkpointId !== undefined) {
      this.lastCheckpointId = checkpointId;
      // a split assigned on the last request may have waited for this barrier: ask again now
      if (this.askedForMore && this.idle) {
        this.nextRequestAt = 0;
        clearTimeout(this.timer);
        this.timer = undefined;
        this.signal();
      }
    }
    return [...super.snapshotState(), ...this.starting.map((r) => r.snapshot())];
  }

  checkpointReady(): Promise<void> | undefined {
    return this.inflight;
  }

  override async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    const starting = this.starting;
    this.starting = [];
    await Promise.all([super.close(), ...starting.map((r) => r.close?.())]);
  }
}
