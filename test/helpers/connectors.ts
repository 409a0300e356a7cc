// Shared by the connector tests: input into JetStream, and what PostgreSQL holds.
import type pg from 'pg';
import type { JetStreamManager, NatsConnection } from 'nats';

/** Publishes from..from+n-1 as JSON onto <stream>.0 / <stream>.1 (by parity), `rate` per second. */
export async function publish(
  nc: NatsConnection,
  stream: string,
  n: number,
  rate = Infinity,
  from = 0,
): Promise<void> {
  const js = nc.jetstream();
  const started = Date.now();
  const pending: Array<Promise<unknown>> = [];
  for (let j = 0; j < n; j++) {
    const i = from + j;
    pending.push(js.publish(`${stream}.${i % 2}`, JSON.stringify(i)));
    if (pending.length >= 500) await Promise.all(pending.splice(0));
    const due = started + (j / rate) * 1000;
    if (due > Date.now() + 20) await new Promise((r) => setTimeout(r, due - Date.now()));
  }
  await Promise.all(pending);
}

/** A stream over `<name>.>`. */
export async function addStream(jsm: JetStreamManager, name: string): Promise<void> {
  await jsm.streams.add({ name, subjects: [`${name}.>`] });
}

/** The ids of the prepared transactions the server holds (none may be left after a job). */
export async function preparedXacts(db: pg.Client): Promise<string[]> {
  return (await db.query<{ gid: string }>('SELECT gid FROM pg_prepared_xacts')).rows.map((r) => r.gid);
}

/** The job id `weir run --detached` printed. */
export function submittedId(stdout: string): string {
  return /submitted with id (\w+)/.exec(stdout)![1]!;
}

/**
 * Keys whose count updates (rows (k, n) appended by the keyed count) are not exactly 1..perKey:
 * a missing update or a repeated one shows here.
 */
export async function inexactKeys(db: pg.Client, table: string, perKey: number): Promise<unknown[]> {
  const r = await db.query(
    `SELECT k, count(*) AS rows, count(DISTINCT n) AS distinct_n, min(n) AS lo, max(n) AS hi FROM ${table}
      GROUP BY k HAVING count(*) <> $1 OR count(DISTINCT n) <> $1 OR min(n) <> 1 OR max(n) <> $1`,
    [perKey],
  );
  return r.rows;
}
