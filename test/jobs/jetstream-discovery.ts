// JetStream (one split per subject, discovered while running) -> map -> JetStream:
// a message id from the record; args <nats url> <input stream> <output stream> [parallelism]. The map doubles the JSON integer.
import { StreamExecutionEnvironment, RestartStrategies, getJobArgs } from '@weir/api';
import { JetStreamSink, JetStreamSource } from '@weir/connectors';

const [nats, input, output, parallelism] = getJobArgs();
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
  // several splits per subtask interleave differently on replay: ids from the record, not its position
  .sinkTo(
    new JetStreamSink<number>({
      servers: nats!,
      stream: output!,
      subject: `${output}.data`,
      messageId: (v) => `v${v}`,
    }),
  )
  .uid('out');
await env.execute('jetstream-discovery');
