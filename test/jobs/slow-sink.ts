// An unbounded fast source into a deliberately slow sink: backpressure must throttle the source.
import { StreamExecutionEnvironment, DataGeneratorSource } from '@weir/api';
import type { Sink, SinkWriter } from '@weir/api';

const pause = new Int32Array(new SharedArrayBuffer(4));

class SlowSink implements Sink<string> {
  createWriter(): SinkWriter<string> {
    let n = 0;
    return {
      write: () => {
        // about 20k records/s per subtask: block the task thread 1 ms every 20 records
        if (++n % 20 === 0) Atomics.wait(pause, 0, 0, 1);
      },
    };
  }
}

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env
  .fromSource(
    new DataGeneratorSource<string>((i) => `record-${i}-${'x'.repeat(100)}`, undefined),
    'Fast generator',
  )
  .keyBy((s) => s.length + (s.charCodeAt(7) % 7))
  .map((s: string) => s.toUpperCase())
  .sinkTo(new SlowSink());
await env.execute('slow-sink');
