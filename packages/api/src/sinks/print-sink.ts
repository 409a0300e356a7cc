import type { Sink, SinkWriter } from '../sink.js';
import type { TaskInfo } from '../runtime-context.js';

const format = (r: unknown): string => (typeof r === 'string' ? r : JSON.stringify(r));

/** Records to the TaskManager's stdout as `subtask> record`, written in batches. */
export class PrintSink<T> implements Sink<T> {
  constructor(private readonly prefix?: string) {}

  createWriter(ctx: TaskInfo): SinkWriter<T> {
    const lead = `${this.prefix ? `${this.prefix}:` : ''}${ctx.parallelism > 1 ? `${ctx.subtaskIndex + 1}> ` : this.prefix ? ' ' : ''}`;
    let buf = '';
    const flush = (): void => {
      if (buf) process.stdout.write(buf);
      buf = '';
    };
    return {
      write: (r: T) => {
        buf += `${lead}${format(r)}\n`;
        if (buf.length > 16_384) flush();
      },
      flush,
      close: flush,
    };
  }
}
