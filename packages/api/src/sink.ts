import type { TaskInfo } from './runtime-context.js';

/** Writes one subtask's records; `close` runs once the input ended or the task is canceled. */
export interface SinkWriter<T> {
  write(record: T): void;
  /** called at the end of input so buffered records reach their destination */
  flush?(endOfInput: boolean): void | Promise<void>;
  close?(): void | Promise<void>;
}

export interface Sink<T> {
  createWriter(context: TaskInfo): SinkWriter<T>;
}
