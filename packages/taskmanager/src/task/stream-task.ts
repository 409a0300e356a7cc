/*
 * Why this file is longer than ~400 lines: a task's record loop (one-input and source) and its
 * lifecycle (start, end of data, finish, cancel, fail) share the task's state and run on one
 * thread in slices; they are one mailbox and are kept together. Checkpointing lives in
 * subtask-checkpoint-coordinator.ts, keyed state restore in task-state-restore.ts.
 */
import { InputStatus, type Collector, type SourceReader } from '@weir/api';
import { TWO_INPUT_KINDS, type StreamGraph, type StreamNode } from '@weir/api/internal';
import {
  createCheckpointStorage,
  decodeEvent,
  encodeRecords,
  parseJobContext,
  parseTaskRestoreState,
  storageFailureReason,
  type ChannelEvent,
  type TaskDeploymentDescriptor__Output,
  type TaskFailure,
  type TaskMetrics,
  type TaskRestoreState,
} from '@weir/core/runtime';
import { CheckpointBarrierHandler } from './checkpoint-barrier-handler.js';
import { decodeChannelState } from './channel-state.js';
import { ChannelStateCapture } from './channel-state-capture.js';
import type { KeyedStateBackend, RocksDBSettings } from '../state/keyed-state-backend.js';
import { createKeyedStateBackend, parseStateBackendType } from '../state/state-backends.js';
import { SubtaskCheckpointCoordinator, type CheckpointedTask } from './subtask-checkpoint-coordinator.js';
import { restoreKeyedState } from './task-state-restore.js';
import { localCheckpointCompleted, localRocksDBCheckpoints } from '../state/local-recovery-storage.js';
import { TaskIOMetrics } from './task-io-metrics.js';
import { InputGate } from '../network/input-gate.js';
import { BufferDebloater, type BufferDebloatSettings } from '../network/buffer-debloater.js';
import type { TimestampRuns } from '../network/buffer-format.js';
import { createRecordWriter, fanOut, type RecordTimestamp } from '../network/record-writer.js';
import { ResultPartition } from '../network/result-partition.js';
import { createOperator, type OperatorRuntime } from '../operators/operator-factory.js';
import { AfterRecordWatermarks, timestampingSourceOutput } from '../operators/event-time-operators.js';
import type { ProcessingTimeService } from '../eventtime/internal-timer-service.js';
import { StatusWatermarkValve, TwoInputWatermarkCombiner } from '../eventtime/watermark-valve.js';
import {
  DEFAULT_AUTO_WATERMARK_INTERVAL_MS,
  TimestampsAndWatermarks,
} from '../eventtime/watermark-generation.js';
import type { StreamOperator } from '../operators/stream-operator.js';
import type { FromWorker, ToWorker } from '../worker-protocol.js';
import { SplitRequestChannel } from './split-request-channel.js';
import type { SubtaskInfo } from './runtime-context.js';

/**
 * Records not yet processed, as network buffers (the rest of the buffer a task was working
 * through when an unaligned checkpoint started), so restore reads them like any other.
 */
function encodeAsBuffers(
  records: unknown[],
  timestamps: TimestampRuns | undefined,
  from: number,
): Array<{ kind: 'buffer'; bytes: Uint8Array }> {
  const frames: Array<{ kind: 'buffer'; bytes: Uint8Array }> = [];
  const rp = new ResultPartition({
    partitionId: 'channel-state',
    numberOfSubpartitions: 1,
    maxBacklog: Number.MAX_SAFE_INTEGER,
    send: (_p, _s, _k, bytes) => frames.push({ kind: 'buffer', bytes }),
    onAvailable: () => {},
  });
  rp.onRequest(0, Number.MAX_SAFE_INTEGER);
  let r = 0;
  for (let i = from; i < records.length; i++) {
    if (timestamps === undefined) {
      rp.emit(0, records[i]);
      continue;
    }
    while (r + 1 < timestamps.runs && timestamps.starts[r + 1]! <= i) r++;
    const t = timestamps.values[r]!;
    if (t === t) rp.emitTimestamped(0, records[i], t);
    else rp.emit(0, records[i]);
  }
  rp.flushAll();
  return frames;
}

export interface NetworkSettings {
  creditsPerChannel: number;
  maxBacklog: number;
  bufferTimeoutMs: number;
  /** buffer debloating of every input gate (none: full-size buffers) */
  debloat?: BufferDebloatSettings;
}

/** What a task needs from the worker thread that hosts it. */
export interface TaskHost {
  post(msg: FromWorker, transfer?: ArrayBuffer[]): void;
  registerPartition(partition: ResultPartition): void;
  unregisterPartition(partitionId: string): void;
  taskEnded(task: StreamTask): void;
  network: NetworkSettings;
  taskManagerId: string;
  /** where RocksDB keyed state lives (the TaskManager's local state directory, memory bounds) */
  rocksdb: RocksDBSettings;
  /** pipeline.auto-watermark-interval of the TaskManager; a job's own setting wins */
  autoWatermarkIntervalMs?: number;
}

type TerminalState = 'FINISHED' | 'CANCELED' | 'FAILED';

const SLICE_MS = 5;
/** records between two looks at the clock when they are cheap */
const MAX_CHUNK = 64;
const NOOP: Collector<unknown> = { collect: () => {} };

/**
 * One subtask: a chain of operators with its inputs and outputs. Records, events and
 * lifecycle steps run one at a time on the slot's thread (Flink's mailbox model), in
 * slices of a few milliseconds so the other tasks of the slot and the control messages get
 * their turn.
 */
