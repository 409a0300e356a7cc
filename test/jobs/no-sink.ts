import { StreamExecutionEnvironment } from '@weir/api';

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.fromSequence(1, 10).map((n: number) => n + 1);
await env.execute('no-sink');
