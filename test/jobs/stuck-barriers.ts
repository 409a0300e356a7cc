// Checkpoints that cannot finish in time: a sink that holds each record for a while behind a
// backpressured channel, with a checkpoint timeout far below the time a barrier needs.
import { StreamExecutionEnvironment, DataGeneratorSource } from '@weir/api';
import type { Sink, SinkWriter } from '@weir/api';

const pause = new Int32Array(new SharedArrayBuffer(4));

class VerySlowSink implements Sink<number> {
  createWriter(): SinkWriter<number> {
    return { write: () => void Atomics.wait(pause, 0, 0, 2) };
  }
}

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env.enableCheckpointing(200);
env.getCheckpointConfig().setCheckpointTimeout(50).setTolerableCheckpointFailureNumber(1000);
env
  .fromSource(new DataGeneratorSource<number>((i) => i, undefined), 'Generator')
  .keyBy((n) => n % 10)
  .sinkTo(new VerySlowSink());
await env.execute('stuck-barriers');