export class StreamTask implements CheckpointedTask {
  readonly executionId: string;
  readonly partitions: ResultPartition[] = [];
  readonly operators: StreamOperator[] = [];
  readonly operatorIds: string[] = [];
  private barrierHandler: CheckpointBarrierHandler | undefined;
  /** unaligned checkpoints apply to this job (EXACTLY_ONCE with them enabled) */
  private readonly unalignedCheckpoints: boolean;
  /** the unaligned checkpoint whose in-flight input is being collected, if any */
  private capture: ChannelStateCapture | undefined;
  private readonly checkpoints: SubtaskCheckpointCoordinator;
  private gate: InputGate | undefined;
  reader: SourceReader<unknown> | undefined;
  private splitRequests: SplitRequestChannel | undefined;
  /** chained sinks whose writers bound what they hold (they make the task wait, as a full output does) */
  private boundedSinks: StreamOperator[] = [];
  private sinkWait: Promise<void> | undefined;
  private head: Collector<unknown> = NOOP;
  /** a two-input task: where records of the second input go */
  private head2: Collector<unknown> = NOOP;
  /** a two-input task: the input (0, 1) of each channel, and the channel's index within its input */
  private channelInput: Uint8Array | undefined;
  private channelInInput: Uint32Array | undefined;
  /** a two-input task: one valve per input, combined by a TwoInputWatermarkCombiner */
  private valves: [StatusWatermarkValve, StatusWatermarkValve] | undefined;
  /** counters of the record loop, sampled by metrics() */
  private readonly counters = new TaskIOMetrics();
  private state: 'DEPLOYING' | 'RUNNING' | 'ENDING' | TerminalState = 'DEPLOYING';
  private scheduled = false;
  private waitingForOutput = false;
  private wakeUp: (() => void) | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  /** the input gate's buffer debloating period */
  private debloatTimer: NodeJS.Timeout | undefined;
  private readonly info: SubtaskInfo;
  private readonly restore: TaskRestoreState | undefined;
  /** the input ended and the operators were finished; with a final checkpoint pending, the task still runs */
  dataEnded = false;
  /** every operator's finish() resolved (a sink's flush may be I/O): only then may the task close */
  private operatorsFinished = false;
  /** a checkpoint taken after the end of data completed (FLIP-147): the task may finish */
  private finalCheckpointDone = false;
  /**
   * The operators are finishing (endOfData until EndOfData went out): input waits, so a
   * barrier behind EndOfData is not sent on before the EndOfData it follows.
   */
  private finishingOperators = false;
  /** the event-time timestamp of the record passing down the chain */
  private readonly timestamp: RecordTimestamp = { value: undefined };
  /** watermarks of the input channels, combined */
  private valve: StatusWatermarkValve | undefined;
  /** a source's timestamps and watermarks (fromSource with a WatermarkStrategy) */
  private sourceWatermarks: TimestampsAndWatermarks<unknown> | undefined;
  private nextWatermarkEmit = Infinity;
  /** the timer of the next periodic watermark, shared by the waits until then */
  private dueTimer: { at: number; due: Promise<void> } | undefined;
  /** processing time for timers and periodic watermarks: callbacks run as mails on the task's thread */
  private readonly processingTimeService: ProcessingTimeService = {
    getCurrentProcessingTime: () => Date.now(),
    registerTimer: (time, callback) => {
      const h = setTimeout(() => this.runMail(() => callback(time)), Math.max(0, time - Date.now()));
      return { cancel: () => clearTimeout(h) };
    },
  };

  constructor(
    private readonly tdd: TaskDeploymentDescriptor__Output,
    private readonly graph: StreamGraph,
    private readonly host: TaskHost,
  ) {
    this.executionId = tdd.executionId;
    const task = `task ${tdd.vertexName} (${tdd.subtaskIndex + 1}/${tdd.parallelism})`;
    this.restore = parseTaskRestoreState(tdd.restoreJson, `restore state of ${task}`);
    const ctx = parseJobContext(tdd.jobContextJson, `job context of ${task}`);
    this.checkpoints = new SubtaskCheckpointCoordinator(tdd, this);
    this.unalignedCheckpoints = tdd.unalignedCheckpoints && tdd.checkpointingMode !== 'AT_LEAST_ONCE';
    this.info = {
      jobId: tdd.jobId,
      taskName: `${tdd.vertexName} (${tdd.subtaskIndex + 1}/${tdd.parallelism})`,
      subtaskIndex: tdd.subtaskIndex,
      parallelism: tdd.parallelism,
      maxParallelism: tdd.maxParallelism,
      attemptNumber: tdd.attemptNumber,
      workingDirectory: ctx.workingDirectory ?? process.cwd(),
      checkpointingEnabled: tdd.finalCheckpoint,
      ...(this.restore ? { restoredCheckpointId: this.restore.checkpointId } : {}),
      emitCollected: (records) => {
        const bytes = new Uint8Array(encodeRecords(records));
        host.post({ t: 'collected', executionId: this.executionId, bytes }, [bytes.buffer]);
      },
    };
  }

  get isRunning(): boolean {
    return this.state === 'RUNNING';
  }

  get isTerminal(): boolean {
    return this.state === 'FINISHED' || this.state === 'CANCELED' || this.state === 'FAILED';
  }

  /** The sampling hook: the slot worker calls it about once a second. */
  metrics(): TaskMetrics {
    let late = 0;
    for (const op of this.operators) late += op.numLateRecordsDropped?.() ?? 0;
    this.counters.numLateRecordsDropped = late;
    return this.counters.sample(
      this.executionId,
      this.gate,
      this.partitions,
      this.host.network.creditsPerChannel,
    );
  }

