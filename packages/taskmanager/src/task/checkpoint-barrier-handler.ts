import { decodeEvent, type ChannelEvent } from '@weir/core/runtime';
import type { InputGate } from '../network/input-gate.js';

type Barrier = Extract<ChannelEvent, { type: 'CheckpointBarrier' }>;

/** What the handler asks of the task for unaligned checkpoints (FLIP-76). */
export interface UnalignedCheckpointing {
  /** 0: checkpoints are unaligned from their first barrier; else they align this long first */
  alignedTimeoutMs: number;
  /**
   * Take checkpoint `barrier` unaligned now: snapshot, send the barrier ahead of the output and
   * record the channels not in `passed` until their barrier (`channelDone`) or their end.
   */
  start(barrier: Barrier, alignmentMs: number, passed: readonly number[]): void;
  /** the barrier of the unaligned checkpoint arrived on (or the end of) `channel` */
  channelDone(checkpointId: number, channel: number): void;
}

/**
 * Decides when a task with several input channels has seen barrier n everywhere. In
 * EXACTLY_ONCE mode a channel that delivered barrier n is blocked until all have (Flink's
 * aligning CheckpointBarrierHandler); in AT_LEAST_ONCE mode barriers are only counted
 * (CheckpointBarrierTracker). Finished channels count as aligned.
 *
 * With unaligned checkpoints (Flink's SingleCheckpointBarrierHandler in its unaligned state)
 * barriers of checkpoints (not savepoints) are taken as they arrive, ahead of the frames queued
 * before them (`onPriorityEvent`): the first starts the checkpoint at once and nothing is
 * blocked; each channel's frames until its barrier become channel state. With an aligned
 * checkpoint timeout the checkpoint aligns first and turns unaligned when the timeout passes.
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
  /** the current checkpoint is being taken unaligned */
  private unalignedNow = false;
  private timer: NodeJS.Timeout | undefined;
  /** checkpoints newer than the current one that the JobManager aborted before their barriers came */
  private readonly abortedAhead = new Set<number>();

  constructor(
    private readonly gate: InputGate,
    private readonly exactlyOnce: boolean,
    private readonly onAligned: (barrier: Barrier, alignmentMs: number) => void,
    private readonly onCanceled: (checkpointId: number) => void = () => {},
    private readonly unaligned?: UnalignedCheckpointing,
  ) {}

  /** The checkpoint being aligned, if any (for tests and metrics). */
  get aligning(): number | undefined {
    return this.done ? undefined : this.currentId;
  }

  /**
   * An event frame as it arrives, before the frames queued ahead of it are read. True when it
   * was handled here and is not to be queued: barriers of unaligned checkpoints and cancel
   * markers overtake the data (Flink's priority events). Only called with unaligned checkpoints on.
   */
  onPriorityEvent(bytes: Uint8Array, channel: number): boolean {
    const e = decodeEvent(bytes);
    if (e.type === 'CancelCheckpointMarker') {
      this.onCancelMarker(e.checkpointId);
      return true;
    }
    if (e.type !== 'CheckpointBarrier' || e.isSavepoint) return false;
    if (this.unaligned!.alignedTimeoutMs === 0) {
      this.onBarrier(e, channel);
      return true;
    }
    // aligned first: the barrier stays in order, but the timeout runs from its arrival (it may
    // wait behind queued buffers before it is read); once the checkpoint went unaligned, its
    // arrival ends the channel's recording, and reading it later changes nothing
    if (e.checkpointId > this.currentId) this.begin(e);
    else if (e.checkpointId === this.currentId && this.unalignedNow && !this.done)
      this.unalignedBarrier(channel);
    return false;
  }

  onBarrier(barrier: Barrier, channel: number): void {
    if (barrier.checkpointId < this.currentId) return; // late barrier of an older checkpoint
    if (barrier.checkpointId > this.currentId) {
      if (!this.begin(barrier)) return;
      if (this.unaligned?.alignedTimeoutMs === 0 && !barrier.isSavepoint) {
        // every channel, this one included, records what was in flight before its barrier
        this.goUnaligned();
        if (!this.done) this.unalignedBarrier(channel);
        return;
      }
    }
    if (this.done) return;
    if (this.unalignedNow) {
      this.unalignedBarrier(channel);
      return;
    }
    this.seen.add(channel);
    if (this.exactlyOnce) this.gate.block(channel);
    this.check();
  }

  /**
   * Checkpoint `barrier` starts here (its first barrier arrived or was read); false when the
   * JobManager already aborted it. With an aligned timeout, the timer starts now.
   */
  private begin(barrier: Barrier): boolean {
    if (this.abortedAhead.delete(barrier.checkpointId)) {
      this.cancel(barrier.checkpointId);
      return false;
    }
    // a newer checkpoint overtakes an unfinished one: that one is given up
    if (!this.done) {
      if (this.unalignedNow) this.onCanceled(this.currentId);
      this.gate.unblockAll();
    }
    clearTimeout(this.timer);
    this.currentId = barrier.checkpointId;
    this.barrier = barrier;
    this.seen.clear();
    this.startedAt = performance.now();
    this.done = false;
    this.unalignedNow = false;
    const timeout = this.unaligned?.alignedTimeoutMs ?? 0;
    if (timeout > 0 && !barrier.isSavepoint) {
      const id = barrier.checkpointId;
      this.timer = setTimeout(() => {
        if (this.currentId === id && !this.done && !this.unalignedNow) this.goUnaligned();
      }, timeout);
    }
    return true;
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
    if (this.done) return;
    if (this.unalignedNow) this.checkUnaligned();
    else this.check();
  }

  /** The task ends: no timer may outlive it. */
  close(): void {
    clearTimeout(this.timer);
  }

  private cancel(checkpointId: number): void {
    if (!this.done) this.gate.unblockAll();
    clearTimeout(this.timer);
    this.currentId = checkpointId;
    this.barrier = undefined;
    this.seen.clear();
    this.done = true;
    this.unalignedNow = false;
    this.onCanceled(checkpointId);
  }

  /** The checkpoint turns unaligned (at its first barrier, or when the aligned timeout passed). */
  private goUnaligned(): void {
    this.unalignedNow = true;
    this.gate.unblockAll();
    this.unaligned!.start(this.barrier!, performance.now() - this.startedAt, [...this.seen]);
    this.checkUnaligned();
  }

  private unalignedBarrier(channel: number): void {
    if (this.seen.has(channel)) return;
    this.seen.add(channel);
    this.unaligned!.channelDone(this.currentId, channel);
    this.checkUnaligned();
  }

  private checkUnaligned(): void {
    let all = true;
    for (let ch = 0; ch < this.gate.numberOfChannels; ch++) {
      if (this.seen.has(ch)) continue;
      if (this.gate.isChannelFinished(ch)) {
        this.seen.add(ch);
        this.unaligned!.channelDone(this.currentId, ch);
      } else all = false;
    }
    if (!all) return;
    this.done = true;
    clearTimeout(this.timer);
  }

  private check(): void {
    for (let ch = 0; ch < this.gate.numberOfChannels; ch++) {
      if (!this.seen.has(ch) && !this.gate.isChannelFinished(ch)) return;
    }
    this.done = true;
    clearTimeout(this.timer);
    this.gate.unblockAll();
    this.onAligned(this.barrier!, performance.now() - this.startedAt);
  }
}
