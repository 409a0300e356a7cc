import type pg from 'pg';
import {
  InputStatus,
  SplitSource,
  type SourceSplit,
  type SplitReader,
  type SplitReaderOutput,
  type TaskInfo,
} from '@weir/api';
import { connectPostgres, describeConnection, quoteIdent, type PostgresConnection } from './connection.js';

export interface PostgresSourceOptions<T> {
  connection: PostgresConnection;
  /** a SELECT whose rows are read; it is wrapped, so it may have its own WHERE and joins */
  query: string;
  /** a numeric column of the query, unique per row: splits are ranges of it, positions its values */
  partitionColumn: string;
  /** the range read: lowerBound <= column <= upperBound */
  lowerBound: number;
  upperBound: number;
  /** number of ranges (splits); default 1 */
  numPartitions?: number;
  /** rows per round trip (default 2000) */
  fetchSize?: number;
  /** turns a row into a record; default: the row object */
  fromRow?: (row: Record<string, unknown>) => T;
}

/** A range of the partition column, and the last value read in it. */
export interface PostgresRangeSplit extends SourceSplit {
  /** from (inclusive) */
  lo: number;
  /** to (exclusive, inclusive for the last range) */
  hi: number;
  last: boolean;
  /** position: the column value of the last row emitted */
  after?: number;
}

/**
 * A bounded query split by ranges of a numeric column, after Flink's JDBC source: each split
 * reads its range in pages ordered by the column (keyset paging), and its position is the last
 * value read, so a restore reads on from the next row. The column must be unique per row.
 */
export class PostgresSource<T> extends SplitSource<T, PostgresRangeSplit> {
  readonly boundedness = 'BOUNDED' as const;
  constructor(private readonly opts: PostgresSourceOptions<T>) {
    super();
    if (!(opts.lowerBound <= opts.upperBound))
      throw new Error(
        `PostgreSQL source: lowerBound ${opts.lowerBound} is above upperBound ${opts.upperBound}`,
      );
  }

  createSplits(): PostgresRangeSplit[] {
    const n = Math.max(1, this.opts.numPartitions ?? 1);
    const { lowerBound: lo, upperBound: hi } = this.opts;
    const step = (hi - lo) / n;
    return Array.from({ length: n }, (_, k) => ({
      splitId: `range-${k}`,
      lo: k === 0 ? lo : lo + step * k,
      hi: k === n - 1 ? hi : lo + step * (k + 1),
      last: k === n - 1,
    }));
  }

  createSplitReader(split: PostgresRangeSplit, ctx: TaskInfo): SplitReader<T, PostgresRangeSplit> {
    return new RangeReader({ ...split }, this.opts, ctx);
  }
}

class RangeReader<T> implements SplitReader<T, PostgresRangeSplit> {
  private client: pg.Client | undefined;
  private rows: Array<Record<string, unknown>> = [];
  private at = 0;
  private loading: Promise<void> | undefined;
  private done = false;
  private failure: Error | undefined;
  private readonly sql: string;
  private readonly who: string;

  constructor(
    private readonly split: PostgresRangeSplit,
    private readonly opts: PostgresSourceOptions<T>,
    ctx: TaskInfo,
  ) {
    const col = quoteIdent(opts.partitionColumn);
    this.sql =
      `SELECT * FROM (${opts.query}) AS q WHERE ${col} >= $1::numeric AND ${col} ${split.last ? '<=' : '<'} $2::numeric ` +
      `AND ($3::numeric IS NULL OR ${col} > $3) ORDER BY ${col} LIMIT ${opts.fetchSize ?? 2000}`;
    this.who = `PostgreSQL source '${ctx.taskName}' at ${describeConnection(opts.connection)}`;
  }

  async start(): Promise<void> {
    this.client = await connectPostgres(this.opts.connection, this.who);
    await this.load();
  }

  private load(): Promise<void> {
    return (this.loading ??= this.client!.query(this.sql, [
      this.split.lo,
      this.split.hi,
      this.split.after ?? null,
    ]).then(
      (r) => {
        this.rows = r.rows as Array<Record<string, unknown>>;
        this.at = 0;
        if (r.rows.length === 0) this.done = true;
        if (r.rows.length > 0 && !(this.opts.partitionColumn in r.rows[0]!))
          this.failure = new Error(`${this.who}: the query has no column "${this.opts.partitionColumn}"`);
        this.loading = undefined;
      },
      (err: Error) => {
        this.failure = new Error(`${this.who}: the query failed: ${err.message}`);
        this.loading = undefined;
      },
    ));
  }

  fetch(output: SplitReaderOutput<T>, budget: number): InputStatus {
    if (this.failure) throw this.failure;
    if (this.done) return InputStatus.END_OF_INPUT;
    const col = this.opts.partitionColumn;
    const map = this.opts.fromRow;
    while (budget-- > 0 && this.at < this.rows.length) {
      const row = this.rows[this.at++]!;
      output.collect(map ? map(row) : (row as T));
      this.split.after = Number(row[col]);
    }
    if (this.at < this.rows.length) return InputStatus.MORE_AVAILABLE;
    if (this.loading === undefined) void this.load();
    return InputStatus.NOTHING_AVAILABLE;
  }

  isAvailable(): Promise<void> {
    return this.loading ?? Promise.resolve();
  }

  snapshot(): PostgresRangeSplit {
    return { ...this.split };
  }

  async close(): Promise<void> {
    await this.client?.end().catch(() => {});
  }
}