  async start(): Promise<void> {
    let restoreMs = 0;
    try {
      const t0 = performance.now();
      this.setUp();
      // a state directory that cannot be used is the TaskManager's problem, not the checkpoint's
      for (const op of this.operators) await op.keyedBackend?.open();
      try {
        if (this.restore)
          await restoreKeyedState(
            this.restore,
            this.tdd,
            this.operators.map((op, i) => ({ operatorId: this.operatorIds[i]!, backend: op.keyedBackend })),
          );
        await this.restoreChannelState();
      } catch (err) {
        void this.fail(err, 'restore');
        return;
      }
      restoreMs = this.restore ? Math.max(1, Math.round(performance.now() - t0)) : 0;
      for (let i = this.operators.length - 1; i >= 0; i--) await this.operators[i]!.open();
      if (this.reader) await this.reader.start?.();
      if (this.isTerminal) return;
      this.state = 'RUNNING';
      this.host.post({
        t: 'taskState',
        executionId: this.executionId,
        state: 'RUNNING',
        ...(restoreMs ? { restoreDurationMs: restoreMs } : {}),
      });
      this.openInputChannels();
      if (this.partitions.length > 0) {
        this.flushTimer = setInterval(
          () => this.partitions.forEach((p) => p.flushAll()),
          this.host.network.bufferTimeoutMs,
        );
      }
      const gate = this.gate;
      if (gate?.debloater) {
        const d = gate.debloater;
        const period = Math.max(10, this.host.network.debloat!.periodMs);
        // short periods until the first measurement: producers start with small buffers, and a
        // fast pipeline should not spend a whole period at them
        const first = Math.max(10, Math.round(period / 10));
        this.debloatTimer = setInterval(() => {
          gate.debloat(performance.now());
          if (d.throughput === d.throughput && first < period) {
            clearInterval(this.debloatTimer);
            this.debloatTimer = setInterval(() => gate.debloat(performance.now()), period);
          }
        }, first);
      }
      if (this.reader) void this.runSource();
      else this.schedule();
    } catch (err) {
      void this.fail(err);
    }
  }

  /** The keyed state backend the job chose (TaskDeploymentDescriptor.stateBackend) for one operator. */
  private createKeyedBackend(operatorId: string): KeyedStateBackend {
    return createKeyedStateBackend(
      parseStateBackendType(this.tdd.stateBackend, 'the task deployment'),
      this.host.rocksdb,
      {
        jobId: this.tdd.jobId,
        operatorId,
        subtaskIndex: this.tdd.subtaskIndex,
        attemptNumber: this.tdd.attemptNumber,
        maxParallelism: this.tdd.maxParallelism,
        parallelism: this.tdd.parallelism,
      },
      this.tdd.incrementalCheckpoints,
      this.keyedOperators,
      localRocksDBCheckpoints({
        jobId: this.tdd.jobId,
        operatorId,
        subtaskIndex: this.tdd.subtaskIndex,
        parallelism: this.tdd.parallelism,
        maxParallelism: this.tdd.maxParallelism,
      }),
    );
  }

  /** keyed operators in this task's chain: they share the slot's managed memory */
  private keyedOperators = 1;

  private nodeById(id: string): StreamNode {
    const node = this.graph.nodes.find((n) => n.id === id);
    if (!node)
      throw new Error(
        `Operator '${id}' is not in the job bundle; was the job file changed after submission?`,
      );
    return node;
  }

