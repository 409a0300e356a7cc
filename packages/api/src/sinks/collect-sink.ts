import type { Sink, SinkWriter } from '../sink.js';
import type { TaskInfo } from '../runtime-context.js';

const BATCH = 1000;

/**
 * Sends records back to the client through the JobManager (which keeps up to 64 MiB per
 * job); `weir run` prints them as JSON lines when the job finishes. Meant for tests and
 * small results.
 */
export class CollectSink<T> implements Sink<T> {
  readonly collects = true;

  createWriter(ctx: TaskInfo): SinkWriter<T> {
    const emit = ctx.emitCollected;
    if (!emit) throw new Error('CollectSink needs the weir runtime (it is not available here)');
    let batch: unknown[] = [];
    const flush = (): void => {
      if (batch.length === 0) return;
      emit(batch);
      batch = [];
    };
    return {
      write: (r: T) => {
        if (batch.push(r) >= BATCH) flush();
      },
      flush,
      close: flush,
    };
  }
}
