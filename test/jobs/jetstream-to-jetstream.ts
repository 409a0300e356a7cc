// JetStream -> map -> JetStream: args <nats url> <input stream> <output stream> [interval ms].
// Input subjects <in>.0 and <in>.1 (one split each), output subject <out>.data; the map
// doubles the JSON integer.
import { StreamExecutionEnvironment, RestartStrategies, getJobArgs } from '@weir/api';
import { JetStreamSink, JetStreamSource } from '@weir/connectors';

const [nats, input, output, interval] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env.enableCheckpointing(Number(interval || 500));
env.setRestartStrategy(RestartStrategies.fixedDelayRestart(10, 200));
env
  .fromSource(
    new JetStreamSource<number>({ servers: nats!, stream: input!, subjects: [`${input}.0`, `${input}.1`] }),
    'JetStream in',
  )
  .uid('in')
  .map((i) => i * 2)
  .uid('double')
  .sinkTo(new JetStreamSink<number>({ servers: nats!, stream: output!, subject: `${output}.data` }))
  .uid('out');
await env.execute('jetstream-to-jetstream');