  private setUp(): void {
    const chain = this.tdd.operatorIds.map((id) => this.nodeById(id));
    const tail = chain[chain.length - 1]!;
    const writers: Collector<unknown>[] = [];
    const sideWriters = new Map<string, Collector<unknown>[]>();
    for (const rp of this.tdd.resultPartitions) {
      const edge = this.graph.edges.find((e) => e.sourceId === tail.id && e.targetId === rp.consumerVertexId);
      if (!edge) throw new Error(`No edge from '${tail.name}' to vertex ${rp.consumerVertexId}`);
      const description = `'${tail.name}' to '${this.graph.nodes.find((n) => n.id === edge.targetId)?.name ?? rp.consumerVertexId}'`;
      const partition = new ResultPartition({
        partitionId: rp.partitionId,
        numberOfSubpartitions: rp.numberOfSubpartitions,
        maxBacklog: this.host.network.maxBacklog,
        send: (partitionId, subpartition, kind, bytes) =>
          this.host.post({ t: 'frame', partitionId, subpartition, kind, bytes }, [
            bytes.buffer as ArrayBuffer,
          ]),
        onAvailable: () => this.onOutputAvailable(),
        description,
        // debloating consumers ask for their size when they connect; until then buffers stay small
        ...(this.host.network.debloat?.enabled
          ? { initialBufferSize: this.host.network.debloat.minBufferSize }
          : {}),
        // one call may emit without bound (a flatMap); what does not fit in memory waits on local disk
        spillDirectory: this.host.rocksdb.localDir,
      });
      this.partitions.push(partition);
      this.host.registerPartition(partition);
      // a forward edge's consumer i reads subpartition i only: the others would hold events
      // (barriers, watermarks, end of partition) nobody reads, stalling the task and its end
      if (edge.partitioner.type === 'forward') {
        const own = this.tdd.subtaskIndex % rp.numberOfSubpartitions;
        for (let s = 0; s < rp.numberOfSubpartitions; s++) if (s !== own) partition.onRelease(s);
      }
      const writer = createRecordWriter(
        partition,
        edge.partitioner.type,
        this.tdd.subtaskIndex,
        this.tdd.maxParallelism,
        edge.partitioner.keySelector,
        this.counters,
        description,
        this.timestamp,
      );
      if (edge.outputTag === undefined) writers.push(writer);
      else
        (sideWriters.get(edge.outputTag) ?? sideWriters.set(edge.outputTag, []).get(edge.outputTag)!).push(
          writer,
        );
    }
    let output: Collector<unknown> = writers.length > 0 ? fanOut(writers) : NOOP;
    const sideOutputs = new Map([...sideWriters].map(([tag, ws]) => [tag, fanOut(ws)]));
    const operatorNodes = chain[0]!.kind === 'source' ? chain.slice(1) : chain;
    const autoWatermarkIntervalMs = this.autoWatermarkIntervalMs();
    this.keyedOperators = operatorNodes.filter((n) => n.keySelector).length;
    for (let i = operatorNodes.length - 1; i >= 0; i--) {
      const runtime: OperatorRuntime = {
        timestamp: this.timestamp,
        processingTimeService: this.processingTimeService,
        sideOutput: (tagId) => sideOutputs.get(tagId),
        emitWatermark: (t) => this.emitWatermark(i + 1, t),
        emitWatermarkStatus: (idle) => this.emitWatermarkStatus(i + 1, idle),
        autoWatermarkIntervalMs,
      };
      const op = createOperator(
        operatorNodes[i]!,
        this.info,
        output,
        this.restore?.operators[operatorNodes[i]!.id]?.lists,
        () => this.createKeyedBackend(operatorNodes[i]!.id),
        runtime,
      );
      this.operators.unshift(op);
      if (op.isAvailable) this.boundedSinks.push(op);
      this.operatorIds.unshift(operatorNodes[i]!.id);
      output = op;
    }
    if (chain[0]!.kind === 'source') {
      const source = chain[0]!.transformation.source!;
      this.splitRequests = new SplitRequestChannel(
        (m) => this.host.post(m),
        this.executionId,
        chain[0]!.id,
        this.tdd.subtaskIndex,
        chain[0]!.name,
      );
      this.reader = source.createReader(
        this.info,
        this.restore?.operators[chain[0]!.id]?.splits,
        this.splitRequests,
      );
      const counters = this.counters;
      const next = output;
      const strategy = chain[0]!.transformation.watermarkStrategy;
      if (strategy) {
        const sink = new AfterRecordWatermarks({
          emitWatermark: (t) => this.emitWatermark(0, t),
          emitWatermarkStatus: (idle) => this.emitWatermarkStatus(0, idle),
        });
        const tw = (this.sourceWatermarks = new TimestampsAndWatermarks<unknown>(
          strategy,
          chain[0]!.name,
          () => Date.now(),
          sink,
          autoWatermarkIntervalMs,
        ));
        if (strategy.emitsWatermarks) this.nextWatermarkEmit = 0;
        // one generator for the subtask, or one per split when the reader names its splits
        this.head = timestampingSourceOutput(tw, sink, this.timestamp, next, counters);
      } else {
        this.head = {
          collect: (r) => {
            counters.recordsIn++;
            next.collect(r);
          },
        };
      }
    } else {
      this.head = output;
      const channels = this.tdd.inputChannels.length;
      const net = this.host.network;
      // what may queue per channel ahead of a barrier: the producer's backlog and open buffer,
      // the buffers the consumer granted credit for, and the one it is working on
      const debloater = net.debloat?.enabled
        ? new BufferDebloater(net.debloat, net.maxBacklog + 1 + net.creditsPerChannel + 1, performance.now())
        : undefined;
      this.gate = new InputGate(
        channels,
        (channel, credit, bufferSize) =>
          this.host.post({
            t: 'credit',
            executionId: this.executionId,
            channel,
            credit,
            ...(bufferSize !== undefined ? { bufferSize } : {}),
          }),
        debloater,
      );
      const taskSink = {
        emitWatermark: (t: number) => this.emitWatermark(0, t),
        emitWatermarkStatus: (idle: boolean) => this.emitWatermarkStatus(0, idle),
      };
      if (TWO_INPUT_KINDS.has(chain[0]!.kind)) this.setUpTwoInputs(chain[0]!, taskSink);
      else if (channels > 0) this.valve = new StatusWatermarkValve(channels, taskSink);
      this.barrierHandler = new CheckpointBarrierHandler(
        this.gate,
        this.tdd.checkpointingMode !== 'AT_LEAST_ONCE',
        (barrier, alignmentMs) => void this.checkpoints.checkpointState(barrier, alignmentMs),
        (checkpointId) => {
          this.endCapture(checkpointId);
          this.checkpoints.cancelDownstream(checkpointId);
        },
        this.unalignedCheckpoints
          ? {
              alignedTimeoutMs: this.tdd.alignedCheckpointTimeoutMs,
              start: (barrier, alignmentMs, passed) => this.startUnaligned(barrier, alignmentMs, passed),
              channelDone: (checkpointId, channel) => {
                const c = this.capture;
                if (c?.checkpointId === checkpointId) c.complete(channel, this.gate!.stopRecording(channel));
              },
            }
          : undefined,
      );
    }
    for (const p of this.partitions)
      this.host.post({ t: 'partitionReady', partitionId: p.partitionId, executionId: this.executionId });
  }

