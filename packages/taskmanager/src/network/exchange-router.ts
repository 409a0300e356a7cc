import * as grpc from '@grpc/grpc-js';
import type { Worker } from 'node:worker_threads';
import {
  createClient,
  dataProto,
  type ConsumerMessage__Output,
  type DataExchangeClient,
  type ProducerMessage,
} from '@weir/core';
import type { FrameKind, FromWorker, ToWorker } from '../worker-protocol.js';

type ConsumerRoute =
  | { local: true; worker: Worker; executionId: string; channel: number }
  | {
      local: false;
      call: grpc.ServerDuplexStream<ConsumerMessage__Output, ProducerMessage>;
      executionId: string;
    };

type ChannelRoute =
  | { local: true; partitionId: string; subpartition: number }
  | {
      local: false;
      call: grpc.ClientDuplexStream<ConsumerMessage__Output, ProducerMessage>;
      closed: boolean;
    };

/**
 * Routes data between the slot workers of one TaskManager and the gRPC streams to and from
 * other TaskManagers: frames from producers to their consumers, credits back, and the
 * producer side of remote input channels (Flink's PartitionRequestServerHandler with the
 * local input channel shortcut). One per TaskManager; it owns the partition and channel tables.
 *
 * A subpartition is served only to the consumer execution the JobManager assigned to it (from
 * the producer's deployment descriptor) and to one connection at a time: another consumer, or
 * a second connection while the first is open, is refused with PERMISSION_DENIED and the first
 * keeps its data.
 */
export class ExchangeRouter {
  private readonly producers = new Map<string, Worker>();
  private readonly pendingRequests = new Map<
    string,
    Array<{ subpartition: number; credit: number; bufferSize?: number; route: ConsumerRoute }>
  >();
  private readonly consumers = new Map<string, ConsumerRoute>();
  private readonly channels = new Map<string, ChannelRoute>();
  private readonly dataClients = new Map<string, DataExchangeClient>();
  /** the assigned consumer execution of each subpartition, by partition id */
  private readonly assigned = new Map<string, readonly string[]>();

  constructor(private readonly taskManagerId: string) {}

  /**
   * A consumer's credit for its input channel, and a new buffer size when debloating changed it,
   * to the producer (local) or down the stream (remote).
   */
  credit(executionId: string, channel: number, credit: number, bufferSize?: number): void {
    const route = this.channels.get(`${executionId}/${channel}`);
    if (!route) return;
    if (route.local) {
      const producer = this.producers.get(route.partitionId);
      if (!producer) {
        // the request still waits for the producer: it takes the newest size with it
        const pending = this.pendingRequests
          .get(route.partitionId)
          ?.find((r) => r.route.local && r.route.executionId === executionId && r.route.channel === channel);
        if (pending && bufferSize !== undefined) pending.bufferSize = bufferSize;
        return;
      }
      producer.postMessage({
        t: 'credit',
        partitionId: route.partitionId,
        subpartition: route.subpartition,
        credit,
        ...(bufferSize !== undefined ? { bufferSize } : {}),
      } satisfies ToWorker);
    } else if (!route.closed) {
      if (bufferSize !== undefined) route.call.write({ bufferSize });
      if (credit > 0) route.call.write({ credit });
    }
  }

  /** The consumers the JobManager assigned to a partition this TaskManager is about to produce. */
  expectConsumers(partitionId: string, consumerExecutionIds: readonly string[]): void {
    this.assigned.set(partitionId, consumerExecutionIds);
  }

  /** Why a consumer may not have a subpartition now, or undefined. */
  private refusal(partitionId: string, subpartition: number, executionId: string): string | undefined {
    const expected = this.assigned.get(partitionId)?.[subpartition];
    if (expected === undefined)
      return `TaskManager ${this.taskManagerId} has no subpartition ${subpartition} of partition ${partitionId} assigned to any consumer`;
    if (expected !== executionId)
      return `Subpartition ${subpartition} of partition ${partitionId} is assigned to execution ${expected}, not to ${executionId || 'an unnamed consumer'}`;
    const key = `${partitionId}/${subpartition}`;
    if (
      this.consumers.has(key) ||
      this.pendingRequests.get(partitionId)?.some((r) => r.subpartition === subpartition)
    )
      return `Subpartition ${subpartition} of partition ${partitionId} already has a consumer connected; a second connection is refused (the first keeps the data)`;
    return undefined;
  }

