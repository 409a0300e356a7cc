// A fast bounded source chained into a PostgreSQL sink whose table is slow (a trigger sleeps
// on every INSERT): args <postgres url> <records> <semantic>. Parallelism 1, so the source and
// the sink run in one task and only the sink's bound can hold the source back.
import { StreamExecutionEnvironment, RestartStrategies, getJobArgs } from '@weir/api';
import { PostgresSink } from '@weir/connectors';

const [postgres, records, semantic] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(1);
if (semantic === 'exactly-once') env.enableCheckpointing(500);
env.setRestartStrategy(RestartStrategies.noRestart());
env.fromSequence(1, Number(records)).sinkTo(
  new PostgresSink<number>({
    connection: postgres!,
    table: 'slow',
    columns: ['id'],
    toRow: (i) => [i],
    semantic: semantic === 'exactly-once' ? 'exactly-once' : 'at-least-once',
    batchSize: 500,
    maxInFlightBatches: 2,
  }),
);
await env.execute('sequence-to-slow-postgres');