  /**
   * A two-input head: records go to `collect` or `collect2` by their channel's input, each
   * input has its own valve, and the task's watermark is the minimum of both (Flink's
   * StreamTwoInputProcessor). Barriers align and the input ends over all channels of both.
   */
  private setUpTwoInputs(
    node: StreamNode,
    sink: { emitWatermark(t: number): void; emitWatermarkStatus(idle: boolean): void },
  ): void {
    const op = this.operators[0]!;
    if (typeof op.collect2 !== 'function')
      throw new Error(`Operator '${node.name}' has two inputs but cannot take records of the second`);
    this.head2 = { collect: (r) => op.collect2!(r) };
    const n = this.tdd.inputChannels.length;
    const input = (this.channelInput = new Uint8Array(n));
    const local = (this.channelInInput = new Uint32Array(n));
    const counts = [0, 0];
    this.tdd.inputChannels.forEach((ch, i) => {
      const k = ch.inputIndex === 1 ? 1 : 0;
      input[i] = k;
      local[i] = counts[k]!++;
    });
    if (counts[0] === 0 || counts[1] === 0)
      throw new Error(
        `Operator '${node.name}' has two inputs but its task got channels for input ${counts[0] === 0 ? 1 : 0} only; the job graph and the deployment disagree`,
      );
    const combiner = new TwoInputWatermarkCombiner(sink);
    const valve = (i: 0 | 1): StatusWatermarkValve =>
      new StatusWatermarkValve(counts[i]!, {
        emitWatermark: (t) => combiner.inputWatermark(i, t),
        emitWatermarkStatus: (idle) => combiner.inputWatermarkStatus(i, idle),
      });
    this.valves = [valve(0), valve(1)];
  }

  private openInputChannels(): void {
    const bufferSize = this.gate?.initialBufferSize;
    this.tdd.inputChannels.forEach((ch, channel) =>
      this.host.post({
        t: 'openChannel',
        executionId: this.executionId,
        channel,
        partitionId: ch.partitionId,
        subpartition: ch.subpartitionIndex,
        producerAddress: ch.producerAddress,
        producerTaskManagerId: ch.producerTaskManagerId,
        credit: this.host.network.creditsPerChannel,
        ...(bufferSize !== undefined ? { bufferSize } : {}),
      }),
    );
    if (this.gate && this.gate.numberOfChannels === 0) void this.endOfData();
  }

  private outputAvailable(): boolean {
    for (const p of this.partitions) if (!p.isAvailable()) return false;
    for (const op of this.boundedSinks) {
      const wait = op.isAvailable!();
      if (wait) {
        if (wait !== this.sinkWait) {
          this.sinkWait = wait;
          void wait.then(() => {
            if (this.sinkWait === wait) this.sinkWait = undefined;
            this.onOutputAvailable();
          });
        }
        return false;
      }
    }
    return true;
  }

