// JetStream (one split per subject, discovered while running) -> map -> PostgreSQL, exactly
// once: args <nats url> <input stream> <postgres url> <table> [parallelism]. Messages are JSON
// integers i; rows are (i * 2). The sink is transactional, so a message the source read twice
// would show as a repeated row.
import { StreamExecutionEnvironment, RestartStrategies, getJobArgs } from '@weir/api';
import { JetStreamSource, PostgresSink } from '@weir/connectors';

const [nats, input, postgres, table, parallelism] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(Number(parallelism || 2));
env.enableCheckpointing(400);
env.setRestartStrategy(RestartStrategies.fixedDelayRestart(10, 200));
env
  .fromSource(
    new JetStreamSource<number>({
      servers: nats!,
      stream: input!,
      discoverSubjects: true,
      discoveryIntervalMs: 300,
    }),
    'JetStream in',
  )
  .uid('in')
  .map((i) => i * 2)
  .uid('double')
  .sinkTo(
    new PostgresSink<number>({
      connection: postgres!,
      table: table!,
      columns: ['v'],
      toRow: (v) => [v],
      transactionIdPrefix: `weir:${table}`,
    }),
  )
  .uid('out');
await env.execute('jetstream-discovery');
