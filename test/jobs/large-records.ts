// Records of 2 to 40 MB (more than 128 MiB in flight at once) through a rebalance and a keyBy
// between TaskManagers; the receiver checks every byte. Args: <output dir>.
import { DataGeneratorSource, FileSink, StreamExecutionEnvironment, getJobArgs } from '@weir/api';
import { SIZES_MB } from './large-records-data.js';

function make(i: number): { i: number; data: Uint8Array } {
  const data = new Uint8Array(SIZES_MB[i]! * 1024 * 1024);
  for (let j = 0; j < data.length; j += 4096) data[j] = (i + j / 4096) & 0xff;
  return { i, data };
}

function check(r: { i: number; data: Uint8Array }): [number, number, boolean] {
  const expected = SIZES_MB[r.i]! * 1024 * 1024;
  let ok = r.data instanceof Uint8Array && r.data.length === expected;
  for (let j = 0; ok && j < r.data.length; j++)
    ok = r.data[j] === (j % 4096 === 0 ? (r.i + j / 4096) & 0xff : 0);
  return [r.i, r.data.length, ok];
}

const [output] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env
  .fromSource(new DataGeneratorSource(make, SIZES_MB.length), 'Large records')
  .setParallelism(1)
  .rebalance()
  .map((r) => r)
  .keyBy((r) => r.i % 2)
  .map(check)
  .sinkTo(new FileSink<[number, number, boolean]>({ path: output!, format: 'json' }));
await env.execute('large-records');
