import type { Source, SourceReader } from '../../source.js';
import type { TaskInfo } from '../../runtime-context.js';
import { DataGeneratorSource } from '../data-generator-source.js';
import { NexmarkGenerator, type NexmarkConfig } from './generator.js';
import type { NexmarkEvent } from './model.js';

export interface NexmarkSourceOptions extends Partial<NexmarkConfig> {
  /** number of events; omitted: unbounded */
  count?: number;
  /** throttle emission to this many events per second over all subtasks; omitted: as fast as possible */
  emitRate?: number;
}

/**
 * Nexmark events as a source: subtask i generates indices i, i+p, ..., so the union of all
 * subtasks is the generator's sequence whatever the parallelism, and a restored job resumes
 * at the indices in its checkpoint. Event time comes from the events (`nexmarkEventTime`),
 * not from the emission rate.
 */
export class NexmarkSource implements Source<NexmarkEvent> {
  readonly boundedness;
  readonly generator: NexmarkGenerator;
  private readonly inner: DataGeneratorSource<NexmarkEvent>;

  constructor(options: NexmarkSourceOptions = {}) {
    const { count, emitRate, ...config } = options;
    this.generator = new NexmarkGenerator(config);
    const gen = this.generator;
    this.inner = new DataGeneratorSource<NexmarkEvent>((i) => gen.nextEvent(i), count, emitRate);
    this.boundedness = this.inner.boundedness;
  }

  createReader(context: TaskInfo, restored?: unknown[]): SourceReader<NexmarkEvent> {
    return this.inner.createReader(context, restored);
  }
}
