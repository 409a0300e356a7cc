import type { ChannelEvent } from '@weir/core';
import type { InputGate } from '../network/input-gate.js';

type Barrier = Extract<ChannelEvent, { type: 'CheckpointBarrier' }>;

/**
 * Decides when a task with several input channels has seen barrier n everywhere. In
 * EXACTLY_ONCE mode a channel that delivered barrier n is blocked until all have (Flink's
 * aligning CheckpointBarrierHandler); in AT_LEAST_ONCE mode barriers are only counted
 * (CheckpointBarrierTracker). Finished channels count as aligned.
 *
 * Checkpoint n is given up, its channels unblocked and `onCanceled(n)` called once (the task
 * sends a CancelCheckpointMarker on), when a CancelCheckpointMarker for n arrives (an upstream
 * task declined n), when the JobManager aborts n (`abort`), or when a newer barrier or marker
 * overtakes it. Barriers of a checkpoint given up or older than the current one are ignored.
 */
export class CheckpointBarrierHandler {
  private currentId = -1;
  private barrier: Barrier | undefined;
  private readonly seen = new Set<number>();
  private startedAt = 0;
  private done = true;
  /** checkpoints newer than the current one that the JobManager aborted before their barriers came */
  private readonly abortedAhead = new Set<number>();

  constructor(
    private readonly gate: InputGate,
    private readonly exactlyOnce: boolean,
    private readonly onAligned: (barrier: Barrier, alignmentMs: number) => void,
    private readonly onCanceled: (checkpointId: number) => void = () => {},
  ) {}

  /** The checkpoint being aligned, if any (for tests and metrics). */
  get aligning(): number | undefined {
    return this.done ? undefined : this.currentId;
  }

  onBarrier(barrier: Barrier, channel: number): void {
    if (barrier.checkpointId < this.currentId) return; // late barrier of an older checkpoint
    if (barrier.checkpointId > this.currentId) {
      if (this.abortedAhead.delete(barrier.checkpointId)) {
        this.cancel(barrier.checkpointId);
        return;
      }
      // a newer checkpoint overtakes an unfinished alignment: that one is given up
      if (!this.done) this.gate.unblockAll();
      this.currentId = barrier.checkpointId;
      this.barrier = barrier;
      this.seen.clear();
      this.startedAt = performance.now();
      this.done = false;
    }
    if (this.done) return;
    this.seen.add(channel);
    if (this.exactlyOnce) this.gate.block(channel);
    this.check();
  }

  /** An upstream task gave checkpoint `checkpointId` up: so does this one. */
  onCancelMarker(checkpointId: number): void {
    if (checkpointId < this.currentId || (checkpointId === this.currentId && this.done)) return;
    this.abortedAhead.delete(checkpointId);
    this.cancel(checkpointId);
  }

  /**
   * The JobManager aborted checkpoint `checkpointId`: an alignment of it ends now; one whose
   * barriers have not come yet is canceled when the first arrives.
   */
  abort(checkpointId: number): void {
    if (checkpointId === this.currentId && !this.done) this.cancel(checkpointId);
    else if (checkpointId > this.currentId) {
      this.abortedAhead.add(checkpointId);
      // bounded: ids only grow, so the oldest entries are the ones that can no longer matter
      if (this.abortedAhead.size > 64) this.abortedAhead.delete(Math.min(...this.abortedAhead));
    }
  }

  onEndOfPartition(): void {
    if (!this.done) this.check();
  }

  private cancel(checkpointId: number): void {
    if (!this.done) this.gate.unblockAll();
    this.currentId = checkpointId;
    this.barrier = undefined;
    this.seen.clear();
    this.done = true;
    this.onCanceled(checkpointId);
  }

  private check(): void {
    for (let ch = 0; ch < this.gate.numberOfChannels; ch++) {
      if (!this.seen.has(ch) && !this.gate.isChannelFinished(ch)) return;
    }
    this.done = true;
    this.gate.unblockAll();
    this.onAligned(this.barrier!, performance.now() - this.startedAt);
  }
}
