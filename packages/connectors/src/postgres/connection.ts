import pg from 'pg';

/** A connection string (`postgres://user@host:port/db`) or the `pg` client's settings. */
export type PostgresConnection = string | pg.ClientConfig;

/** `host:port/database`, for error messages (never the password). */
export function describeConnection(c: PostgresConnection): string {
  const cfg = typeof c === 'string' ? safeUrl(c) : c;
  return `${cfg.host ?? 'localhost'}:${cfg.port ?? 5432}/${cfg.database ?? '(default database)'}`;
}

function safeUrl(s: string): { host?: string; port?: number; database?: string } {
  try {
    const u = new URL(s);
    return {
      host: u.hostname,
      ...(u.port ? { port: Number(u.port) } : {}),
      ...(u.pathname.length > 1 ? { database: decodeURIComponent(u.pathname.slice(1)) } : {}),
    };
  } catch {
    return {};
  }
}

/** A connected client; the error names the address when the server is not there. */
export async function connectPostgres(c: PostgresConnection, who: string): Promise<pg.Client> {
  const client = new pg.Client(typeof c === 'string' ? { connectionString: c } : c);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => {});
    throw new Error(
      `${who}: cannot connect to PostgreSQL at ${describeConnection(c)} (${(err as Error).message}); ` +
        'check that the server runs there and accepts this user',
    );
  }
  // a server restart ends the session; the task fails over and reconnects
  client.on('error', () => {});
  return client;
}

/** `schema.table` or `table`, as a quoted identifier and its parts. */
export function tableName(table: string): { schema: string | undefined; name: string; sql: string } {
  const dot = table.indexOf('.');
  const schema = dot >= 0 ? table.slice(0, dot) : undefined;
  const name = dot >= 0 ? table.slice(dot + 1) : table;
  return { schema, name, sql: schema ? `${quoteIdent(schema)}.${quoteIdent(name)}` : quoteIdent(name) };
}

export function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/** The table's columns and their types; an error naming the table or the missing columns. */
export async function checkTable(
  client: pg.Client,
  table: string,
  columns: string[],
  where: string,
  who: string,
): Promise<Map<string, string>> {
  const t = tableName(table);
  const r = await client.query<{ column_name: string; data_type: string }>(
    `SELECT column_name, data_type FROM information_schema.columns
      WHERE table_schema = coalesce($1, current_schema()) AND table_name = $2`,
    [t.schema ?? null, t.name],
  );
  if (r.rows.length === 0)
    throw new Error(
      `${who}: table ${table} does not exist in ${where}; create it first or fix the table name`,
    );
  const types = new Map(r.rows.map((row) => [row.column_name, row.data_type]));
  const missing = columns.filter((c) => !types.has(c));
  if (missing.length > 0)
    throw new Error(
      `${who}: table ${table} in ${where} has no column ${missing.map((m) => `"${m}"`).join(', ')} ` +
        `(it has ${[...types.keys()].join(', ')})`,
    );
  return types;
}
