import type { ChannelEvent } from '@weir/core';
import type { InputGate } from '../network/input-gate.js';

type Barrier = Extract<ChannelEvent, { type: 'CheckpointBarrier' }>;

/**
 * Decides when a task with several input channels has seen barrier n everywhere. In
 * EXACTLY_ONCE mode a channel that delivered barrier n is blocked until all have (Flink's
 * aligning CheckpointBarrierHandler); in AT_LEAST_ONCE mode barriers are only counted
 * (CheckpointBarrierTracker). Finished channels count as aligned.
 */
export class CheckpointBarrierHandler {
  private currentId = -1;
  private barrier: Barrier | undefined;
  private readonly seen = new Set<number>();
  private startedAt = 0;
  private done = true;

  constructor(
    private readonly gate: InputGate,
    private readonly exactlyOnce: boolean,
    private readonly onAligned: (barrier: Barrier, alignmentMs: number) => void,
  ) {}

  onBarrier(barrier: Barrier, channel: number): void {
    if (barrier.checkpointId < this.currentId) return; // late barrier of an older checkpoint
    if (barrier.checkpointId > this.currentId) {
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

  onEndOfPartition(): void {
    if (!this.done) this.check();
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
