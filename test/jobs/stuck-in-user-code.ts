// A map that never returns once it sees record 1000: only terminating its thread stops it.
import { StreamExecutionEnvironment, DataGeneratorSource } from '@weir/api';

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(1);
env
  .fromSource(new DataGeneratorSource<number>((i) => i, undefined, 5000), 'Numbers')
  .map((n) => {
    if (n === 1000)
      for (;;) {
        /* stuck */
      }
    return n;
  })
  .sinkTo({ createWriter: () => ({ write: () => {} }) });
await env.execute('stuck-in-user-code');
