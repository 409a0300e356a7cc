// Collected records with Map, Set, bigint and Date, printed by `weir run` as JSON lines.
import { StreamExecutionEnvironment } from '@weir/api';

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env
  .fromElements(1, 2)
  .rebalance()
  .map((i: number) => ({
    i,
    m: new Map([['a', i]]),
    objectKeys: new Map([[{ x: i }, 'v']]),
    s: new Set([i, 'i']),
    small: BigInt(i),
    big: 2n ** 70n,
    at: new Date(i),
  }))
  .collect();
await env.execute('collect-typed');
