import {
  AckPolicy,
  DeliverPolicy,
  nanos,
  type ConsumerMessages,
  type JsMsg,
  type NatsConnection,
} from 'nats';
import {
  InputStatus,
  SplitSource,
  type SourceSplit,
  type SplitEnumerator,
  type SplitEnumeratorContext,
  type SplitReader,
  type SplitReaderOutput,
  type TaskInfo,
} from '@weir/api';
import { connectNats, streamInfo, type NatsConnectionOptions } from './connection.js';
import { JetStreamEnumerator, type JetStreamEnumeratorState } from './jetstream-enumerator.js';

export interface JetStreamSourceOptions<T> extends NatsConnectionOptions {
  stream: string;
  /** one split per subject filter; default: the whole stream as one split */
  subjects?: string[];
  /**
   * One split per subject the stream holds, found by the enumerator on the JobManager and
   * looked up again every `discoveryIntervalMs` (default 1000) while the job runs, so a new
   * subject is read from its first message. Replaces `subjects`.
   */
  discoverSubjects?: boolean;
  discoveryIntervalMs?: number;
  /** BOUNDED: stop at the stream's last sequence as it was when the split was first read */
  bounded?: boolean;
  /** turns a message into a record; default: JSON of the payload */
  deserialize?: (data: Uint8Array, subject: string) => T;
}

/** One subject filter of one stream, with the next stream sequence to read. */
export interface JetStreamSplit extends SourceSplit {
  filter: string;
  /** next stream sequence to read (1 = from the start) */
  next: number;
  /** bounded mode: the stream's last sequence when the split was first read; nothing after it is read */
  end?: number;
}

const decoder = new TextDecoder();
const jsonOf = (data: Uint8Array): never => JSON.parse(decoder.decode(data)) as never;
/** above this many buffered messages the consumer stops pulling until the task drains them */
const HIGH_WATER = 65_536;
const LOW_WATER = 16_384;

/**
 * Reads a NATS JetStream stream exactly once with weir's checkpoints: the position of each
 * split is the stream sequence, kept in checkpoints and replayed from on restore. Records
 * carry the message time as their timestamp.
 */
export class JetStreamSource<T> extends SplitSource<T, JetStreamSplit> {
  readonly boundedness;
  constructor(private readonly opts: JetStreamSourceOptions<T>) {
    super();
    this.boundedness = opts.bounded ? ('BOUNDED' as const) : ('CONTINUOUS_UNBOUNDED' as const);
  }

  createSplits(): JetStreamSplit[] {
    const filters = this.opts.subjects ?? [''];
    return filters.map((filter) => ({ splitId: `${this.opts.stream}:${filter || '>'}`, filter, next: 1 }));
  }

  override createEnumerator(
    ctx: SplitEnumeratorContext<JetStreamSplit>,
    restored?: unknown,
  ): SplitEnumerator<JetStreamSplit, JetStreamEnumeratorState> {
    return new JetStreamEnumerator(
      ctx,
      {
        ...this.opts,
        ...(this.opts.discoverSubjects
          ? { discover: { intervalMs: this.opts.discoveryIntervalMs ?? 1_000 } }
          : {}),
        bounded: this.boundedness === 'BOUNDED',
        who: `JetStream source enumerator (stream '${this.opts.stream}')`,
      },
      restored as JetStreamEnumeratorState | undefined,
    );
  }

  createSplitReader(split: JetStreamSplit, ctx: TaskInfo): SplitReader<T, JetStreamSplit> {
    return new JetStreamSplitReader(
      { ...split },
      this.opts,
      this.opts.deserialize ?? jsonOf,
      this.boundedness === 'BOUNDED',
      `JetStream source '${ctx.taskName}' (stream '${this.opts.stream}')`,
    );
  }
}

class JetStreamSplitReader<T> implements SplitReader<T, JetStreamSplit> {
  private nc: NatsConnection | undefined;
  private messages: ConsumerMessages | undefined;
  private queue: JsMsg[] = [];
  private head = 0;
  /** sequence after the last message queued: where a paused consumer resumes */
  private queuedUpTo: number;
  private paused = false;
  /** bumped at every (re)start of the consumer, so a stopped consumer's late messages are ignored */
  private generation = 0;
  private finished = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private available: Promise<void> | undefined;

