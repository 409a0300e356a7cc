import type pg from 'pg';
import { quoteIdent, tableName } from './connection.js';

/** PostgreSQL's limit of bind parameters in one statement. */
const MAX_PARAMETERS = 65_535;

export interface BatchWriterOptions<T> {
  table: string;
  columns: string[];
  toRow: (record: T) => unknown[];
  /** upsert on these columns: `INSERT ... ON CONFLICT (...) DO UPDATE` */
  upsertKey?: string[];
  batchSize: number;
  /** batches sent and not yet done before the writer stops taking records (at least 1) */
  maxInFlightBatches: number;
}

/**
 * Buffers rows and sends them as multi-row INSERTs on one connection. The statements queue
 * on the connection in order, so a later PREPARE TRANSACTION or COMMIT follows every batch
 * before it; the first failure is kept and surfaced at the next `drain()`. In upsert mode the
 * rows of one batch are reduced by key first (the last row of a key wins), as the database
 * would end up with.
 */
export class BatchWriter<T> {
  private rows: unknown[][] = [];
  private byKey: Map<string, unknown[]> | undefined;
  private readonly keyIdx: number[];
  private readonly batchRows: number;
  private readonly statements = new Map<number, string>();
  private last: Promise<unknown> = Promise.resolve();
  failure: Error | undefined;
  /** batches sent and not done; the most there ever were (tests read it) */
  inFlight = 0;
  peakInFlight = 0;
  private room: Promise<void> | undefined;
  private freeRoom: (() => void) | undefined;
  private readonly batchDone = (): void => {
    this.inFlight--;
    if (this.inFlight < this.opts.maxInFlightBatches && this.freeRoom) {
      const free = this.freeRoom;
      this.freeRoom = undefined;
      this.room = undefined;
      free();
    }
  };

  constructor(
    private readonly client: Promise<pg.Client>,
    private readonly opts: BatchWriterOptions<T>,
    /** turns a failed batch into the error the job fails with (naming the row and column) */
    private readonly explain: (err: Error, rows: unknown[][]) => Promise<Error>,
  ) {
    this.keyIdx = (opts.upsertKey ?? []).map((k) => {
      const i = opts.columns.indexOf(k);
      if (i < 0)
        throw new Error(`PostgreSQL sink into ${opts.table}: upsert key "${k}" is not one of the columns`);
      return i;
    });
    if (this.keyIdx.length > 0) this.byKey = new Map();
    this.batchRows = Math.max(1, Math.min(opts.batchSize, Math.floor(MAX_PARAMETERS / opts.columns.length)));
  }

  add(record: T): void {
    if (this.failure) throw this.failure;
    const row = this.opts.toRow(record);
    if (row.length !== this.opts.columns.length)
      throw new Error(
        `PostgreSQL sink into ${this.opts.table}: the row ${JSON.stringify(row)} has ${row.length} values for ` +
          `${this.opts.columns.length} columns (${this.opts.columns.join(', ')})`,
      );
    if (this.byKey) {
      const k =
        this.keyIdx.length === 1
          ? String(row[this.keyIdx[0]!])
          : JSON.stringify(this.keyIdx.map((i) => row[i]));
      this.byKey.set(k, row);
      if (this.byKey.size >= this.batchRows) this.flush();
    } else {
      this.rows.push(row);
      if (this.rows.length >= this.batchRows) this.flush();
    }
  }

  get hasBuffered(): boolean {
    return this.byKey ? this.byKey.size > 0 : this.rows.length > 0;
  }

  /**
   * Runs before every batch is sent, e.g. to BEGIN when no transaction is open; set by the
   * exactly-once writer, so no batch (full or flushed at the barrier) runs outside its transaction.
   */
  beforeBatch: (() => void) | undefined;

  /** sends what is buffered */
  flush(): void {
    const rows = this.byKey ? [...this.byKey.values()] : this.rows;
    if (rows.length === 0) return;
    if (this.byKey) this.byKey.clear();
    else this.rows = [];
    this.beforeBatch?.();
    const values: unknown[] = new Array(rows.length * this.opts.columns.length);
    let p = 0;
    for (const r of rows) for (const v of r) values[p++] = v;
    this.inFlight++;
    if (this.inFlight > this.peakInFlight) this.peakInFlight = this.inFlight;
    this.query(this.statement(rows.length), values, rows).then(this.batchDone, this.batchDone);
  }

  /**
   * Undefined while fewer than `maxInFlightBatches` batches are on their way; else resolves
   * when one is done. A failure makes it undefined, so the next `add` throws it.
   */
  isAvailable(): Promise<void> | undefined {
    if (this.inFlight < this.opts.maxInFlightBatches || this.failure) return undefined;
    return (this.room ??= new Promise<void>((resolve) => (this.freeRoom = resolve)));
  }

  /** queues a statement after everything before it (one at a time: the client runs them in order) */
  query(text: string, values?: unknown[], rows?: unknown[][]): Promise<unknown> {
    const q = this.last.then(() => this.client).then((c) => c.query(text, values));
    this.last = q.catch(async (err: Error) => {
      if (this.failure) return;
      this.failure = rows ? await this.explain(err, rows).catch(() => err) : err;
    });
    return q;
  }

  /** resolves when every queued statement ran; rejects with the first failure */
  async drain(): Promise<void> {
    let last;
    do {
      last = this.last;
      await last;
    } while (last !== this.last);
    if (this.failure) throw this.failure;
  }

  private statement(n: number): string {
    let s = this.statements.get(n);
    if (s !== undefined) return s;
    const cols = this.opts.columns;
    const tuples: string[] = [];
    for (let r = 0; r < n; r++)
      tuples.push(`(${cols.map((_, c) => `$${r * cols.length + c + 1}`).join(',')})`);
    s = `INSERT INTO ${tableName(this.opts.table).sql} (${cols.map(quoteIdent).join(',')}) VALUES ${tuples.join(',')}`;
    const key = this.opts.upsertKey;
    if (key && key.length > 0) {
      const rest = cols.filter((c) => !key.includes(c));
      s +=
        ` ON CONFLICT (${key.map(quoteIdent).join(',')}) ` +
        (rest.length > 0
          ? `DO UPDATE SET ${rest.map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`).join(',')}`
          : 'DO NOTHING');
    }
    if (this.statements.size < 4) this.statements.set(n, s);
    return s;
  }
}
