/**
 * Connectors (BENCH_ONLY=connectors): a real nats-server -js and PostgreSQL started here, then
 * in one run: the raw consume rate of the JetStream client alone, the raw insert rate of the
 * PostgreSQL client alone, and JetStream -> keyed count -> PostgreSQL (upsert) on the local
 * cluster (2 TaskManagers, parallelism 2) exactly-once with checkpoints every 1 s, beside the
 * same job without checkpoints (the two-phase commit's checkpoint overhead).
 */
import path from 'node:path';
import pg from 'pg';
import { connect, DeliverPolicy } from 'nats';
import { ClusterClient } from '../packages/client/src/index.js';
import { LocalCluster } from '@weir/cli';
import { missingServers, startNats, startPostgres } from '../test/helpers/servers.js';
import { submitDetached } from './submit.js';

const MESSAGES = Number(process.env.BENCH_CONNECTOR_MESSAGES ?? 2_000_000);
const INSERTS = Number(process.env.BENCH_CONNECTOR_INSERTS ?? 500_000);
const KEYS = 1000;
const RUNS = Number(process.env.BENCH_CONNECTOR_RUNS ?? 3);
const decoder = new TextDecoder();
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function connectorsBench(here: string): Promise<void> {
  const missing = missingServers();
  if (missing) {
    console.log(`connectors: skipped, ${missing}`);
    return;
  }
  const [nats, postgres] = await Promise.all([startNats(), startPostgres()]);
  const nc = await connect({ servers: nats.url });
  const db = new pg.Client({ connectionString: postgres.url });
  await db.connect();
  const cluster = new LocalCluster({
    taskManagers: 2,
    slots: 1,
    port: 0,
    dir: path.join(here, '.tmp-connectors'),
    jobStore: false,
  });
  try {
    // the input: MESSAGES JSON integers over two subjects, published without waiting for acks
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: 'bench', subjects: ['bench.>'] });
    const enc = new TextEncoder();
    for (let i = 0; i < MESSAGES; i++) {
      nc.publish(`bench.${i % 2}`, enc.encode(String(i)));
      if (i % 10_000 === 9_999) await nc.flush();
    }
    await nc.flush();
    for (;;) {
      const got = (await jsm.streams.info('bench')).state.messages;
      if (got >= MESSAGES) break;
      await new Promise((r) => setTimeout(r, 100));
    }

    // raw consume: the nats client's ordered consumer over the whole stream, one process
    const consume: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const t0 = performance.now();
      const consumer = await nc.jetstream().consumers.get('bench', {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: 1,
      });
      let n = 0;
      let done: () => void = () => {};
      const finished = new Promise<void>((resolve) => (done = resolve));
      const messages = await consumer.consume({
        max_messages: 4096,
        callback: (m) => {
          JSON.parse(decoder.decode(m.data));
          if (++n === MESSAGES) done();
        },
      });
      const timeout = setTimeout(done, 120_000);
      await finished;
      clearTimeout(timeout);
      messages.stop();
      if (n < MESSAGES) throw new Error(`raw consume: ${n} of ${MESSAGES} messages after 120 s`);
      consume.push(MESSAGES / ((performance.now() - t0) / 1000));
      await consumer.delete().catch(() => {});
    }

    // raw insert: multi-row INSERTs of 1000 (k, n) rows, as the sink sends them
    await db.query('CREATE TABLE raw (k int NOT NULL, n int NOT NULL)');
    const insert: number[] = [];
    const tuples = Array.from({ length: 1000 }, (_, r) => `($${2 * r + 1},$${2 * r + 2})`).join(',');
    for (let run = 0; run < RUNS; run++) {
      const t0 = performance.now();
      // one statement at a time on one connection, as the sink's writer sends them
      for (let i = 0; i < INSERTS; i += 1000) {
        const values: number[] = [];
        for (let r = 0; r < 1000; r++) values.push((i + r) % KEYS, i + r);
        await db.query(`INSERT INTO raw (k, n) VALUES ${tuples}`, values);
      }
      insert.push(INSERTS / ((performance.now() - t0) / 1000));
      await db.query('TRUNCATE raw');
    }

    await cluster.start();
    const client = await ClusterClient.connect(cluster.jobManagerAddress);
    const job = async (table: string, interval: number): Promise<number> => {
      await db.query(`CREATE TABLE ${table} (k int PRIMARY KEY, n bigint NOT NULL)`);
      const jobId = await submitDetached(path.join(here, 'jobs', 'jetstream-postgres.ts'), {
        jobmanager: cluster.jobManagerAddress,
        args: [nats.url, 'bench', postgres.url, table, String(interval), 'exactly-once', String(KEYS)],
      });
      for (;;) {
        const d = await client.status(jobId);
        if (d.status === 'JOB_FAILED') throw new Error(`connector bench job failed: ${d.failureCause}`);
        if (d.status === 'JOB_FINISHED') {
          const sum = (await db.query<{ s: string }>(`SELECT sum(n) AS s FROM ${table}`)).rows[0]!.s;
          if (Number(sum) !== MESSAGES)
            throw new Error(`${table}: counts add up to ${sum}, expected ${MESSAGES}`);
          const left = (await db.query('SELECT gid FROM pg_prepared_xacts')).rows.length;
          if (left > 0) throw new Error(`${table}: ${left} prepared transactions left`);
          return MESSAGES / ((Number(d.endTime) - Number(d.startTime)) / 1000);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    const exactlyOnce: number[] = [];
    const noCheckpoints: number[] = [];
    try {
      for (let run = 0; run < RUNS; run++) {
        exactlyOnce.push(await job(`counts_eo_${run}`, 1000));
        noCheckpoints.push(await job(`counts_nc_${run}`, 0));
      }
    } finally {
      client.close();
    }
    console.log('');
    console.log(`connectors: ${fmt(MESSAGES)} JetStream messages, ${KEYS} keys, ${RUNS} runs each, medians`);
    console.log('');
    console.log('| connector path | messages or rows/s (median) |');
    console.log('|---|---:|');
    console.log(
      `| raw JetStream consume (nats client, ordered consumer, one process) | ${fmt(median(consume))} |`,
    );
    console.log(`| raw PostgreSQL insert (pg client, 1000-row INSERTs) | ${fmt(median(insert))} |`);
    console.log(
      `| JetStream -> keyed count -> PostgreSQL upsert, exactly-once, checkpoints every 1 s, 2 TaskManagers | ${fmt(median(exactlyOnce))} |`,
    );
    console.log(
      `| the same job without checkpoints (one commit at the end) | ${fmt(median(noCheckpoints))} |`,
    );
    console.log('');
    console.log(
      `two-phase commit checkpoint overhead at 1 s: ${((1 - median(exactlyOnce) / median(noCheckpoints)) * 100).toFixed(1)}%`,
    );
    console.log(
      `all runs: consume ${consume.map(fmt).join(', ')}; insert ${insert.map(fmt).join(', ')}; exactly-once ${exactlyOnce.map(fmt).join(', ')}; no checkpoints ${noCheckpoints.map(fmt).join(', ')}`,
    );
  } finally {
    await cluster.stop().catch(() => {});
    await db.end().catch(() => {});
    await nc.close().catch(() => {});
    await Promise.all([nats.stop(), postgres.stop()]);
  }
}