  private onOutputAvailable(): void {
    if (!this.outputAvailable()) return;
    this.counters.backPressureEnds(performance.now());
    if (this.waitingForOutput) {
      this.waitingForOutput = false;
      this.schedule();
    }
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  // ---- one-input processing, driven by arriving frames

  onFrame(channel: number, kind: 'buffer' | 'event', bytes: Uint8Array): void {
    if (this.state !== 'RUNNING' || !this.gate) return;
    // unaligned checkpoints: barriers and cancel markers overtake the frames queued before them
    if (
      kind === 'event' &&
      this.unalignedCheckpoints &&
      this.barrierHandler!.onPriorityEvent(bytes, channel)
    ) {
      this.schedule();
      return;
    }
    this.gate.onFrame(channel, kind, bytes);
    this.schedule();
  }

  // ---- unaligned checkpoints

  /**
   * Checkpoint `barrier` is taken unaligned now, between two records: what is in flight joins
   * its channel state, in order per channel: the rest of the buffer being processed, the part
   * of a record still arriving in fragments, the frames queued, then (for channels whose
   * barrier is still to come) what arrives until it. The state snapshot and the barrier's trip
   * ahead of the output happen in the same step (SubtaskCheckpointCoordinator).
   */
  private startUnaligned(
    barrier: Extract<ChannelEvent, { type: 'CheckpointBarrier' }>,
    alignmentMs: number,
    passed: readonly number[],
  ): void {
    const gate = this.gate!;
    const id = barrier.checkpointId;
    this.capture?.cancel();
    const capture = (this.capture = new ChannelStateCapture(id, gate.numberOfChannels));
    if (this.pending)
      capture.addInput(
        this.pendingChannel,
        encodeAsBuffers(this.pending, this.pendingTimestamps, this.pendingAt),
      );
    for (let c = 0; c < gate.numberOfChannels; c++) {
      // aligned first: what a passed channel queued is behind its barrier, after the checkpoint
      if (passed.includes(c)) {
        capture.complete(c);
        continue;
      }
      const frames = gate.inFlight(c);
      let end = frames.length;
      for (let i = 0; i < frames.length; i++) {
        const f = frames[i]!;
        if (f.kind !== 'event') continue;
        const e = decodeEvent(f.bytes);
        if (e.type === 'CheckpointBarrier' && e.checkpointId === id) {
          end = i;
          break;
        }
      }
      capture.addInput(c, end === frames.length ? frames : frames.slice(0, end));
      if (end < frames.length) capture.complete(c);
      else gate.startRecording(c);
    }
    void this.checkpoints.checkpointState(barrier, alignmentMs, capture);
  }

  /** Checkpoint `checkpointId` was given up: its in-flight input is no longer collected. */
  private endCapture(checkpointId: number): void {
    const c = this.capture;
    if (!c || c.checkpointId !== checkpointId) return;
    this.capture = undefined;
    c.cancel();
    for (let ch = 0; ch < this.gate!.numberOfChannels; ch++) this.gate!.stopRecording(ch);
  }

  /**
   * Restore of an unaligned checkpoint: its input channel state is queued ahead of each
   * channel's first frame, its output channel state ahead of anything the task emits.
   */
  private async restoreChannelState(): Promise<void> {
    const handle = this.restore?.operators[this.tdd.operatorIds[0]!]?.channelState;
    if (!handle) return;
    const storage = createCheckpointStorage(this.restore!.storage);
    const entries = decodeChannelState(await storage.read(handle.path, handle.sha256), handle.path);
    for (const e of entries) {
      if (e.side === 'input') {
        if (!this.gate)
          throw new Error(
            `Channel state ${handle.path} has input channel data, but task ${this.info.taskName} has no inputs; the job's topology changed`,
          );
        this.gate.restoreFrame(e.index, e.kind, e.bytes);
      } else {
        const p = this.partitions[e.partition];
        if (!p)
          throw new Error(
            `Channel state ${handle.path} names output ${e.partition}, but task ${this.info.taskName} has ${this.partitions.length}; the job's topology changed`,
          );
        p.restoreFrame(e.index, e.kind, e.bytes);
      }
    }
  }

  private schedule(): void {
    if (this.scheduled || this.state !== 'RUNNING' || !this.gate) return;
    this.scheduled = true;
    setImmediate(this.processSlice);
  }

  private readonly inputHandler = {
    onRecords: (records: unknown[], channel: number, timestamps?: TimestampRuns): void => {
      this.counters.recordsIn += records.length;
      this.pendingInput = this.channelInput === undefined ? 0 : this.channelInput[channel]!;
      this.pendingChannel = channel;
      if (this.pendingInput === 0) this.operators[0]?.prefetch?.(records);
      this.pending = records;
      this.pendingTimestamps = timestamps;
      this.pendingAt = 0;
      this.pendingRun = 0;
    },
    onEvent: (event: ChannelEvent, channel: number): void => {
      const valves = this.valves;
      if (event.type === 'Watermark') {
        if (valves)
          valves[this.channelInput![channel]!]!.inputWatermark(
            event.timestamp,
            this.channelInInput![channel]!,
          );
        else this.valve!.inputWatermark(event.timestamp, channel);
      } else if (event.type === 'WatermarkStatus') {
        if (valves)
          valves[this.channelInput![channel]!]!.inputWatermarkStatus(
            event.idle,
            this.channelInInput![channel]!,
          );
        else this.valve!.inputWatermarkStatus(event.idle, channel);
      } else if (event.type === 'CheckpointBarrier') this.barrierHandler!.onBarrier(event, channel);
      else if (event.type === 'CancelCheckpointMarker')
        this.barrierHandler!.onCancelMarker(event.checkpointId);
      else if (event.type === 'EndOfPartition') this.barrierHandler!.onEndOfPartition();
      else if (event.type === 'EndOfData' && this.gate!.isEndOfData()) void this.endOfData();
    },
  };

  /** Records of the current buffer not yet pushed down the chain. */
  private pending: unknown[] | undefined;
  /** their timestamps as runs, when the buffer carried any */
  private pendingTimestamps: TimestampRuns | undefined;
  private pendingAt = 0;
  /** the run of pendingTimestamps that record pendingAt is in */
  private pendingRun = 0;
  /** the input (0, 1) the current buffer came from */
  private pendingInput = 0;
  /** the input channel the current buffer came from */
  private pendingChannel = 0;
  /** records pushed down the chain between two looks at the clock (adapts to the records' cost) */
  private chunk = MAX_CHUNK;

  /**
   * Pushes the current buffer's records down the chain until the slice is used up or the
   * output is full, so one large buffer behind a slow operator does not hold off cancellation
   * or checkpoints. True when the buffer is done.
   */
  private drainPending(deadline: number): boolean {
    const records = this.pending!;
    const timestamps = this.pendingTimestamps;
    const head = this.pendingInput === 0 ? this.head : this.head2;
    const slot = this.timestamp;
    let i = this.pendingAt;
    slot.value = undefined;
    let last = performance.now();
    while (i < records.length) {
      const stop = Math.min(records.length, i + this.chunk);
      if (timestamps === undefined) for (; i < stop; i++) head.collect(records[i]);
      else {
        // run by run: the timestamp is set once per run, not per record (an operator that
        // emits with a timestamp of its own puts the slot back), so a timestamp that is no
        // small integer (epoch milliseconds) is boxed once per run
        const { runs, starts, values } = timestamps;
        let r = this.pendingRun;
        while (i < stop) {
          const runEnd = r + 1 < runs ? starts[r + 1]! : records.length;
          const t = values[r]!;
          slot.value = t === t ? t : undefined;
          const e = runEnd < stop ? runEnd : stop;
          for (; i < e; i++) head.collect(records[i]);
          if (i === runEnd) r++;
        }
        this.pendingRun = r;
      }
      const now = performance.now();
      // records that take long (1 ms of work each): smaller chunks, so the slice ends on time
      // and the thread's other work (checkpoint I/O, barriers, timers) is not held up for 64 of them
      if (now - last > 1) this.chunk = this.chunk > 1 ? this.chunk >> 1 : 1;
      else if (this.chunk < MAX_CHUNK) this.chunk <<= 1;
      last = now;
      if (i < records.length && (now > deadline || !this.outputAvailable())) {
        this.pendingAt = i;
        return false;
      }
    }
    this.pending = undefined;
    this.pendingTimestamps = undefined;
    slot.value = undefined;
    return true;
  }

  // ---- watermarks

  /** pipeline.auto-watermark-interval: the job's (setAutoWatermarkInterval), else the TaskManager's, else 200 ms */
  private autoWatermarkIntervalMs(): number {
    const v = this.graph.autoWatermarkIntervalMs ?? this.host.autoWatermarkIntervalMs;
    return typeof v === 'number' && v > 0 ? v : DEFAULT_AUTO_WATERMARK_INTERVAL_MS;
  }

  /**
   * A watermark from the input (index 0) or made by operator index-1: each operator from
   * `index` on handles it in chain order (keyed ones fire their due timers, emitting records
   * down the chain first), then it goes to every output, behind the records before it.
   */
  private emitWatermark(index: number, timestamp: number): void {
    // the watermark of the task's input (combined over its channels, or the source's own)
    if (index === 0) this.counters.currentInputWatermark = timestamp;
    const ops = this.operators;
    for (let i = index; i < ops.length; i++) {
      const op = ops[i]!;
      if (op.processWatermark !== undefined && !op.processWatermark(timestamp)) return;
    }
    for (const p of this.partitions) p.broadcastEvent({ type: 'Watermark', timestamp });
  }

  private emitWatermarkStatus(index: number, idle: boolean): void {
    const ops = this.operators;
    for (let i = index; i < ops.length; i++) {
      const op = ops[i]!;
      if (op.processWatermarkStatus !== undefined && !op.processWatermarkStatus(idle)) return;
    }
    for (const p of this.partitions) p.broadcastEvent({ type: 'WatermarkStatus', idle });
  }

  /** A timer or periodic callback, run on the task's thread between records while it runs. */
  private runMail(mail: () => void): void {
    if (this.state !== 'RUNNING' || this.dataEnded) return;
    try {
      mail();
    } catch (err) {
      void this.fail(err);
    }
  }

  /** A source's periodic watermark: when due, and when to wake for the next one. */
  private sourceWatermarkTick(): void {
    const tw = this.sourceWatermarks;
    if (!tw || this.nextWatermarkEmit === Infinity) return;
    const now = Date.now();
    if (now >= this.nextWatermarkEmit) this.nextWatermarkEmit = tw.onProcessingTime(now);
  }

  /**
   * Resolves when the next periodic watermark of a source is due (never without one). Every
   * wait for output or input until then shares one timer: a source under backpressure waits
   * many times per watermark interval.
   */
  private watermarkDue(): Promise<void> | undefined {
    const at = this.nextWatermarkEmit;
    if (!this.sourceWatermarks || at === Infinity) return undefined;
    if (this.dueTimer?.at === at) return this.dueTimer.due;
    // a fired timer is not shared: a wait after it (the clock not yet at `at`) gets a new one
    const timer = {
      at,
      due: new Promise<void>((resolve) =>
        setTimeout(
          () => {
            if (this.dueTimer === timer) this.dueTimer = undefined;
            resolve();
          },
          Math.max(1, at - Date.now()),
        ).unref?.(),
      ),
    };
    this.dueTimer = timer;
    return timer.due;
  }

  private readonly processSlice = (): void => {
    this.scheduled = false;
    const gate = this.gate;
    if (this.state !== 'RUNNING' || !gate) return;
    const start = performance.now();
    try {
      const deadline = start + SLICE_MS;
      // the next frame is read only once the current buffer is done, so order is kept
      while (this.outputAvailable() && !this.finishingOperators) {
        if (this.pending && !this.drainPending(deadline)) break;
        if (performance.now() > deadline || !gate.pollNext(this.inputHandler)) break;
      }
      gate.flushCredits();
      if (this.pending) {
        if (this.outputAvailable()) this.schedule();
        else this.waitForOutput();
      } else if (gate.isFinished()) {
        if (!this.dataEnded) void this.endOfData();
        else this.maybeFinish();
      } else if (!this.outputAvailable()) {
        this.waitForOutput();
      } else if (gate.hasData()) {
        this.schedule();
      } else {
        gate.markWaiting(performance.now());
      }
    } catch (err) {
      void this.fail(err);
    }
    this.counters.busyMs += performance.now() - start;
  };

  private waitForOutput(): void {
    this.waitingForOutput = true;
    this.counters.backPressureBegins(performance.now());
  }

  // ---- sources, driven by output availability

  private async runSource(): Promise<void> {
    const reader = this.reader!;
    try {
      for (;;) {
        if (this.state !== 'RUNNING') return;
        if (!this.outputAvailable()) {
          this.counters.backPressureBegins(performance.now());
          const due = this.watermarkDue();
          await Promise.race([
            new Promise<void>((resolve) => (this.wakeUp = resolve)),
            ...(due ? [due] : []),
          ]);
          this.sourceWatermarkTick();
          continue;
        }
        const start = performance.now();
        const deadline = start + SLICE_MS;
        let status: InputStatus;
        let polls = 0;
        // output is checked after every poll: what a source emits past a full backlog queues
        // ahead of the next checkpoint barrier
        do {
          status = reader.pollNext(this.head);
        } while (
          status === InputStatus.MORE_AVAILABLE &&
          this.outputAvailable() &&
          (++polls & 7 || performance.now() < deadline)
        );
        this.counters.busyMs += performance.now() - start;
        this.sourceWatermarkTick();
        if (status === InputStatus.END_OF_INPUT) break;
        if (status === InputStatus.NOTHING_AVAILABLE) {
          const due = this.watermarkDue();
          await Promise.race([
            reader.isAvailable(),
            new Promise<void>((resolve) => (this.wakeUp = resolve)),
            ...(due ? [due] : []),
          ]);
        } else {
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
      await this.endOfData();
    } catch (err) {
      await this.fail(err);
    }
  }

  // ---- checkpoints

  /** A source's turn: it runs between two polls of the reader, so the position is exact. */
  triggerCheckpoint(barrier: Extract<ChannelEvent, { type: 'CheckpointBarrier' }>): void {
    const checkpointId = barrier.checkpointId;
    if (this.state !== 'RUNNING' || !this.reader) {
      this.host.post({
        t: 'checkpointDecline',
        executionId: this.executionId,
        checkpointId,
        reason: `task is ${this.state}, not a running source`,
      });
      return;
    }
    // a split request under way is answered first, so its splits are in this checkpoint
    const ready = this.reader.checkpointReady?.();
    if (ready) void ready.then(() => this.checkpoints.checkpointState(barrier, 0));
    else void this.checkpoints.checkpointState(barrier, 0);
  }

  /** The JobManager answered a split request of this source task. */
  onSplitAssignment(msg: Extract<ToWorker, { t: 'splitAssignment' }>): void {
    this.splitRequests?.onAssignment(msg);
  }

  /** The JobManager's word on a checkpoint (see SubtaskCheckpointCoordinator.notifyCheckpoint). */
  notifyCheckpoint(checkpointId: number, completed: boolean, final = false): void {
    this.checkpoints.notifyCheckpoint(checkpointId, completed, final);
    if (completed) localCheckpointCompleted(this.tdd.checkpointStorage, this.tdd.jobId, checkpointId);
  }

  // ---- CheckpointedTask

  post(msg: FromWorker): void {
    this.host.post(msg);
  }

  finalCheckpointCompleted(): void {
    this.finalCheckpointDone = true;
    this.maybeFinish();
  }

  abortAlignment(checkpointId: number): void {
    this.barrierHandler?.abort(checkpointId);
  }

  // ---- lifecycle

  /**
   * No more records will come: finish the operators head first (they emit what they buffer)
   * and tell the consumers. With checkpointing on, the task keeps running until a checkpoint
   * taken after this point completes, so everything it emitted is committed (FLIP-147).
   */
  private async endOfData(): Promise<void> {
    if (this.state !== 'RUNNING' || this.dataEnded) return;
    this.finishingOperators = true;
    try {
      // the end of a bounded source: the final watermark fires every event-time window and timer
      if (this.reader) {
        if (this.sourceWatermarks) this.sourceWatermarks.endInput();
        else this.emitWatermark(0, Infinity);
      }
      this.dataEnded = true;
      for (const op of this.operators) await op.finish();
      this.operatorsFinished = true;
      for (const p of this.partitions) p.broadcastEvent({ type: 'EndOfData' });
    } catch (err) {
      await this.fail(err);
      return;
    } finally {
      this.finishingOperators = false;
    }
    this.schedule();
    if (this.tdd.finalCheckpoint)
      this.host.post({ t: 'taskState', executionId: this.executionId, state: 'RUNNING', endOfData: true });
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if (this.state !== 'RUNNING' || !this.dataEnded || !this.operatorsFinished) return;
    if (this.tdd.finalCheckpoint && !this.finalCheckpointDone) return;
    if (this.gate && !this.gate.isFinished()) return;
    void this.finishTask();
  }

  /** Sends end-of-partition, waits until all output left, closes the operators. */
  private async finishTask(): Promise<void> {
    if (this.state !== 'RUNNING') return;
    this.state = 'ENDING';
    try {
      for (const p of this.partitions) p.broadcastEvent({ type: 'EndOfPartition' });
      while (!this.partitions.every((p) => p.isDrained())) {
        if (this.isTerminal) return;
        await new Promise<void>((resolve) => setTimeout(resolve, 5));
      }
      await this.closeAll();
      this.terminate('FINISHED');
    } catch (err) {
      await this.fail(err);
    }
  }

  async cancel(): Promise<void> {
    if (this.isTerminal) return;
    this.state = 'CANCELED';
    this.wakeUp?.();
    await this.closeAll().catch(() => {});
    this.terminate('CANCELED');
  }

  async fail(err: unknown, domain: 'user' | 'restore' = 'user'): Promise<void> {
    if (this.isTerminal) return;
    this.state = 'FAILED';
    this.wakeUp?.();
    await this.closeAll().catch(() => {});
    const e = err instanceof Error ? err : new Error(String(err));
    const failure: TaskFailure = {
      vertexName: this.tdd.vertexName,
      subtaskIndex: this.tdd.subtaskIndex,
      taskManagerId: this.host.taskManagerId,
      message: e.message,
      stack: e.stack ?? e.message,
      domain,
      reason: storageFailureReason(e) ?? '',
    };
    this.terminate('FAILED', failure);
  }

  private async closeAll(): Promise<void> {
    clearInterval(this.flushTimer);
    clearInterval(this.debloatTimer);
    let first: unknown;
    for (const op of this.operators) {
      try {
        await op.close();
      } catch (e) {
        first ??= e;
      }
    }
    try {
      await this.reader?.close?.();
    } catch (e) {
      first ??= e;
    }
    // keyed state lives as long as the attempt: a RocksDB database is closed and deleted
    for (const op of this.operators) {
      try {
        await op.keyedBackend?.dispose();
      } catch (e) {
        first ??= e;
      }
    }
    if (first) throw first;
  }

  private terminate(state: TerminalState, failure?: TaskFailure): void {
    this.state = state;
    clearInterval(this.flushTimer);
    clearInterval(this.debloatTimer);
    this.barrierHandler?.close();
    this.capture?.cancel();
    for (let i = 0; i < this.tdd.inputChannels.length; i++) {
      this.host.post({ t: 'closeChannel', executionId: this.executionId, channel: i });
    }
    for (const p of this.partitions) {
      this.host.unregisterPartition(p.partitionId);
      p.close();
    }
    this.host.post({ t: 'metrics', metrics: [this.metrics()] });
    this.host.post({ t: 'taskState', executionId: this.executionId, state, ...(failure ? { failure } : {}) });
    this.host.taskEnded(this);
  }
}