  /** Tells a consumer it was refused: a remote one by the stream's status, a local one as a channel error. */
  private refuse(route: ConsumerRoute, message: string): void {
    if (route.local) {
      route.worker.postMessage({
        t: 'channelError',
        executionId: route.executionId,
        channel: route.channel,
        message,
      } satisfies ToWorker);
    } else {
      route.call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: message });
    }
  }

  /** A worker's partition can serve subpartitions now: the requests that waited for it are attached. */
  partitionReady(partitionId: string, worker: Worker): void {
    this.producers.set(partitionId, worker);
    const pending = this.pendingRequests.get(partitionId);
    this.pendingRequests.delete(partitionId);
    for (const r of pending ?? [])
      this.attachConsumer(partitionId, r.subpartition, r.credit, r.route, r.bufferSize);
  }

  partitionReleased(partitionId: string): void {
    this.producers.delete(partitionId);
    this.assigned.delete(partitionId);
    for (const [key, route] of this.consumers) {
      if (key.startsWith(`${partitionId}/`)) {
        this.consumers.delete(key);
        if (!route.local) route.call.end();
      }
    }
  }

  /** Routes to and from a terminated worker go, so consumers see their channels end. */
  forgetWorker(worker: Worker): void {
    for (const [partitionId, w] of this.producers) {
      if (w !== worker) continue;
      this.producers.delete(partitionId);
      this.assigned.delete(partitionId);
      for (const [key, route] of this.consumers) {
        if (!key.startsWith(`${partitionId}/`)) continue;
        this.consumers.delete(key);
        if (!route.local) route.call.end();
      }
    }
    for (const [key, route] of this.consumers)
      if (route.local && route.worker === worker) this.consumers.delete(key);
  }

  routeFrame(partitionId: string, subpartition: number, kind: FrameKind, bytes: Uint8Array): void {
    const route = this.consumers.get(`${partitionId}/${subpartition}`);
    if (!route) return;
    if (route.local) {
      route.worker.postMessage(
        {
          t: 'frame',
          executionId: route.executionId,
          channel: route.channel,
          kind,
          bytes,
        } satisfies ToWorker,
        [bytes.buffer as ArrayBuffer],
      );
    } else {
      const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      route.call.write(kind === 'buffer' ? { buffer: buf } : { event: buf });
    }
  }

  /** A consumer (local or remote) asks for a subpartition; wait for the producer if needed. */
  private attachConsumer(
    partitionId: string,
    subpartition: number,
    credit: number,
    route: ConsumerRoute,
    bufferSize?: number,
  ): void {
    const producer = this.producers.get(partitionId);
    // checked once the producer's deployment has named the consumers; until then the request
    // waits, and partitionReady checks it (the first right one wins, the others are refused)
    if (producer || this.assigned.has(partitionId)) {
      const why = this.refusal(partitionId, subpartition, route.executionId);
      if (why) return this.refuse(route, why);
    }
    if (!producer) {
      const list = this.pendingRequests.get(partitionId) ?? [];
      list.push({ subpartition, credit, route, ...(bufferSize !== undefined ? { bufferSize } : {}) });
      this.pendingRequests.set(partitionId, list);
      return;
    }
    this.consumers.set(`${partitionId}/${subpartition}`, route);
    producer.postMessage({
      t: 'subpartitionRequest',
      partitionId,
      subpartition,
      credit,
      ...(bufferSize !== undefined ? { bufferSize } : {}),
    } satisfies ToWorker);
  }

  openChannel(worker: Worker, msg: Extract<FromWorker, { t: 'openChannel' }>): void {
    const key = `${msg.executionId}/${msg.channel}`;
    if (msg.producerTaskManagerId === this.taskManagerId) {
      this.channels.set(key, { local: true, partitionId: msg.partitionId, subpartition: msg.subpartition });
      this.attachConsumer(
        msg.partitionId,
        msg.subpartition,
        msg.credit,
        { local: true, worker, executionId: msg.executionId, channel: msg.channel },
        msg.bufferSize,
      );
      return;
    }
    let client = this.dataClients.get(msg.producerAddress);
    if (!client) {
      client = createClient(dataProto.DataExchange, msg.producerAddress);
      this.dataClients.set(msg.producerAddress, client);
    }
    const call = client.Exchange();
    const route: ChannelRoute = { local: false, call, closed: false };
    this.channels.set(key, route);
    call.write({
      request: {
        partitionId: msg.partitionId,
        subpartitionIndex: msg.subpartition,
        initialCredit: msg.credit,
        consumerExecutionId: msg.executionId,
        bufferSize: msg.bufferSize ?? 0,
      },
    });
    call.on('data', (m: { buffer?: Buffer; event?: Buffer; error?: string }) => {
      if (m.error) {
        worker.postMessage({
          t: 'channelError',
          executionId: msg.executionId,
          channel: msg.channel,
          message: m.error,
        } satisfies ToWorker);
        return;
      }
      const src = (m.buffer ?? m.event)!;
      const bytes = new Uint8Array(src); // own ArrayBuffer, so it can be transferred
      worker.postMessage(
        {
          t: 'frame',
          executionId: msg.executionId,
          channel: msg.channel,
          kind: m.buffer ? 'buffer' : 'event',
          bytes,
        } satisfies ToWorker,
        [bytes.buffer],
      );
    });
    call.on('error', (err: grpc.ServiceError) => {
      if (route.closed) return;
      route.closed = true;
      worker.postMessage({
        t: 'channelError',
        executionId: msg.executionId,
        channel: msg.channel,
        message: `Lost the input channel from TaskManager ${msg.producerTaskManagerId} at ${msg.producerAddress}: ${err.details || err.message}`,
      } satisfies ToWorker);
    });
    call.on('end', () => {
      route.closed = true;
    });
  }

  closeChannel(key: string): void {
    const route = this.channels.get(key);
    if (!route) return;
    this.channels.delete(key);
    if (route.local) {
      const ckey = `${route.partitionId}/${route.subpartition}`;
      const attached = this.consumers.get(ckey);
      // only this channel's own attachment (a refused one never had it)
      if (attached?.local && `${attached.executionId}/${attached.channel}` === key) {
        this.consumers.delete(ckey);
        this.producers.get(route.partitionId)?.postMessage({
          t: 'subpartitionReleased',
          partitionId: route.partitionId,
          subpartition: route.subpartition,
        } satisfies ToWorker);
      }
    } else if (!route.closed) {
      route.closed = true;
      route.call.end();
    }
  }

  /** The producer side of a remote input channel. */
  serveExchange(call: grpc.ServerDuplexStream<ConsumerMessage__Output, ProducerMessage>): void {
    let key: string | undefined;
    let partitionId = '';
    let subpartition = 0;
    let pendingCredit = 0;
    call.on('data', (m: ConsumerMessage__Output) => {
      if (m.request) {
        if (key) {
          call.emit('error', {
            code: grpc.status.PERMISSION_DENIED,
            details: `One exchange stream serves one subpartition; this one already asked for ${key}`,
          });
          return;
        }
        partitionId = m.request.partitionId;
        subpartition = m.request.subpartitionIndex;
        key = `${partitionId}/${subpartition}`;
        const size = m.request.bufferSize;
        this.attachConsumer(
          partitionId,
          subpartition,
          m.request.initialCredit + pendingCredit,
          { local: false, call, executionId: m.request.consumerExecutionId },
          size > 0 ? size : undefined,
        );
        pendingCredit = 0;
      } else if (m.bufferSize) {
        const producer = this.producers.get(partitionId);
        const attached = key ? this.consumers.get(key) : undefined;
        if (key && producer && attached && !attached.local && attached.call === call) {
          producer.postMessage({
            t: 'credit',
            partitionId,
            subpartition,
            credit: 0,
            bufferSize: m.bufferSize,
          } satisfies ToWorker);
        } else if (key) {
          const pending = this.pendingRequests
            .get(partitionId)
            ?.find((r) => !r.route.local && r.route.call === call);
          if (pending) pending.bufferSize = m.bufferSize;
        }
      } else if (m.credit) {
        const producer = this.producers.get(partitionId);
        const attached = key ? this.consumers.get(key) : undefined;
        if (key && producer && attached && !attached.local && attached.call === call) {
          producer.postMessage({
            t: 'credit',
            partitionId,
            subpartition,
            credit: m.credit,
          } satisfies ToWorker);
        } else if (key) {
          const pending = this.pendingRequests
            .get(partitionId)
            ?.find((r) => !r.route.local && r.route.call === call);
          if (pending) pending.credit += m.credit;
        }
      }
    });
    const release = (): void => {
      if (!key) return;
      const route = this.consumers.get(key);
      if (route && !route.local && route.call === call) {
        this.consumers.delete(key);
        this.producers
          .get(partitionId)
          ?.postMessage({ t: 'subpartitionReleased', partitionId, subpartition } satisfies ToWorker);
      }
      const pending = this.pendingRequests.get(partitionId);
      if (pending)
        this.pendingRequests.set(
          partitionId,
          pending.filter((r) => r.route.local || r.route.call !== call),
        );
      key = undefined;
    };
    call.on('end', () => {
      release();
      call.end();
    });
    call.on('error', release);
    call.on('cancelled', release);
  }

  /** Closes the clients of remote producers. */
  close(): void {
    for (const c of this.dataClients.values()) c.close();
  }
}
