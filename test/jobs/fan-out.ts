// A keyed operator feeding two FileSinks over forward edges (not chained: two outputs), with
// checkpointing: args <records> <output dir>.
import { DataGeneratorSource, FileSink, StreamExecutionEnvironment, getJobArgs } from '@weir/api';

const [records, output] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env.enableCheckpointing(200);
const counts = env
  .fromSource(new DataGeneratorSource<number>((i) => i, Number(records), 20_000), 'Sequence')
  .keyBy((n) => n % 10)
  .reduce((a, b) => a + b);
counts.sinkTo(new FileSink<number>({ path: `${output}/a`, format: 'json' }));
counts.map((n) => -n).sinkTo(new FileSink<number>({ path: `${output}/b`, format: 'json' }));
await env.execute('fan-out');
