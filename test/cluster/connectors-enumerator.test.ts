import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readdirSync, readFileSync } from 'node:fs';
import { connect, type NatsConnection, type JetStreamManager } from 'nats';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { ROOT, TestCluster, until } from '../helpers/cli.js';
import { missingServers, startNats, type TestServer } from '../helpers/servers.js';
import { addStream, submittedId } from '../helpers/connectors.js';

const job = path.join(ROOT, 'test/jobs/jetstream-discovery.ts');
const skip = missingServers();

/** Publishes the integers [from, to) as JSON, integer i onto `<stream>.s<i % subjects>`. */
async function publishOnto(nc: NatsConnection, stream: string, subjects: number, from: number, to: number) {
  const js = nc.jetstream();
  const pending: Array<Promise<unknown>> = [];
  for (let i = from; i < to; i++) {
    pending.push(js.publish(`${stream}.s${i % subjects}`, JSON.stringify(i)));
    if (pending.length >= 500) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
}

/** Every integer in [0, n) doubled in the output stream, each exactly once. */
async function assertExactlyOnce(nc: NatsConnection, jsm: JetStreamManager, output: string, n: number) {
  assert.equal((await jsm.streams.info(output)).state.messages, n, 'no message twice');
  const seen = new Uint8Array(n);
  const consumer = await nc.jetstream().consumers.get(output);
  const messages = await consumer.fetch({ max_messages: n, expires: 5_000 });
  let got = 0;
  for await (const m of messages) {
    seen[m.json<number>() / 2] = 1;
    if (++got === n) break;
  }
  assert.equal(got, n);
  assert.equal(seen.indexOf(0), -1, 'every input message in the output');
}

/** The `_metadata` of the job's newest checkpoint under the cluster's directory. */
function latestCheckpoint(
  dir: string,
  jobId: string,
): {
  operators: Record<
    string,
    {
      coordinatorState?: { enumerator: { assigned: string[] } };
      subtasks: Record<string, { operatorState?: Array<{ splitId: string }> }>;
    }
  >;
} {
  const files = (readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => f.includes(jobId) && /chk-\d+[/\\]_metadata$/.test(f))
    .sort((a, b) => Number(/chk-(\d+)/.exec(b)![1]) - Number(/chk-(\d+)/.exec(a)![1]));
  assert.ok(files.length > 0, `no checkpoint of ${jobId} under ${dir}`);
  return JSON.parse(readFileSync(path.join(dir, files[0]!), 'utf8'));
}

describe('split enumerator on the JobManager (nats-server -js)', { skip }, () => {
  let nats: TestServer;
  let cluster: TestCluster;
  let client: ClusterClient;
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  before(async () => {
    [nats, cluster] = await Promise.all([
      startNats(),
      new TestCluster({ taskManagers: 3, slots: 1 }).start(),
    ]);
    client = await ClusterClient.connect(cluster.address);
    nc = await connect({ servers: nats.url });
    jsm = await nc.jetstreamManager();
  });
  after(async () => {
    client?.close();
    await nc?.close().catch(() => {});
    await cluster?.stop();
    await nats?.stop();
  });

  test('subjects added while the job runs are discovered and read exactly once, across kill -9 of TaskManagers', async () => {
    const N = 6_000;
    await addStream(jsm, 'disc');
    await addStream(jsm, 'discout');
    await publishOnto(nc, 'disc', 2, 0, N / 3);
    const r = await cluster.run(['run', job, '--detached', '--', nats.url, 'disc', 'discout']);
    assert.equal(r.code, 0, r.stderr);
    const jobId = submittedId(r.stdout);
    const running = async () => {
      const d = await until(
        'all tasks running',
        async () => {
          const s = await client.status(jobId);
          return s.status === 'JOB_RUNNING' &&
            s.vertices.every((v) => v.subtasks.every((t) => t.state === 'RUNNING'))
            ? s
            : undefined;
        },
        60_000,
      );
      return d;
    };
    const killOne = async () => {
      const d = await running();
      await new Promise((res) => setTimeout(res, 800));
      const busy = [...new Set(d.vertices.flatMap((v) => v.subtasks.map((t) => t.taskManagerId)))];
      process.kill(cluster.taskManagerPid(busy[Math.floor(Math.random() * busy.length)]!), 'SIGKILL');
      await until(
        'the job noticed the kill',
        async () => ((await client.status(jobId)).numRestarts > d.numRestarts ? true : undefined),
        20_000,
      );
    };
    await running();
    await until(
      'the first subjects read',
      async () => ((await jsm.streams.info('discout')).state.messages >= N / 3 ? true : undefined),
      60_000,
    );
    // two new subjects appear while the job runs (s2, s3), then a TaskManager dies
    await publishOnto(nc, 'disc', 4, N / 3, (2 * N) / 3);
    await killOne();
    // and another one (s4) after the restart, with a second kill
    await publishOnto(nc, 'disc', 5, (2 * N) / 3, N);
    await killOne();
    await until(
      'every message in the output stream',
      async () => ((await jsm.streams.info('discout')).state.messages >= N ? true : undefined),
      90_000,
    );
    await new Promise((res) => setTimeout(res, 2_000));
    assert.equal((await client.status(jobId)).status, 'JOB_RUNNING');
    // one split per subject, every one known to the enumerator, spread over both readers
    const source = Object.values(latestCheckpoint(cluster.dir, jobId).operators).find(
      (o) => o.coordinatorState,
    )!;
    assert.ok(source, 'the source operator has coordinator state in the checkpoint');
    const subjects = ['s0', 's1', 's2', 's3', 's4'].map((s) => `disc:disc.${s}`);
    assert.deepEqual([...source.coordinatorState!.enumerator.assigned].sort(), subjects);
    const held = Object.values(source.subtasks).map((t) => (t.operatorState ?? []).map((x) => x.splitId));
    assert.deepEqual(held.flat().sort(), subjects, 'each split held by exactly one reader');
    assert.ok(
      held.every((h) => h.length > 0),
      `both readers have splits: ${JSON.stringify(held)}`,
    );
    await client.cancel(jobId);
    await assertExactlyOnce(nc, jsm, 'discout', N);
  });
});
