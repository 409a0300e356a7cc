import { InputStatus, type Collector, type SourceReader } from '@weir/api';
import type { StreamGraph, StreamNode } from '@weir/api/internal';
import { randomUUID } from 'node:crypto';
import {
  StorageError,
  childLocation,
  computeKeyGroupRangeForOperatorIndex,
  createCheckpointStorage,
  decodeRecords,
  encodeRecords,
  isWithinLocation,
  parseStorageLocation,
  storageFailureReason,
  type ChannelEvent,
  type CheckpointStorage,
  type TaskDeploymentDescriptor__Output,
  type TaskFailure,
  type TaskMetrics,
} from '@weir/core';
import { CheckpointBarrierHandler } from './checkpoint-barrier-handler.js';
import type {
  IncrementalSnapshotMaterializer,
  KeyedStateBackend,
  KeyedStateSnapshotMaterializer,
  RocksDBSettings,
} from '../state/keyed-state-backend.js';
import {
  isIncrementalHandle,
  restoreIncrementalState,
  type IncrementalKeyedHandle,
} from '../state/incremental-snapshot.js';
import { createKeyedStateBackend, parseStateBackendType } from '../state/state-backends.js';
import type { OperatorListSnapshot } from '../state/operator-state-backend.js';

/** The keyed state of one old subtask in the canonical format: one file, an index of its key groups. */
interface FullKeyedHandle {
  path: string;
  sha256: string;
  index: Record<string, [number, number]>;
  kinds: Record<string, string>;
}

/** What the JobManager sends a restored task (see RestorePlan in the JobManager). */
interface TaskRestoreState {
  storage: string;
  checkpointId: number;
  operators: Record<
    string,
    {
      splits?: unknown[];
      lists?: OperatorListSnapshot;
      keyed?: Array<FullKeyedHandle | IncrementalKeyedHandle>;
    }
  >;
}
import { InputGate } from '../network/input-gate.js';
import { createRecordWriter, fanOut } from '../network/record-writer.js';
import { ResultPartition } from '../network/result-partition.js';
import { createOperator } from '../operators/operator-factory.js';
import type { StreamOperator } from '../operators/stream-operator.js';
import type { FromWorker } from '../worker-protocol.js';
import type { SubtaskInfo } from './runtime-context.js';

export interface NetworkSettings {
  creditsPerChannel: number;
  maxBacklog: number;
  bufferTimeoutMs: number;
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
}

type TerminalState = 'FINISHED' | 'CANCELED' | 'FAILED';

const SLICE_MS = 5;
const NOOP: Collector<unknown> = { collect: () => {} };

/**
 * One subtask: a chain of operators with its inputs and outputs. Records, events and
 * lifecycle steps run one at a time on the slot's thread (Flink's mailbox model), in
 * slices of a few milliseconds so the other tasks of the slot and the control messages get
 * their turn.
 */
export class StreamTask {
  readonly executionId: string;
  private readonly partitions: ResultPartition[] = [];
  private readonly operators: StreamOperator[] = [];
  private readonly operatorIds: string[] = [];
  private barrierHandler: CheckpointBarrierHandler | undefined;
  private storage: CheckpointStorage | undefined;
  private gate: InputGate | undefined;
  private reader: SourceReader<unknown> | undefined;
  private head: Collector<unknown> = NOOP;
  private readonly counters = { recordsIn: 0, recordsOut: 0 };
  private state: 'DEPLOYING' | 'RUNNING' | 'ENDING' | TerminalState = 'DEPLOYING';
  private scheduled = false;
  private waitingForOutput = false;
  private wakeUp: (() => void) | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly info: SubtaskInfo;
  private readonly restore: TaskRestoreState | undefined;
  /** the input ended and the operators were finished; with a final checkpoint pending, the task still runs */
  private dataEnded = false;
  /** the first checkpoint taken after the end of data: once it completes, the task may finish */
  private finalCheckpointId: number | undefined;
  private finalCheckpointCompleted = false;
  /** checkpoints aborted while their files were still being written: those files are removed */
  private readonly abortedCheckpoints = new Set<number>();
  /** notifications run one after another, in order */
  private notifications: Promise<void> = Promise.resolve();
  /** the newest checkpoint whose completion was handled */
  private lastCompletedId = 0;

