// Bounded PostgreSQL source split by id ranges -> map -> PostgreSQL sink: args <postgres url>
// <rows> <splits>. Reads src (id, v) for ids 1..rows, writes (id, v * 2) into dst.
import { StreamExecutionEnvironment, RestartStrategies, getJobArgs } from '@weir/api';
import { PostgresSink, PostgresSource } from '@weir/connectors';

const [postgres, rows, splits] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env.enableCheckpointing(300);
env.setRestartStrategy(RestartStrategies.noRestart());
env
  .fromSource(
    new PostgresSource<[number, number]>({
      connection: postgres!,
      query: 'SELECT id, v FROM src',
      partitionColumn: 'id',
      lowerBound: 1,
      upperBound: Number(rows),
      numPartitions: Number(splits || 4),
      fetchSize: 500,
      fromRow: (r) => [Number(r.id), Number(r.v)],
    }),
    'PostgreSQL src',
  )
  .map(([id, v]): [number, number] => [id, v * 2])
  .sinkTo(
    new PostgresSink<[number, number]>({
      connection: postgres!,
      table: 'dst',
      columns: ['id', 'v'],
      toRow: (r) => r,
    }),
  );
await env.execute('postgres-copy');
