// A map that throws on every record, with a fixed-delay restart strategy of two attempts.
import { StreamExecutionEnvironment, DataGeneratorSource, RestartStrategies } from '@weir/api';

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(1);
env.enableCheckpointing(200);
env.setRestartStrategy(RestartStrategies.fixedDelayRestart(2, 100));
env
  .fromSource(new DataGeneratorSource<number>((i) => i, undefined, 1000), 'Numbers')
  .map((n) => {
    if (n >= 0) throw new Error(`poisoned record ${n}`);
    return n;
  })
  .sinkTo({ createWriter: () => ({ write: () => {} }) });
await env.execute('always-failing');