  constructor(
    private readonly tdd: TaskDeploymentDescriptor__Output,
    private readonly graph: StreamGraph,
    private readonly host: TaskHost,
  ) {
    this.executionId = tdd.executionId;
    this.restore = tdd.restoreJson ? (JSON.parse(tdd.restoreJson) as TaskRestoreState) : undefined;
    const ctx = JSON.parse(tdd.jobContextJson || '{}') as { workingDirectory?: string };
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

  get isTerminal(): boolean {
    return this.state === 'FINISHED' || this.state === 'CANCELED' || this.state === 'FAILED';
  }

  metrics(): TaskMetrics {
    return {
      executionId: this.executionId,
      recordsIn: this.counters.recordsIn,
      recordsOut: this.counters.recordsOut,
      bytesOut: this.partitions.reduce((s, p) => s + p.bytesOut, 0),
    };
  }

  async start(): Promise<void> {
    let restoreMs = 0;
    try {
      const t0 = performance.now();
      this.setUp();
      // a state directory that cannot be used is the TaskManager's problem, not the checkpoint's
      for (const op of this.operators) await op.keyedBackend?.open();
      try {
        await this.restoreKeyedState();
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
      },
      this.tdd.incrementalCheckpoints,
    );
  }

  /** Opens the keyed state backends, then reads the key groups of this subtask's range from the restored files, verifying checksums. */
  private async restoreKeyedState(): Promise<void> {
    const r = this.restore;
    if (!r) return;
    const range = computeKeyGroupRangeForOperatorIndex(
      this.tdd.maxParallelism,
      this.tdd.parallelism,
      this.tdd.subtaskIndex,
    );
    const storage = createCheckpointStorage(r.storage);
    for (let i = 0; i < this.operators.length; i++) {
      const handles = r.operators[this.operatorIds[i]!]?.keyed;
      const backend = this.operators[i]!.keyedBackend;
      if (!handles || !backend) continue;
      const incremental: IncrementalKeyedHandle[] = [];
      for (const h of handles) {
        if (isIncrementalHandle(h)) {
          incremental.push(h);
          continue;
        }
        const data = await storage.read(h.path, h.sha256);
        for (const [kg, [off, len]] of Object.entries(h.index)) {
          if (!range.contains(Number(kg))) continue;
          if (off + len > data.byteLength)
            throw new StorageError('CORRUPT', `Checkpoint file ${h.path} is truncated`);
          backend.restoreEntries(h.kinds, decodeRecords(data.subarray(off, off + len)));
        }
      }
      if (incremental.length > 0) {
        await restoreIncrementalState(r.storage, incremental, backend, (kg) => range.contains(kg));
        // a checkpoint of this job: the next checkpoints go on referencing its shared files; one of
        // another job (restored as a savepoint) is not ours to reference, so the next one is full
        const own = childLocation(parseStorageLocation(this.tdd.checkpointStorage), this.tdd.jobId);
        if (isWithinLocation(storage.location, own))
          backend.adoptRestoredChains?.(r.checkpointId, incremental, (kg) => range.contains(kg));
      }
    }
  }

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
        // one call may emit without bound (a flatMap); what does not fit in memory waits on local disk
        spillDirectory: this.host.rocksdb.localDir,
      });
      this.partitions.push(partition);
      this.host.registerPartition(partition);
      writers.push(
        createRecordWriter(
          partition,
          edge.partitioner.type,
          this.tdd.subtaskIndex,
          this.tdd.maxParallelism,
          edge.partitioner.keySelector,
          this.counters,
          description,
        ),
      );
    }
    let output: Collector<unknown> = writers.length > 0 ? fanOut(writers) : NOOP;
    const operatorNodes = chain[0]!.kind === 'source' ? chain.slice(1) : chain;
    for (let i = operatorNodes.length - 1; i >= 0; i--) {
      const op = createOperator(
        operatorNodes[i]!,
        this.info,
        output,
        this.restore?.operators[operatorNodes[i]!.id]?.lists,
        () => this.createKeyedBackend(operatorNodes[i]!.id),
      );
      this.operators.unshift(op);
      this.operatorIds.unshift(operatorNodes[i]!.id);
      output = op;
    }
    if (chain[0]!.kind === 'source') {
      const source = chain[0]!.transformation.source!;
      this.reader = source.createReader(this.info, this.restore?.operators[chain[0]!.id]?.splits);
      const counters = this.counters;
      const next = output;
      this.head = {
        collect: (r) => {
          counters.recordsIn++;
          next.collect(r);
        },
      };
    } else {
      this.head = output;
      this.gate = new InputGate(this.tdd.inputChannels.length, (channel, credit) =>
        this.host.post({ t: 'credit', executionId: this.executionId, channel, credit }),
      );
      this.barrierHandler = new CheckpointBarrierHandler(
        this.gate,
        this.tdd.checkpointingMode !== 'AT_LEAST_ONCE',
        (barrier, alignmentMs) => void this.performCheckpoint(barrier, alignmentMs),
        (checkpointId) => this.cancelDownstream(checkpointId),
      );
    }
    for (const p of this.partitions)
      this.host.post({ t: 'partitionReady', partitionId: p.partitionId, executionId: this.executionId });
  }

  private openInputChannels(): void {
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
      }),
    );
    if (this.gate && this.gate.numberOfChannels === 0) void this.endOfData();
  }

  private outputAvailable(): boolean {
    for (const p of this.partitions) if (!p.isAvailable()) return false;
    return true;
  }

  private onOutputAvailable(): void {
    if (!this.outputAvailable()) return;
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
    this.gate.onFrame(channel, kind, bytes);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.state !== 'RUNNING' || !this.gate) return;
    this.scheduled = true;
    setImmediate(this.processSlice);
  }

  private readonly inputHandler = {
    onRecords: (records: unknown[]): void => {
      this.counters.recordsIn += records.length;
      this.pending = records;
      this.pendingAt = 0;
    },
    onEvent: (event: ChannelEvent, channel: number): void => {
      if (event.type === 'CheckpointBarrier') this.barrierHandler!.onBarrier(event, channel);
      else if (event.type === 'CancelCheckpointMarker')
        this.barrierHandler!.onCancelMarker(event.checkpointId);
      else if (event.type === 'EndOfPartition') this.barrierHandler!.onEndOfPartition();
      else if (event.type === 'EndOfData' && this.gate!.isEndOfData()) void this.endOfData();
    },
  };

  /** Records of the current buffer not yet pushed down the chain. */
  private pending: unknown[] | undefined;
  private pendingAt = 0;

  /**
   * Pushes the current buffer's records down the chain until the slice is used up or the
   * output is full, so one large buffer behind a slow operator does not hold off cancellation
   * or checkpoints. True when the buffer is done.
   */
  private drainPending(deadline: number): boolean {
    const records = this.pending!;
    const head = this.head;
    let i = this.pendingAt;
    while (i < records.length) {
      const stop = Math.min(records.length, i + 64);
      for (; i < stop; i++) head.collect(records[i]);
      if (i < records.length && (performance.now() > deadline || !this.outputAvailable())) {
        this.pendingAt = i;
        return false;
      }
    }
    this.pending = undefined;
    return true;
  }

  private readonly processSlice = (): void => {
    this.scheduled = false;
    const gate = this.gate;
    if (this.state !== 'RUNNING' || !gate) return;
    try {
      const deadline = performance.now() + SLICE_MS;
      // the next frame is read only once the current buffer is done, so order is kept
      while (this.outputAvailable()) {
        if (this.pending && !this.drainPending(deadline)) break;
        if (performance.now() > deadline || !gate.pollNext(this.inputHandler)) break;
      }
      gate.flushCredits();
      if (this.pending) {
        if (this.outputAvailable()) this.schedule();
        else this.waitingForOutput = true;
      } else if (gate.isFinished()) {
        if (!this.dataEnded) void this.endOfData();
        else this.maybeFinish();
      } else if (!this.outputAvailable()) {
        this.waitingForOutput = true;
      } else if (gate.hasData()) {
        this.schedule();
      }
    } catch (err) {
      void this.fail(err);
    }
  };

  // ---- sources, driven by output availability

  private async runSource(): Promise<void> {
    const reader = this.reader!;
    try {
      for (;;) {
        if (this.state !== 'RUNNING') return;
        if (!this.outputAvailable()) {
          await new Promise<void>((resolve) => (this.wakeUp = resolve));
          continue;
        }
        const deadline = performance.now() + SLICE_MS;
        let status: InputStatus;
        let polls = 0;
        do {
          status = reader.pollNext(this.head);
        } while (
          status === InputStatus.MORE_AVAILABLE &&
          (++polls & 7 || (performance.now() < deadline && this.outputAvailable()))
        );
        if (status === InputStatus.END_OF_INPUT) break;
        if (status === InputStatus.NOTHING_AVAILABLE) {
          await Promise.race([reader.isAvailable(), new Promise<void>((resolve) => (this.wakeUp = resolve))]);
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
    void this.performCheckpoint(barrier, 0);
  }

  /**
   * Synchronous part: freeze the state (heap: serialize it; RocksDB: flush and take a
   * consistent view) and send the barrier on, in order after the records before it.
   * Asynchronous part: produce the keyed state bytes, write the files, then acknowledge.
   */
  private async performCheckpoint(
    barrier: Extract<ChannelEvent, { type: 'CheckpointBarrier' }>,
    alignmentMs: number,
  ): Promise<void> {
    const id = barrier.checkpointId;
    if (this.state !== 'RUNNING') return;
    const t0 = performance.now();
    const snapshots: Array<{
      operatorId: string;
      keyed?: KeyedStateSnapshotMaterializer;
      incremental?: IncrementalSnapshotMaterializer;
      operatorState?: unknown;
      lists?: OperatorListSnapshot;
    }> = [];
    // savepoints are always full and self-contained (the canonical format, no shared files)
    const incremental = this.tdd.incrementalCheckpoints && !barrier.isSavepoint;
    try {
      const position = this.reader?.snapshotState?.();
      if (position !== undefined)
        snapshots.push({ operatorId: this.tdd.operatorIds[0]!, operatorState: position });
      for (const op of this.operators) op.snapshotState?.(id);
      this.operators.forEach((op, i) => {
        const backend = op.keyedBackend;
        const incr =
          incremental && backend?.snapshotIncremental
            ? backend.snapshotIncremental(id, this.tdd.maxParallelism)
            : undefined;
        const keyed = incr ? undefined : backend?.snapshot(this.tdd.maxParallelism);
        const lists = op.operatorState?.snapshot();
        if (keyed || incr || lists)
          snapshots.push({
            operatorId: this.operatorIds[i]!,
            ...(keyed ? { keyed } : {}),
            ...(incr ? { incremental: incr } : {}),
            ...(lists ? { lists } : {}),
          });
      });
    } catch (err) {
      this.host.post({
        t: 'checkpointDecline',
        executionId: this.executionId,
        checkpointId: id,
        reason: `snapshot failed: ${(err as Error).message}`,
      });
      // in place of the barrier, so consumers aligning this checkpoint do not wait for it
      this.cancelDownstream(id);
      return;
    }
    for (const p of this.partitions) p.broadcastEvent(barrier);
    if (this.dataEnded && this.finalCheckpointId === undefined && !barrier.isSavepoint)
      this.finalCheckpointId = id;
    const syncMs = performance.now() - t0;
    const t1 = performance.now();
    try {
      // a savepoint names its own place; a checkpoint goes to the job's checkpoint storage
      const storage = barrier.storage
        ? createCheckpointStorage(barrier.storage)
        : (this.storage ??= createCheckpointStorage(this.tdd.checkpointStorage));
      const directory = barrier.directory || `${this.tdd.jobId}/chk-${id}`;
      const state: Record<string, unknown> = {};
      const written: string[] = [];
      let size = 0;
      // every materializer runs (each releases its view when done), even if one fails
      const keyedSnapshots = await Promise.all(snapshots.map((s) => s.keyed?.()));
      // incremental: new files go to <job>/shared/, named after checkpoint, operator and subtask
      const incrementalHandles = await Promise.all(
        snapshots.map((s) => {
          if (!s.incremental) return undefined;
          const stem = `${id}-${s.operatorId.replace(/[^A-Za-z0-9_.-]/g, '_')}-${this.tdd.subtaskIndex}-${randomUUID().slice(0, 8)}`;
          return s.incremental(async (name, data) => {
            const rel = `${this.tdd.jobId}/shared/${stem}-${name}`;
            written.push(rel);
            const h = await storage.write(rel, data);
            return { ...h, path: `../shared/${stem}-${name}` };
          });
        }),
      );
      for (const [i, s] of snapshots.entries()) {
        const entry: Record<string, unknown> = {};
        const incr = incrementalHandles[i];
        if (incr) {
          entry.keyed = incr;
          size += incr.checkpointedSize;
        }
        const keyed = keyedSnapshots[i];
        if (keyed) {
          // handle paths are relative to the checkpoint's directory, so a savepoint can be moved
          const file = `${s.operatorId}/${this.tdd.subtaskIndex}-${randomUUID()}`;
          written.push(`${directory}/${file}`);
          const handle = await storage.write(`${directory}/${file}`, keyed.data);
          entry.keyed = { ...handle, path: file, index: keyed.index, kinds: keyed.kinds };
          size += handle.size;
        }
        if (s.operatorState !== undefined) entry.operatorState = s.operatorState;
        if (s.lists) entry.lists = s.lists;
        if (Object.keys(entry).length > 0) state[s.operatorId] = entry;
      }
      if (this.abortedCheckpoints.has(id) || this.isTerminal) {
        // aborted (or the task ended) while writing: the coordinator already removed the directory
        await Promise.all(written.map((f) => storage.delete(f).catch(() => {})));
        return;
      }
      this.host.post({
        t: 'checkpointAck',
        executionId: this.executionId,
        checkpointId: id,
        stateJson: JSON.stringify(state),
        syncDurationMs: Math.round(syncMs),
        asyncDurationMs: Math.round(performance.now() - t1),
        alignmentDurationMs: Math.round(alignmentMs),
        stateSizeBytes: size,
      });
    } catch (err) {
      this.host.post({
        t: 'checkpointDecline',
        executionId: this.executionId,
        checkpointId: id,
        reason: (err as Error).message,
      });
      // consumers still aligning it need not wait for the other inputs
      this.cancelDownstream(id);
    }
  }

  /** Flink's CancelCheckpointMarker: consumers give the checkpoint up and release its alignment. */
  private cancelDownstream(checkpointId: number): void {
    if (this.state !== 'RUNNING') return;
    for (const p of this.partitions) p.broadcastEvent({ type: 'CancelCheckpointMarker', checkpointId });
  }

  /**
   * The JobManager's word on a checkpoint. Completion lets sinks commit and, after the end of
   * data, lets the task finish; savepoints are never announced as complete (they are not
   * restored on failover, so nothing may be committed on their account).
   */
  notifyCheckpoint(checkpointId: number, completed: boolean, final = false): void {
    if (!completed) {
      this.abortedCheckpoints.add(checkpointId);
      if (this.abortedCheckpoints.size > 64)
        this.abortedCheckpoints.delete(this.abortedCheckpoints.values().next().value!);
      // an alignment of it ends now, and consumers hear of it (Flink's abort notification)
      if (this.state === 'RUNNING') this.barrierHandler?.abort(checkpointId);
    }
    // completions are handled in increasing order: one older than a completion already handled
    // (its message overtaken in transit) is covered by that one
    const stale = completed && checkpointId <= this.lastCompletedId;
    if (completed) this.lastCompletedId = Math.max(this.lastCompletedId, checkpointId);
    this.notifications = this.notifications.then(async () => {
      if (this.isTerminal) return;
      try {
        if (!stale)
          for (const op of this.operators) {
            if (completed) op.keyedBackend?.notifyCheckpointComplete?.(checkpointId);
            else op.keyedBackend?.notifyCheckpointAborted?.(checkpointId);
            if (completed) await op.notifyCheckpointComplete?.(checkpointId);
            else op.notifyCheckpointAborted?.(checkpointId);
          }
      } catch (err) {
        await this.fail(err);
        return;
      }
      // only a checkpoint taken after every source ended may end the tasks: a task that finished
      // earlier could not take part in the checkpoints the others still need
      if (
        completed &&
        final &&
        this.finalCheckpointId !== undefined &&
        checkpointId >= this.finalCheckpointId
      ) {
        this.finalCheckpointCompleted = true;
        this.maybeFinish();
      }
    });
  }

  // ---- lifecycle

  /**
   * No more records will come: finish the operators head first (they emit what they buffer)
   * and tell the consumers. With checkpointing on, the task keeps running until a checkpoint
   * taken after this point completes, so everything it emitted is committed (FLIP-147).
   */
  private async endOfData(): Promise<void> {
    if (this.state !== 'RUNNING' || this.dataEnded) return;
    this.dataEnded = true;
    try {
      for (const op of this.operators) await op.finish();
      for (const p of this.partitions) p.broadcastEvent({ type: 'EndOfData' });
    } catch (err) {
      await this.fail(err);
      return;
    }
    if (this.tdd.finalCheckpoint)
      this.host.post({ t: 'taskState', executionId: this.executionId, state: 'RUNNING', endOfData: true });
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if (this.state !== 'RUNNING' || !this.dataEnded) return;
    if (this.tdd.finalCheckpoint && !this.finalCheckpointCompleted) return;
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
