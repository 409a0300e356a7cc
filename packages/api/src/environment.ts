import { DataStream, SingleOutputStreamOperator } from './datastream.js';
import { currentPlanner } from './planner.js';
import type { Source } from './source.js';
import { CollectionSource } from './sources/collection-source.js';
import { NumberSequenceSource } from './sources/number-sequence-source.js';
import { SocketTextSource } from './sources/socket-text-source.js';
import { TextFileSource, type TextFileSourceOptions } from './sources/text-file-source.js';
import {
  buildStreamGraph,
  type StateBackendOptions,
  type StateBackendType,
  type StreamGraph,
} from './stream-graph.js';
import type { Transformation } from './transformation.js';
import { WatermarkStrategy } from './eventtime/watermark.js';
import { CheckpointConfig, type CheckpointingMode } from './checkpoint-config.js';
import { validateRestartStrategy, type RestartStrategyConfiguration } from './restart-strategy.js';

export const DEFAULT_MAX_PARALLELISM = 128;

/** What `execute()` resolves to once a job has been handed over. */
export interface JobExecutionResult {
  jobName: string;
}

/**
 * Entry point of every job. A job module builds its pipeline on an environment and calls
 * `execute()`; `weir run` evaluates the module in planning mode and submits the graph.
 */
export class StreamExecutionEnvironment {
  private parallelism: number | undefined;
  private maxParallelism = DEFAULT_MAX_PARALLELISM;
  private readonly transformations: Transformation[] = [];
  private readonly sinks: Transformation[] = [];
  private seq = 0;
  private readonly checkpointConfig = new CheckpointConfig();
  private stateBackend: StateBackendType | undefined;
  private incrementalCheckpoints: boolean | undefined;
  private restartStrategy: RestartStrategyConfiguration | undefined;
  private autoWatermarkIntervalMs: number | undefined;

  static getExecutionEnvironment(): StreamExecutionEnvironment {
    return new StreamExecutionEnvironment();
  }

  setParallelism(parallelism: number): this {
    if (!Number.isInteger(parallelism) || parallelism < 1) {
      throw new Error(`Parallelism must be a positive integer, got ${parallelism}`);
    }
    this.parallelism = parallelism;
    return this;
  }

  /** Takes a checkpoint every `intervalMs` (Flink's enableCheckpointing). */
  enableCheckpointing(intervalMs: number, mode: CheckpointingMode = 'EXACTLY_ONCE'): this {
    this.checkpointConfig.setCheckpointInterval(intervalMs).setCheckpointingMode(mode);
    return this;
  }

  getCheckpointConfig(): CheckpointConfig {
    return this.checkpointConfig;
  }

  /**
   * Where keyed state lives: 'heap' (the task's memory) or 'rocksdb' (a RocksDB database per
   * task on the TaskManager's local disk, for state larger than memory). Wins over the
   * cluster's `state.backend.type`; checkpoints and savepoints of either restore into the other.
   * `{ incremental: true }` (RocksDB) makes checkpoints upload only what changed since the last
   * completed one; it wins over the cluster's `state.backend.incremental`.
   */
  setStateBackend(backend: StateBackendType, options: StateBackendOptions = {}): this {
    if (backend !== 'heap' && backend !== 'rocksdb') {
      throw new Error(`Unknown state backend ${JSON.stringify(backend)}; expected 'heap' or 'rocksdb'`);
    }
    if (options.incremental !== undefined && typeof options.incremental !== 'boolean') {
      throw new Error(
        `State backend option 'incremental' must be true or false, got ${JSON.stringify(options.incremental)}`,
      );
    }
    this.stateBackend = backend;
    this.incrementalCheckpoints = options.incremental;
    return this;
  }

  getStateBackend(): StateBackendType | undefined {
    return this.stateBackend;
  }

  /**
   * How the job restarts after a failure (Flink's setRestartStrategy). Unset, the cluster's
   * `restart-strategy.type` applies: exponential delay when checkpointing is on, else none.
   */
  setRestartStrategy(strategy: RestartStrategyConfiguration): this {
    this.restartStrategy = validateRestartStrategy(strategy);
    return this;
  }

