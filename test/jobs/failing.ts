// A user function that throws on a particular record.
import { StreamExecutionEnvironment } from '@weir/api';

function checkRecord(n: number): number {
  if (n === 500) throw new Error(`bad record ${n}`);
  return n * 2;
}

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.fromSequence(1, 1000).map(checkRecord).print();
await env.execute('failing');
