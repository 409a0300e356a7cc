// A job whose user function fails with secrets in its message: args are <token file>. The
// security tests check that neither the token nor the S3 secret key reaches a log or `weir status`.
import { readFileSync } from 'node:fs';
import { StreamExecutionEnvironment, getJobArgs } from '@weir/api';

const [tokenFile] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(1);
env
  .fromElements(1, 2, 3)
  .map((x: number) => {
    if (x === 2) {
      const token = readFileSync(tokenFile!, 'utf8').trim();
      throw new Error(`S3 refused secret key ${process.env.WEIR_S3_SECRET_KEY} and token ${token}`);
    }
    return x;
  })
  .sinkTo({ createWriter: () => ({ write: () => {} }) });
await env.execute('leaky-failure');
