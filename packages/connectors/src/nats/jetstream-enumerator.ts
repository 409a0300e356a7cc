import type { NatsConnection } from 'nats';
import type { SplitEnumerator, SplitEnumeratorContext } from '@weir/api';
import { connectNats, streamInfo, type NatsConnectionOptions } from './connection.js';
import type { JetStreamSplit } from './jetstream-source.js';

/** The enumerator's checkpoint: the split ids handed out so far (never handed out again). */
export interface JetStreamEnumeratorState {
  assigned: string[];
}

export interface JetStreamEnumeratorOptions extends NatsConnectionOptions {
  stream: string;
  /** fixed subject filters (one split each); ignored when `discover` is set */
  subjects?: string[];
  /** one split per subject of the stream, listed every `intervalMs` while the job runs */
  discover?: { intervalMs: number };
  bounded: boolean;
  who: string;
}

/** The owner of a split: a hash of its id, so the same split goes to the same subtask. */
export function ownerOf(splitId: string, parallelism: number): number {
  let h = 0;
  for (let i = 0; i < splitId.length; i++) h = (Math.imul(h, 31) + splitId.charCodeAt(i)) | 0;
  return (h >>> 0) % parallelism;
}

/**
 * Hands out the splits of a JetStream source from the JobManager: the configured subject
 * filters, or (with `discover`) one split per subject the stream holds, looked up again
 * every interval so subjects that appear while the job runs are read from their first
 * message. A bounded source lists once and then tells every reader that no more will come.
 */
export class JetStreamEnumerator implements SplitEnumerator<JetStreamSplit, JetStreamEnumeratorState> {
  private readonly assigned: Set<string>;
  private nc: NatsConnection | undefined;

  constructor(
    private readonly ctx: SplitEnumeratorContext<JetStreamSplit>,
    private readonly opts: JetStreamEnumeratorOptions,
    restored: JetStreamEnumeratorState | undefined,
  ) {
    this.assigned = new Set(restored?.assigned ?? []);
  }

  private splitOf(filter: string): JetStreamSplit {
    return { splitId: `${this.opts.stream}:${filter || '>'}`, filter, next: 1 };
  }

  start(): void {
    if (!this.opts.discover) {
      for (const filter of this.opts.subjects ?? ['']) this.offer(this.splitOf(filter));
      if (this.opts.bounded) this.noMoreSplits();
      return;
    }
    const period = this.opts.bounded ? 0 : this.opts.discover.intervalMs;
    this.ctx.callAsync(
      () => this.listSubjects(),
      (subjects, err) => {
        if (err) throw err;
        for (const s of subjects!) this.offer(this.splitOf(s));
        if (this.opts.bounded) this.noMoreSplits();
      },
      0,
      period,
    );
  }

  private async listSubjects(): Promise<string[]> {
    this.nc ??= await connectNats(this.opts, this.opts.who);
    const jsm = await this.nc.jetstreamManager();
    await streamInfo(jsm, this.opts.stream, this.opts, this.opts.who);
    const info = await jsm.streams.info(this.opts.stream, { subjects_filter: '>' });
    return Object.keys(info.state.subjects ?? {}).sort();
  }

  private offer(split: JetStreamSplit): void {
    if (this.assigned.has(split.splitId)) return;
    this.assigned.add(split.splitId);
    this.ctx.assignSplit(split, ownerOf(split.splitId, this.ctx.currentParallelism));
  }

  private noMoreSplits(): void {
    for (let s = 0; s < this.ctx.currentParallelism; s++) this.ctx.signalNoMoreSplits(s);
  }

  handleSplitRequest(): void {}

  addReader(): void {}

  addSplitsBack(splits: JetStreamSplit[]): void {
    for (const s of splits) this.ctx.assignSplit(s, ownerOf(s.splitId, this.ctx.currentParallelism));
  }

  snapshotState(): JetStreamEnumeratorState {
    return { assigned: [...this.assigned] };
  }

  async close(): Promise<void> {
    await this.nc?.close().catch(() => {});
  }
}
