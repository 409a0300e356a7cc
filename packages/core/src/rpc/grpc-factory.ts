import * as grpc from '@grpc/grpc-js';

/**
 * Every gRPC server and client of weir is made here, so transport security and
 * authentication can be added in one place.
 */
export const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  // a lost peer must be noticed quickly; do not keep reconnecting for long
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 2_000,
};

export function createServer(): grpc.Server {
  return new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  });
}

/** Binds `host:port` (port 0 picks a free one) and resolves to the bound port. */
export function bindServer(server: grpc.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const target = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
    server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err, bound) => {
      if (err) reject(new Error(`Cannot listen on ${target}: ${err.message}`));
      else resolve(bound);
    });
  });
}

type ClientCtor<C> = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => C;

export function createClient<C>(ctor: ClientCtor<C>, address: string): C {
  return new ctor(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
}

/** Stops a server: lets calls finish for `graceMs`, then cuts what is left. */
export function shutdownServer(server: grpc.Server, graceMs = 2_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    timer.unref();
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Resolves when the client's channel is connected, or rejects naming the address. */
export function waitForReady(client: grpc.Client, address: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    client.waitForReady(Date.now() + timeoutMs, (err) => {
      if (err) reject(new Error(`Cannot reach ${address} within ${timeoutMs / 1000} s: ${err.message}`));
      else resolve();
    });
  });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type UnaryMethod = (req: any, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: any) => void) => unknown;

/** A unary call as a Promise, with a deadline. Pass the method bound to its client. */
export function unary<Res>(fn: UnaryMethod, req: unknown, timeoutMs = 30_000): Promise<Res> {
  return new Promise((resolve, reject) => {
    fn(req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
      if (err) reject(err);
      else resolve(res as Res);
    });
  });
}
