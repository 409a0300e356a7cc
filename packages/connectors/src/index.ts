/**
 * Connectors to real systems on weir's source/sink SDK: NATS JetStream (source and sink) and
 * PostgreSQL (exactly-once sink, bounded source). Import from `@weir/connectors`; the job
 * bundle carries them and their clients.
 */
export type { NatsConnectionOptions } from './nats/connection.js';
export {
  JetStreamSource,
  type JetStreamSourceOptions,
  type JetStreamSplit,
} from './nats/jetstream-source.js';
export { JetStreamSink, type JetStreamSinkOptions } from './nats/jetstream-sink.js';
export type { PostgresConnection } from './postgres/connection.js';
export {
  PostgresSink,
  type PostgresSinkOptions,
  type PreparedTransaction,
} from './postgres/postgres-sink.js';
export {
  PostgresSource,
  type PostgresSourceOptions,
  type PostgresRangeSplit,
} from './postgres/postgres-source.js';