  constructor(
    private readonly split: JetStreamSplit,
    private readonly opts: JetStreamSourceOptions<T>,
    private readonly deserialize: (data: Uint8Array, subject: string) => T,
    private readonly bounded: boolean,
    private readonly who: string,
  ) {
    this.queuedUpTo = split.next;
  }

  async start(): Promise<void> {
    this.nc = await connectNats(this.opts, this.who);
    const jsm = await this.nc.jetstreamManager();
    const info = await streamInfo(jsm, this.opts.stream, this.opts, this.who);
    if (this.bounded) {
      this.split.end ??= info.state.last_seq;
      if (this.split.next > this.split.end || !(await this.hasPending(jsm))) {
        this.finished = true;
        return;
      }
    }
    await this.consume();
  }

  /** whether the filter matches any message from `next` on (a bounded split may have none) */
  private async hasPending(jsm: Awaited<ReturnType<NatsConnection['jetstreamManager']>>): Promise<boolean> {
    const ci = await jsm.consumers.add(this.opts.stream, {
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: this.split.next,
      inactive_threshold: nanos(5_000),
      mem_storage: true,
      ...(this.split.filter ? { filter_subject: this.split.filter } : {}),
    });
    await jsm.consumers.delete(this.opts.stream, ci.name).catch(() => {});
    return ci.num_pending > 0;
  }

  private async consume(): Promise<void> {
    const generation = ++this.generation;
    const js = this.nc!.jetstream();
    const consumer = await js.consumers.get(this.opts.stream, {
      ...(this.split.filter ? { filterSubjects: this.split.filter } : {}),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: this.queuedUpTo,
    });
    this.messages = await consumer.consume({
      max_messages: 4_096,
      callback: (m) => {
        if (this.paused || generation !== this.generation) return;
        this.queue.push(m);
        this.queuedUpTo = m.seq + 1;
        if (this.queue.length - this.head > HIGH_WATER) this.pause();
        this.wakeUp();
      },
    });
    void this.messages.closed().then(
      (err) => {
        if (err && !this.paused && !this.finished && generation === this.generation) {
          this.failure = new Error(`${this.who}: the consumer stopped: ${err.message}`);
          this.wakeUp();
        }
      },
      () => {},
    );
  }

  private wakeUp(): void {
    const w = this.wake;
    if (w) {
      this.wake = undefined;
      this.available = undefined;
      w();
    }
  }

  private pause(): void {
    this.paused = true;
    this.messages?.stop();
    this.messages = undefined;
  }

  fetch(output: SplitReaderOutput<T>, budget: number): InputStatus {
    if (this.failure) throw this.failure;
    if (this.finished) return InputStatus.END_OF_INPUT;
    const end = this.bounded ? this.split.end! : Number.MAX_SAFE_INTEGER;
    const q = this.queue;
    let i = this.head;
    while (budget-- > 0 && i < q.length) {
      const m = q[i++]!;
      const info = m.info;
      const seq = info.streamSequence;
      if (seq > end) {
        this.finish();
        return InputStatus.END_OF_INPUT;
      }
      output.collect(this.deserialize(m.data, m.subject), Math.floor(info.timestampNanos / 1e6));
      this.split.next = seq + 1;
      if (seq === end || (this.bounded && info.pending === 0)) {
        this.finish();
        return InputStatus.END_OF_INPUT;
      }
    }
    if (i >= q.length) {
      this.queue = [];
      this.head = 0;
    } else if (i > 8_192) {
      this.queue = q.slice(i);
      this.head = 0;
    } else this.head = i;
    if (this.paused && this.queue.length - this.head < LOW_WATER) {
      this.paused = false;
      void this.consume().catch((err: Error) => {
        this.failure = err;
        this.wakeUp();
      });
    }
    return this.head < this.queue.length ? InputStatus.MORE_AVAILABLE : InputStatus.NOTHING_AVAILABLE;
  }

  private finish(): void {
    this.finished = true;
    this.queue = [];
    this.head = 0;
    this.pause();
  }

  isAvailable(): Promise<void> {
    if (this.head < this.queue.length || this.finished || this.failure) return Promise.resolve();
    return (this.available ??= new Promise<void>((resolve) => (this.wake = resolve)));
  }

  snapshot(): JetStreamSplit {
    return { ...this.split };
  }

  async close(): Promise<void> {
    this.finished = true;
    this.messages?.stop();
    await this.nc?.close().catch(() => {});
  }
}
