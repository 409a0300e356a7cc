// Lines of a directory of text files into a FileSink, exactly once: args <input dir> <output dir>
// <parallelism> <microseconds of work per line> [block size bytes].
import { StreamExecutionEnvironment, FileSink, RestartStrategies, getJobArgs } from '@weir/api';

const [input, output, parallelism, micros, block] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(Number(parallelism || 2));
env.enableCheckpointing(300);
env.setRestartStrategy(RestartStrategies.fixedDelayRestart(10, 100));
const work = Number(micros || 0) / 1000;
env
  .readTextFile(input!, block ? { blockSizeBytes: Number(block) } : {})
  .uid('files')
  .map((line: string) => {
    const until = performance.now() + work;
    while (performance.now() < until);
    return line;
  })
  .uid('work')
  .sinkTo(new FileSink<string>({ path: output! }))
  .uid('sink');
await env.execute('text-files');
