/**
 * A Nexmark query as a weir job: `weir run examples/nexmark/job.ts --local -- q5 1000000`
 * runs q5 over a million generated events and writes its result lines to out/nexmark-q5.
 *
 * Arguments: <query | "all"> <events> [output dir | "discard"] [parallelism] [heap|rocksdb]
 * ("all": every query on one source, each writing to <output dir>/<query>)
 */
import { DiscardingSink, FileSink, StreamExecutionEnvironment, getJobArgs } from '@weir/api';
import type { StateBackendType } from '@weir/api';
import { NEXMARK_QUERIES, buildNexmarkQuery, nexmarkEvents } from './queries.js';

const [query = 'q0', events = '1000000', output, parallelism, backend] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
if (parallelism) env.setParallelism(Number(parallelism));
if (backend) env.setStateBackend(backend as StateBackendType);
env.enableCheckpointing(2_000);

const options = { events: Number(events), processingTimeWindowMs: 1_000 };
const sinkFor = (q: string, dir: string | undefined) =>
  output === 'discard'
    ? new DiscardingSink<string>()
    : new FileSink<string>({ path: dir ?? `out/nexmark-${q}`, format: 'lines' });
if (query === 'all') {
  const source = nexmarkEvents(env, options);
  for (const q of NEXMARK_QUERIES) {
    buildNexmarkQuery(env, q, options, source)
      .sinkTo(sinkFor(q, output && `${output}/${q}`))
      .uid(`${q}-result`);
  }
} else {
  buildNexmarkQuery(env, query, options).sinkTo(sinkFor(query, output)).uid('result');
}
await env.execute(`Nexmark ${query}`);
