import type pg from 'pg';
import {
  TwoPhaseCommittingSink,
  type Committer,
  type PrecommittingWriter,
  type Sink,
  type SinkWriter,
  type TaskInfo,
  type TransactionContext,
} from '@weir/api';
import { BatchWriter, type BatchWriterOptions } from './batch-writer.js';
import {
  checkTable,
  connectPostgres,
  describeConnection,
  quoteIdent,
  tableName,
  type PostgresConnection,
} from './connection.js';

export interface PostgresSinkOptions<T> {
  connection: PostgresConnection;
  table: string;
  columns: string[];
  toRow: (record: T) => unknown[];
  /**
   * Upsert on these columns (`INSERT ... ON CONFLICT (...) DO UPDATE`, the key needs a unique
   * index): rows of one batch are reduced by key, and a replay rewrites the same rows, so
   * with at-least-once the table still ends up exact.
   */
  upsertKey?: string[];
  /**
   * `exactly-once` (default): a transaction per checkpoint, PREPARE TRANSACTION at the barrier,
   * COMMIT PREPARED when the checkpoint completes; needs `max_prepared_transactions` > 0.
   * `at-least-once`: batches commit as they go, and everything is flushed at each barrier.
   */
  semantic?: 'exactly-once' | 'at-least-once';
  /** rows per INSERT statement (default 1000, at most 65535 parameters) */
  batchSize?: number;
  /**
   * INSERT batches sent and not yet done before the sink stops reading its input (default 4):
   * a slow database slows the job (backpressure) instead of growing the sink's memory, which
   * stays near (maxInFlightBatches + 1) x batchSize rows per subtask.
   */
  maxInFlightBatches?: number;
  /**
   * Prefix of the prepared transactions' ids (default `weir:<table>`). On start, prepared
   * transactions with this prefix that no restored checkpoint names are rolled back, so jobs
   * writing into one database at once need prefixes of their own.
   */
  transactionIdPrefix?: string;
}

/** A prepared transaction: what a checkpoint keeps for the PostgreSQL sink. */
export interface PreparedTransaction {
  gid: string;
}

/** `42704`: no prepared transaction with that id (it was committed already) */
const UNDEFINED_OBJECT = '42704';

/**
 * Writes rows into a PostgreSQL table, exactly once with weir's checkpoints (a transaction per
 * checkpoint, two-phase commit) or at least once (plain batches, idempotent with `upsertKey`).
 */
export class PostgresSink<T> implements Sink<T> {
  private readonly exactlyOnce: ExactlyOncePostgresSink<T>;
  constructor(private readonly opts: PostgresSinkOptions<T>) {
    if (opts.columns.length === 0) throw new Error(`PostgreSQL sink into ${opts.table}: no columns given`);
    this.exactlyOnce = new ExactlyOncePostgresSink(opts);
  }

  createWriter(ctx: TaskInfo, restored?: unknown[]): SinkWriter<T> {
    if ((this.opts.semantic ?? 'exactly-once') === 'exactly-once')
      return this.exactlyOnce.createWriter(ctx, restored);
    return atLeastOnceWriter(this.opts, ctx);
  }
}

function who<T>(opts: PostgresSinkOptions<T>, ctx: TaskInfo): string {
  return `PostgreSQL sink '${ctx.taskName}' into ${opts.table} at ${describeConnection(opts.connection)}`;
}

/** Connects and checks the table (and, for exactly-once, that transactions can be prepared). */
async function open<T>(opts: PostgresSinkOptions<T>, ctx: TaskInfo, prepared: boolean): Promise<pg.Client> {
  const name = who(opts, ctx);
  const client = await connectPostgres(opts.connection, name);
  try {
    await checkTable(client, opts.table, opts.columns, describeConnection(opts.connection), name);
    if (prepared) {
      const r = await client.query<{ max_prepared_transactions: string }>('SHOW max_prepared_transactions');
      if (Number(r.rows[0]!.max_prepared_transactions) <= 0)
        throw new Error(
          `${name}: exactly-once needs prepared transactions, but max_prepared_transactions is 0 on the server; ` +
            'set max_prepared_transactions (e.g. 64, at least the sink parallelism times 2) in postgresql.conf and restart ' +
            "PostgreSQL, or use semantic: 'at-least-once' with an upsertKey",
        );
    }
    return client;
  } catch (err) {
    await client.end().catch(() => {});
    throw err;
  }
}

/**
 * Finds the row of a failed batch that the table refuses, by inserting the rows one by one in a
 * transaction of a separate connection that is rolled back, and names it and its column.
 */
function explainer<T>(opts: PostgresSinkOptions<T>, ctx: TaskInfo) {
  return async (err: Error, rows: unknown[][]): Promise<Error> => {
    const name = who(opts, ctx);
    const pgErr = err as Error & { code?: string; column?: string };
    const client = await connectPostgres(opts.connection, name);
    try {
      await client.query('BEGIN');
      const sql = `INSERT INTO ${tableName(opts.table).sql} (${opts.columns.map(quoteIdent).join(',')}) VALUES (${opts.columns.map((_, i) => `$${i + 1}`).join(',')})`;
      for (const row of rows) {
        await client.query('SAVEPOINT one_row');
        try {
          await client.query(sql, row);
          await client.query('RELEASE SAVEPOINT one_row');
        } catch (e) {
          const rowErr = e as Error & { code?: string; column?: string };
          const column = rowErr.column ?? guessColumn(rowErr.message, row, opts.columns);
          const shown = Object.fromEntries(opts.columns.map((c, i) => [c, row[i]]));
          return new Error(
            `${name}: the row ${JSON.stringify(shown)} does not fit the table` +
              `${column ? `: column "${column}"` : ''}: ${rowErr.message}${rowErr.code ? ` (SQLSTATE ${rowErr.code})` : ''}`,
          );
        }
      }
      return new Error(`${name}: a batch of ${rows.length} rows failed: ${pgErr.message}`);
    } finally {
      await client.query('ROLLBACK').catch(() => {});
      await client.end().catch(() => {});
    }
  };
}

