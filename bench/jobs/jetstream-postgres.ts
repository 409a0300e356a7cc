// Benchmark job: bounded JetStream (subjects <stream>.0 and <stream>.1, one split each) ->
// keyed count (key = i % keys) -> PostgreSQL upsert, parallelism 2: args <nats url> <stream>
// <postgres url> <table> <checkpoint interval ms, 0 = none> <exactly-once|at-least-once> <keys>.
import { StreamExecutionEnvironment, getJobArgs } from '@weir/api';
import { JetStreamSource, PostgresSink } from '@weir/connectors';

const [nats, stream, postgres, table, interval, semantic, keys] = getJobArgs();
const K = Number(keys || 1000);
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
if (Number(interval) > 0) env.enableCheckpointing(Number(interval));
env
  .fromSource(
    new JetStreamSource<number>({
      servers: nats!,
      stream: stream!,
      subjects: [`${stream}.0`, `${stream}.1`],
      bounded: true,
    }),
    'JetStream',
  )
  .map((i): [number, number] => [i % K, 1])
  .keyBy((r) => r[0])
  .reduce((a, b): [number, number] => [a[0], a[1] + b[1]])
  .sinkTo(
    new PostgresSink<[number, number]>({
      connection: postgres!,
      table: table!,
      columns: ['k', 'n'],
      toRow: (r) => r,
      upsertKey: ['k'],
      semantic: semantic as 'exactly-once' | 'at-least-once',
    }),
  );
await env.execute('jetstream-postgres');
