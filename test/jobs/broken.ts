import { StreamExecutionEnvironment } from '@weir/api';

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.fromSequence(1, 10).map((n: number) => n + ;
await env.execute('broken');