/** The column whose value PostgreSQL quotes in its message ("invalid input syntax for type integer: \"x\""). */
function guessColumn(message: string, row: unknown[], columns: string[]): string | undefined {
  const i = row.findIndex((v) => v !== null && v !== undefined && message.includes(`"${String(v)}"`));
  return i >= 0 ? columns[i] : undefined;
}

function batchOptions<T>(opts: PostgresSinkOptions<T>): BatchWriterOptions<T> {
  return {
    ...opts,
    batchSize: opts.batchSize ?? 1000,
    maxInFlightBatches: Math.max(1, opts.maxInFlightBatches ?? 4),
  };
}

function atLeastOnceWriter<T>(opts: PostgresSinkOptions<T>, ctx: TaskInfo): SinkWriter<T> {
  const client = open(opts, ctx, false);
  client.catch(() => {});
  const batches = new BatchWriter<T>(client, batchOptions(opts), explainer(opts, ctx));
  const drain = async (): Promise<void> => {
    batches.flush();
    await client;
    await batches.drain();
  };
  return {
    open: async () => {
      await client;
    },
    write: (r) => batches.add(r),
    isAvailable: () => batches.isAvailable(),
    snapshotState: () => {
      batches.flush();
      return [];
    },
    preCommitted: drain,
    flush: drain,
    close: async () => {
      const c = await client.catch(() => undefined);
      await c?.end().catch(() => {});
    },
  };
}

class ExactlyOncePostgresSink<T> extends TwoPhaseCommittingSink<T, PreparedTransaction> {
  private readonly prefix: string;
  constructor(private readonly opts: PostgresSinkOptions<T>) {
    super();
    this.prefix = opts.transactionIdPrefix ?? `weir:${opts.table}`;
  }

  createPrecommittingWriter(ctx: TransactionContext): PrecommittingWriter<T, PreparedTransaction> {
    const client = open(this.opts, ctx, true);
    client.catch(() => {});
    const batches = new BatchWriter<T>(client, batchOptions(this.opts), explainer(this.opts, ctx));
    let open_ = false;
    batches.beforeBatch = () => {
      if (!open_) {
        open_ = true;
        void batches.query('BEGIN');
      }
    };
    return {
      open: async () => {
        await client;
      },
      write: (r) => batches.add(r),
      isAvailable: () => batches.isAvailable(),
      prepareCommit: (checkpointId) => {
        batches.flush();
        if (!open_) return undefined;
        open_ = false;
        const gid = `${this.prefix}:${ctx.subtaskIndex}:${ctx.writerId}:${checkpointId}`;
        void batches.query(`PREPARE TRANSACTION '${gid.replace(/'/g, "''")}'`);
        return { gid };
      },
      preCommitted: async () => {
        await client;
        await batches.drain();
      },
      close: async () => {
        const c = await client.catch(() => undefined);
        if (!c) return;
        // the open transaction goes with the session; prepared ones stay for the restore
        await c.end().catch(() => {});
      },
    };
  }

  createCommitter(
    ctx: TransactionContext,
  ): Committer<PreparedTransaction> & { client(): Promise<pg.Client> } {
    let client: Promise<pg.Client> | undefined;
    const name = who(this.opts, ctx);
    const get = (): Promise<pg.Client> => (client ??= connectPostgres(this.opts.connection, name));
    return {
      client: get,
      commit: async (committables) => {
        const c = await get();
        for (const { gid } of committables) {
          try {
            await c.query(`COMMIT PREPARED '${gid.replace(/'/g, "''")}'`);
          } catch (err) {
            // committed before (by an earlier attempt, before it failed): nothing to do
            if ((err as { code?: string }).code !== UNDEFINED_OBJECT)
              throw new Error(`${name}: COMMIT PREPARED '${gid}' failed: ${(err as Error).message}`);
          }
        }
      },
      close: async () => {
        const c = await client?.catch(() => undefined);
        await c?.end().catch(() => {});
      },
    };
  }

  protected async recover(
    ctx: TransactionContext,
    committables: PreparedTransaction[],
    committer: Committer<PreparedTransaction>,
  ): Promise<void> {
    await committer.commit(committables);
    const c = await (committer as ReturnType<typeof this.createCommitter>).client();
    const known = new Set(committables.map((x) => x.gid));
    const r = await c.query<{ gid: string }>(
      `SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND starts_with(gid, $1)`,
      [`${this.prefix}:`],
    );
    let rolledBack = 0;
    for (const { gid } of r.rows) {
      const [owner, writerId] = gid.slice(this.prefix.length + 1).split(':');
      if (Number(owner) % ctx.parallelism !== ctx.subtaskIndex || writerId === ctx.writerId || known.has(gid))
        continue;
      // prepared for a checkpoint that never completed: its rows are replayed from the source
      await c
        .query(`ROLLBACK PREPARED '${gid.replace(/'/g, "''")}'`)
        .catch((err: { code?: string; message: string }) => {
          if (err.code !== UNDEFINED_OBJECT) throw err;
        });
      rolledBack++;
    }
    if (committables.length > 0 || rolledBack > 0)
      console.log(
        `${who(this.opts, ctx)}: recovered subtask ${ctx.subtaskIndex}: ` +
          `committed ${committables.length} prepared transaction(s) the checkpoint names, rolled back ${rolledBack} it does not`,
      );
  }
}
