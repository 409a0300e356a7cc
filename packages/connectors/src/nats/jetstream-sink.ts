import { createInbox, headers, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';
import type { Sink, SinkWriter, TaskInfo } from '@weir/api';
import { connectNats, describeServers, streamInfo, type NatsConnectionOptions } from './connection.js';

export interface JetStreamSinkOptions<T> extends NatsConnectionOptions {
  /** the stream the subject belongs to; checked at start so a typo fails with its name */
  stream: string;
  subject: string | ((record: T) => string);
  /** turns a record into a payload; default: JSON */
  serialize?: (record: T) => Uint8Array;
  /**
   * A record's de-duplication id. Default: `<prefix>:<subtask>:<position>`, the position
   * counting the subtask's records from the start of the job and restored from the checkpoint,
   * exact when the sink's input is replayed in the same order after a restore (a chain from
   * a source subtask with one split); pass an id derived from the record (e.g. its source
   * sequence) when the order may differ.
   */
  messageId?: (record: T) => string;
  /** prefix of the default ids; default: the job id */
  idPrefix?: string;
}

/** Kept in checkpoints: how many records the subtask had written at the barrier. */
interface SinkPosition {
  subtask: number;
  position: number;
}

const encoder = new TextEncoder();
const jsonBytes = (r: unknown): Uint8Array => encoder.encode(JSON.stringify(r));

/**
 * Publishes to a JetStream stream with a de-duplication id per message (`Nats-Msg-Id`), so a
 * replay after a failure publishes nothing twice within the stream's duplicate window
 * (`duplicate_window`, 2 minutes unless the stream says otherwise): a restore that replays
 * messages first published longer ago than that publishes them again. A checkpoint is
 * acknowledged only after the server acknowledged every message before its barrier.
 */
export class JetStreamSink<T> implements Sink<T> {
  constructor(private readonly opts: JetStreamSinkOptions<T>) {}

  createWriter(ctx: TaskInfo, restored?: unknown[]): SinkWriter<T> {
    const mine = (restored as SinkPosition[] | undefined)?.find((p) => p.subtask === ctx.subtaskIndex);
    return new JetStreamWriter(ctx, this.opts, mine?.position ?? 0);
  }
}

class JetStreamWriter<T> implements SinkWriter<T> {
  private nc: NatsConnection | undefined;
  private sub: Subscription | undefined;
  private readonly inbox = createInbox();
  private readonly ready: Promise<void>;
  /** records written before the connection was up */
  private backlog: T[] = [];
  /** records written by this subtask since the job started: the default id's last part */
  private position: number;
  private readonly prefix: string;
  private published = 0;
  private acked = 0;
  private failure: Error | undefined;
  private waiters: Array<{ upTo: number; resolve: () => void; reject: (e: Error) => void }> = [];
  private readonly serialize: (record: T) => Uint8Array;
  private readonly who: string;

  constructor(
    private readonly ctx: TaskInfo,
    private readonly opts: JetStreamSinkOptions<T>,
    position: number,
  ) {
    this.position = position;
    this.prefix = opts.idPrefix ?? ctx.jobId;
    this.serialize = opts.serialize ?? jsonBytes;
    this.who = `JetStream sink '${ctx.taskName}' (stream '${opts.stream}')`;
    this.ready = this.connect();
    this.ready.catch(() => {});
  }

  private async connect(): Promise<void> {
    this.nc = await connectNats(this.opts, this.who);
    const jsm = await this.nc.jetstreamManager();
    await streamInfo(jsm, this.opts.stream, this.opts, this.who);
    // acknowledgements come back on one inbox: no Promise per message
    this.sub = this.nc.subscribe(this.inbox, {
      callback: (err, msg) => {
        if (err) return this.fail(new Error(`${this.who}: ${err.message}`));
        const ack = msg.json<{ error?: { description: string }; stream?: string }>();
        if (ack.error)
          return this.fail(new Error(`${this.who}: the server refused a message: ${ack.error.description}`));
        this.acked++;
        this.settle();
      },
    });
    const backlog = this.backlog;
    this.backlog = [];
    for (const r of backlog) this.publish(r);
  }

  open(): Promise<void> {
    return this.ready;
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.settle();
  }

  private settle(): void {
    if (this.waiters.length === 0) return;
    const keep = [];
    for (const w of this.waiters) {
      if (this.failure) w.reject(this.failure);
      else if (this.acked >= w.upTo) w.resolve();
      else keep.push(w);
    }
    this.waiters = keep;
  }

  private publish(record: T): void {
    const h: MsgHdrs = headers();
    h.set(
      'Nats-Msg-Id',
      this.opts.messageId
        ? this.opts.messageId(record)
        : `${this.prefix}:${this.ctx.subtaskIndex}:${this.position}`,
    );
    this.position++;
    const subject = typeof this.opts.subject === 'string' ? this.opts.subject : this.opts.subject(record);
    this.published++;
    this.nc!.publish(subject, this.serialize(record), { headers: h, reply: this.inbox });
  }

  write(record: T): void {
    if (this.failure) throw this.failure;
    if (this.sub === undefined) this.backlog.push(record);
    else this.publish(record);
  }

  /** every message published so far, acknowledged by the server */
  private async allAcked(): Promise<void> {
    await this.ready;
    const upTo = this.published;
    if (this.acked >= upTo) return;
    await this.nc!.flush();
    await new Promise<void>((resolve, reject) => {
      this.waiters.push({ upTo, resolve, reject });
      this.settle();
    });
  }

  snapshotState(): SinkPosition[] {
    // a replay from this checkpoint numbers the records after it from here, as this run did
    return [{ subtask: this.ctx.subtaskIndex, position: this.position + this.backlog.length }];
  }

  preCommitted(): Promise<void> {
    return this.allAcked().catch((err: Error) => {
      throw new Error(
        `${err.message.startsWith(this.who) ? '' : `${this.who} at ${describeServers(this.opts.servers)}: `}${err.message}`,
      );
    });
  }

  async flush(): Promise<void> {
    await this.allAcked();
  }

  async close(): Promise<void> {
    this.sub?.unsubscribe();
    await this.nc?.close().catch(() => {});
  }
}
