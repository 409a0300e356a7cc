import { connect, type JetStreamManager, type NatsConnection, type StreamInfo } from 'nats';

/** Where a JetStream connector finds its server, and how long it tries before giving up. */
export interface NatsConnectionOptions {
  /** `host:port` or `nats://host:port`, one or more */
  servers: string | string[];
  user?: string;
  pass?: string;
  token?: string;
}

export function describeServers(servers: string | string[]): string {
  return Array.isArray(servers) ? servers.join(', ') : servers;
}

/** Connects, naming the address and what to check when the server is not there. */
export async function connectNats(opts: NatsConnectionOptions, who: string): Promise<NatsConnection> {
  try {
    return await connect({
      servers: opts.servers,
      ...(opts.user !== undefined ? { user: opts.user, pass: opts.pass ?? '' } : {}),
      ...(opts.token !== undefined ? { token: opts.token } : {}),
      // a broker restart is survived by reconnecting; the job fails over only if it stays away
      maxReconnectAttempts: 30,
      reconnectTimeWait: 500,
      timeout: 5_000,
    });
  } catch (err) {
    throw new Error(
      `${who}: cannot reach the NATS server at ${describeServers(opts.servers)} (${(err as Error).message}); ` +
        'check that nats-server runs there with JetStream enabled (-js)',
    );
  }
}

/** The stream's info, or an error naming the stream and the server when it does not exist. */
export async function streamInfo(
  jsm: JetStreamManager,
  stream: string,
  opts: NatsConnectionOptions,
  who: string,
): Promise<StreamInfo> {
  try {
    return await jsm.streams.info(stream);
  } catch (err) {
    const msg = (err as Error).message;
    if (/not found/i.test(msg))
      throw new Error(
        `${who}: JetStream stream '${stream}' does not exist on ${describeServers(opts.servers)}; ` +
          'create it first (e.g. `nats stream add`) or fix the stream name',
      );
    throw new Error(
      `${who}: cannot read JetStream stream '${stream}' on ${describeServers(opts.servers)}: ${msg}`,
    );
  }
}
