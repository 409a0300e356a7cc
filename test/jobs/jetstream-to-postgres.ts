// JetStream -> keyed count -> PostgreSQL: args <nats url> <stream> <postgres url> <table>
// [append|upsert] [exactly-once|at-least-once] [bounded] [interval ms] [parallelism] [restarts].
// Messages are JSON integers i; the count is per key i % 1000; rows are (k, n).
import { StreamExecutionEnvironment, RestartStrategies, getJobArgs } from '@weir/api';
import { JetStreamSource, PostgresSink } from '@weir/connectors';

const [nats, stream, postgres, table, mode, semantic, bounded, interval, parallelism, restarts] =
  getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(Number(parallelism || 2));
if (Number(interval || 500) > 0) env.enableCheckpointing(Number(interval || 500));
env.setRestartStrategy(
  restarts === '0' ? RestartStrategies.noRestart() : RestartStrategies.fixedDelayRestart(10, 200),
);
env
  .fromSource(
    new JetStreamSource<number>({
      servers: nats!,
      stream: stream!,
      subjects: [`${stream}.0`, `${stream}.1`],
      bounded: bounded === 'bounded',
    }),
    'JetStream',
  )
  .uid('jetstream')
  .map((i): [number, number] => [i % 1000, 1])
  .keyBy((r) => r[0])
  .reduce((a, b): [number, number] => [a[0], a[1] + b[1]])
  .uid('count')
  .sinkTo(
    new PostgresSink<[number, number]>({
      connection: postgres!,
      table: table!,
      columns: ['k', 'n'],
      toRow: (r) => r,
      ...(mode === 'upsert' ? { upsertKey: ['k'] } : {}),
      semantic: (semantic || 'exactly-once') as 'exactly-once' | 'at-least-once',
    }),
  )
  .uid('postgres');
await env.execute('jetstream-to-postgres');
