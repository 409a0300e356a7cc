// Checkpoints that stay in flight for a while: a sink slower than the source keeps the channels
// full, so each barrier waits behind a backlog; up to three checkpoints run at once. The keyed
// reduce before the sink writes its state files while the barrier still waits for the sink.
import { StreamExecutionEnvironment, DataGeneratorSource } from '@weir/api';
import type { Sink, SinkWriter } from '@weir/api';

const pause = new Int32Array(new SharedArrayBuffer(4));

class SlowSink implements Sink<number> {
  createWriter(): SinkWriter<number> {
    return { write: () => void Atomics.wait(pause, 0, 0, 1) };
  }
}

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env.enableCheckpointing(150);
env.getCheckpointConfig().setMaxConcurrentCheckpoints(3).setCheckpointTimeout(120_000);
env
  .fromSource(new DataGeneratorSource<number>((i) => i, undefined, 3000), 'Generator')
  .keyBy((n) => n % 10)
  .reduce((a: number, b: number) => a + b)
  .rebalance()
  .sinkTo(new SlowSink())
  .setParallelism(1);
await env.execute('slow-checkpoints');
