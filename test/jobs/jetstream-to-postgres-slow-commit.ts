// JetStream -> keyed count -> PostgreSQL exactly-once, with every commit held back 4 s after
// its checkpoint completed, so a test can kill the cluster between PREPARE TRANSACTION and
// COMMIT PREPARED: args <nats url> <stream> <postgres url> <table>.
import { StreamExecutionEnvironment, RestartStrategies, getJobArgs } from '@weir/api';
import type { Sink, SinkWriter, TaskInfo } from '@weir/api';
import { JetStreamSource, PostgresSink } from '@weir/connectors';

/** Delays the second phase (the commit on checkpoint completion) of another sink. */
class SlowCommit<T> implements Sink<T> {
  constructor(
    private readonly inner: Sink<T>,
    private readonly delayMs: number,
  ) {}
  createWriter(ctx: TaskInfo, restored?: unknown[]): SinkWriter<T> {
    const w = this.inner.createWriter(ctx, restored);
    return {
      ...w,
      notifyCheckpointComplete: async (id) => {
        await new Promise((r) => setTimeout(r, this.delayMs));
        await w.notifyCheckpointComplete?.(id);
      },
    };
  }
}

const [nats, stream, postgres, table] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env.enableCheckpointing(500);
env.setRestartStrategy(RestartStrategies.fixedDelayRestart(10, 200));
env
  .fromSource(
    new JetStreamSource<number>({
      servers: nats!,
      stream: stream!,
      subjects: [`${stream}.0`, `${stream}.1`],
    }),
    'JetStream',
  )
  .uid('jetstream')
  .map((i): [number, number] => [i % 1000, 1])
  .keyBy((r) => r[0])
  .reduce((a, b): [number, number] => [a[0], a[1] + b[1]])
  .uid('count')
  .sinkTo(
    new SlowCommit(
      new PostgresSink<[number, number]>({
        connection: postgres!,
        table: table!,
        columns: ['k', 'n'],
        toRow: (r) => r,
      }),
      4_000,
    ),
  )
  .uid('postgres');
await env.execute('jetstream-to-postgres-slow-commit');