  /**
   * How often sources and timestamp assigners emit periodic watermarks (Flink's
   * `pipeline.auto-watermark-interval`, default 200 ms); wins over the cluster's setting.
   */
  setAutoWatermarkInterval(ms: number): this {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0)
      throw new Error(`setAutoWatermarkInterval needs a number of milliseconds > 0, got ${String(ms)}`);
    this.autoWatermarkIntervalMs = ms;
    return this;
  }

  getRestartStrategy(): RestartStrategyConfiguration | undefined {
    return this.restartStrategy;
  }

  getParallelism(): number {
    return this.parallelism ?? currentPlanner()?.defaultParallelism ?? 1;
  }

  /** Number of key groups: the upper bound of any operator's parallelism, fixed for the job's life. */
  setMaxParallelism(maxParallelism: number): this {
    if (!Number.isInteger(maxParallelism) || maxParallelism < 1 || maxParallelism > 32768) {
      throw new Error(`Max parallelism must be an integer in 1..32768, got ${maxParallelism}`);
    }
    this.maxParallelism = maxParallelism;
    return this;
  }

  getMaxParallelism(): number {
    return this.maxParallelism;
  }

  /** @internal */
  addTransformation(t: Omit<Transformation, 'seq'>): Transformation {
    const full: Transformation = { ...t, seq: this.seq++ };
    this.transformations.push(full);
    return full;
  }

  /** @internal */
  registerSink(t: Transformation): void {
    this.sinks.push(t);
  }

  /**
   * A stream read from a source. With a WatermarkStrategy (Flink's
   * `fromSource(source, strategy, name)`) each source subtask assigns timestamps and emits
   * watermarks itself, every `pipeline.auto-watermark-interval`, and a bounded source ends
   * with the final watermark.
   */
  fromSource<T>(source: Source<T>, name?: string): SingleOutputStreamOperator<T>;
  fromSource<T>(
    source: Source<T>,
    strategy: WatermarkStrategy<T>,
    name?: string,
  ): SingleOutputStreamOperator<T>;
  fromSource<T>(
    source: Source<T>,
    strategyOrName?: WatermarkStrategy<T> | string,
    sourceName?: string,
  ): SingleOutputStreamOperator<T> {
    if (!source || typeof source.createReader !== 'function') {
      throw new Error('fromSource() needs a Source (an object with createReader)');
    }
    let strategy: WatermarkStrategy<T> | undefined;
    let name = 'Source';
    if (typeof strategyOrName === 'string') name = strategyOrName;
    else if (strategyOrName !== undefined) {
      if (!(strategyOrName instanceof WatermarkStrategy))
        throw new Error(
          'fromSource(source, strategy, name) needs a WatermarkStrategy, e.g. WatermarkStrategy.forMonotonousTimestamps()',
        );
      strategy = strategyOrName;
      name = sourceName ?? name;
    }
    const t = this.addTransformation({
      kind: 'source',
      name,
      inputs: [],
      source: source as Source<unknown>,
      ...(strategy ? { watermarkStrategy: strategy as WatermarkStrategy<unknown> } : {}),
    });
    if (source.maxParallelism !== undefined) t.parallelismCap = source.maxParallelism;
    return new SingleOutputStreamOperator<T>(this, t);
  }

  fromElements<T>(...elements: T[]): SingleOutputStreamOperator<T> {
    return this.fromSource(new CollectionSource(elements), 'Source: Collection');
  }

  fromCollection<T>(collection: Iterable<T>): SingleOutputStreamOperator<T> {
    return this.fromSource(new CollectionSource([...collection]), 'Source: Collection');
  }

  /** Numbers from `from` to `to`, both inclusive, split evenly across the subtasks. */
  fromSequence(from: number, to: number): SingleOutputStreamOperator<number> {
    return this.fromSource(new NumberSequenceSource(from, to), 'Source: Sequence');
  }

  /**
   * Lines of a file, of every file in a directory, or of the files a glob in the file name
   * matches (`logs/*.txt`), read exactly once with checkpoints.
   */
  readTextFile(path: string, options?: TextFileSourceOptions): SingleOutputStreamOperator<string> {
    return this.fromSource(new TextFileSource(path, options), `Source: ${path}`);
  }

  /** Lines read from a TCP server; runs as a single subtask. */
  socketTextStream(host: string, port: number, delimiter = '\n'): SingleOutputStreamOperator<string> {
    return this.fromSource(new SocketTextSource(host, port, delimiter), `Source: Socket ${host}:${port}`);
  }

  /** The graph this environment describes, with virtual nodes resolved into edges. */
  getStreamGraph(jobName = 'weir job'): StreamGraph {
    if (this.sinks.length === 0) {
      throw new Error(
        'The job has no sinks: end the pipeline with sinkTo(...), print() or another sink before execute()',
      );
    }
    return {
      ...buildStreamGraph(jobName, this.sinks, this.getParallelism(), this.maxParallelism),
      checkpoint: this.checkpointConfig.explicitSettings(),
      ...(this.stateBackend ? { stateBackend: this.stateBackend } : {}),
      ...(this.incrementalCheckpoints !== undefined
        ? { incrementalCheckpoints: this.incrementalCheckpoints }
        : {}),
      ...(this.restartStrategy ? { restartStrategy: this.restartStrategy } : {}),
      ...(this.autoWatermarkIntervalMs !== undefined
        ? { autoWatermarkIntervalMs: this.autoWatermarkIntervalMs }
        : {}),
    };
  }

  /**
   * Hands the job to the planner that loaded this module. Under `weir run` the promise never
   * settles (the client takes over from there), so code after `execute()` does not run.
   */
  execute(jobName = 'weir job'): Promise<JobExecutionResult> {
    const planner = currentPlanner();
    const graph = this.getStreamGraph(jobName);
    if (!planner) {
      return Promise.reject(
        new Error(
          `Job '${jobName}' was run directly; submit it with \`weir run <job-file>\` (add --local for a local cluster)`,
        ),
      );
    }
    planner.onExecute(graph);
    return new Promise<JobExecutionResult>(() => {});
  }
}

export { DataStream };
