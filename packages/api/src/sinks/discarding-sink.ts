import type { Sink, SinkWriter } from '../sink.js';

const DISCARD: SinkWriter<unknown> = { write: () => {} };

/** Drops every record (Flink's DiscardingSink): for benchmarks that measure the pipeline, not the output. */
export class DiscardingSink<T> implements Sink<T> {
  createWriter(): SinkWriter<T> {
    return DISCARD;
  }
}
