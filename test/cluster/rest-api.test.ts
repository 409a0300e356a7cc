// The REST API and the Prometheus endpoints against a real cluster of real processes: every
// endpoint's JSON validated against its schema (ajv), bad input, an asynchronous savepoint, a
// TaskManager killed with -9 (restart timeline and exception), a JobManager killed with -9 and
// started again on the same job store (checkpoint, restart and exception history kept), cancel,
// token authentication and a REST port in use.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { ROOT, TestCluster, freePort, startWeirProcess, tempDir, until, weir } from '../helpers/cli.js';
import { SCHEMAS } from '../helpers/rest-schemas.js';

const job = path.join(ROOT, 'test/jobs/checkpointed-count.ts');
const ajv = new Ajv({ allErrors: true, strict: false });

async function get(base: string, p: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://${base}${p}`, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON: the Prometheus exposition or a static file */
  }
  return { status: res.status, body };
}

/** GET `p`, expect 200 and a body valid against `schema`; gives the body. */
async function valid(base: string, p: string, schema: keyof typeof SCHEMAS): Promise<any> {
  const { status, body } = await get(base, p);
  assert.equal(status, 200, `${p}: ${JSON.stringify(body)}`);
  const validate = ajv.compile(SCHEMAS[schema]);
  assert.ok(
    validate(body),
    `${p} does not match the ${schema} schema: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 2000)}`,
  );
  return body;
}

async function expectError(base: string, p: string, status: number, init: RequestInit = {}): Promise<string> {
  const r = await get(base, p, init);
  assert.equal(r.status, status, `${init.method ?? 'GET'} ${p}: ${JSON.stringify(r.body)}`);
  assert.ok(ajv.validate(SCHEMAS.error, r.body) as boolean, `${p}: error body ${JSON.stringify(r.body)}`);
  return (r.body as { errors: string[] }).errors[0]!;
}

/** The samples of one family in a Prometheus exposition, parsed by a real parser. */
function samples(text: string, name: string): Array<{ labels: Record<string, string>; value: number }> {
  const family = parsePrometheusTextFormat(text).find((f) => f.name === name);
  return (family?.metrics ?? []).map((m) => ({ labels: m.labels ?? {}, value: Number(m.value) }));
}

async function scrape(address: string): Promise<string> {
  const res = await fetch(`http://${address}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  return res.text();
}

describe('REST API and Prometheus on a real cluster', () => {
  const dir = tempDir('weir-rest-');
  const children: ChildProcess[] = [];
  let jmArgs: string[];
  let jm: { child: ChildProcess; address: string; rest: string };
  let tms: Array<{ child: ChildProcess; address: string }> = [];
  let rest = '';
  let jid = '';

  before(async () => {
    const [port, restPort] = [await freePort(), await freePort()];
    jmArgs = [
      'jobmanager',
      '--port',
      String(port),
      '--rest-port',
      String(restPort),
      '--checkpoint-dir',
      path.join(dir, 'checkpoints'),
      '--job-store',
      path.join(dir, 'ha'),
    ];
    jm = await startWeirProcess(jmArgs, path.join(dir, 'jobmanager.log'));
    children.push(jm.child);
    rest = jm.rest;
    assert.equal(rest, `127.0.0.1:${restPort}`);
    for (const id of ['tm-a', 'tm-b']) {
      const tm = await startWeirProcess(
        [
          'taskmanager',
          '--jobmanager',
          jm.address,
          '--slots',
          '2',
          '--id',
          id,
          '--work-dir',
          path.join(dir, id),
          '--metrics-port',
          '0',
        ],
        path.join(dir, `${id}.log`),
      );
      children.push(tm.child);
      tms.push(tm);
    }
    const r = await weir(['run', job, '--jobmanager', jm.address, '--detached', '--', '200', '3']);
    assert.equal(r.code, 0, r.stderr);
    jid = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    await until(
      'three completed checkpoints',
      async () =>
        (await get(rest, `/jobs/${jid}/checkpoints`)).body?.counts?.completed >= 3 ? true : undefined,
      60_000,
    );
  });
  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  test('every GET endpoint answers in its schema, with figures that match the running job', async () => {
    const overview = await valid(rest, '/overview', 'overview');
    assert.equal(overview.taskmanagers, 2);
    assert.equal(overview['slots-total'], 4);
    assert.equal(overview['jobs-running'], 1);
    const jobs = await valid(rest, '/jobs/overview', 'jobsOverview');
    assert.deepEqual(
      jobs.jobs.map((j: { jid: string; state: string; tasks: { running: number } }) => [
        j.jid,
        j.state,
        j.tasks.running,
      ]),
      [[jid, 'RUNNING', 4]],
    );
    // rates need two samples a second apart
    const d = await until('records per second on every subtask', async () => {
      const b = (await get(rest, `/jobs/${jid}`)).body;
      for (const v of b.vertices) {
        const subtasks = (await get(rest, `/jobs/${jid}/vertices/${v.id}`)).body.subtasks;
        if (!subtasks.every((s: any) => s.metrics['read-records-per-second'] > 0)) return undefined;
      }
      return b;
    });
    await valid(rest, `/jobs/${jid}`, 'job');
    assert.deepEqual(
      d.vertices.map((v: { id: string; parallelism: number }) => [v.id, v.parallelism]),
      [
        ['uid-generator', 2],
        ['uid-count', 2],
      ],
    );
    assert.equal(d.plan.nodes[1].inputs[0].ship_strategy, 'HASH');
    const gen = d.vertices[0].metrics;
    assert.ok(
      gen['read-records'] > 1000 && gen['write-records'] === gen['read-records'],
      JSON.stringify(gen),
    );
    // the generator is rate-limited to 20,000 records/s in all
    assert.ok(
      gen['write-records-per-second'] > 5_000 && gen['write-records-per-second'] < 40_000,
      JSON.stringify(gen),
    );
    assert.ok(d.vertices[1].metrics['read-bytes'] > 0);
    for (const v of d.vertices) {
      const vd = await valid(rest, `/jobs/${jid}/vertices/${v.id}`, 'vertex');
      for (const s of vd.subtasks) {
        const m = s.metrics;
        // Flink's definition: busy + back-pressured + idle = 1000 ms per second
        assert.equal(
          m['busy-time-ms-per-second'] + m['backpressured-time-ms-per-second'] + m['idle-time-ms-per-second'],
          1000,
        );
        assert.match(s['taskmanager-id'], /^tm-[ab]$/);
      }
      const bp = await valid(rest, `/jobs/${jid}/vertices/${v.id}/backpressure`, 'backpressure');
      assert.equal(bp.subtasks.length, 2);
    }
    const cps = await valid(rest, `/jobs/${jid}/checkpoints`, 'checkpoints');
    assert.ok(cps.counts.completed >= 3 && cps.counts.failed === 0, JSON.stringify(cps.counts));
    assert.equal(cps.counts.total, cps.counts.completed + cps.counts.failed + cps.counts.in_progress);
    const latest = cps.latest.completed;
    assert.ok(latest.state_size > 0 && latest.num_acknowledged_subtasks === 4);
    assert.ok(existsSync(path.join(fileURLToPath(latest.external_path), '_metadata')), latest.external_path);
    const details = await valid(rest, `/jobs/${jid}/checkpoints/details/${latest.id}`, 'checkpointDetails');
    assert.deepEqual(Object.keys(details.tasks).sort(), ['uid-count', 'uid-generator']);
    assert.equal(details.subtasks.length, 4);
    assert.equal(
      details.subtasks.reduce((a: number, s: { state_size: number }) => a + s.state_size, 0),
      latest.state_size,
    );
    const perVertex = (await get(rest, `/jobs/${jid}/checkpoints/details/${latest.id}/subtasks/uid-count`))
      .body;
    assert.deepEqual(
      perVertex.subtasks.map((s: { index: number }) => s.index),
      [0, 1],
    );
    const ex = await valid(rest, `/jobs/${jid}/exceptions`, 'exceptions');
    assert.equal(ex.exceptionHistory.entries.length, 0);
    await valid(rest, `/jobs/${jid}/restarts`, 'restarts');
    const tmList = await valid(rest, '/taskmanagers', 'taskmanagers');
    assert.deepEqual(tmList.taskmanagers.map((t: { id: string }) => t.id).sort(), ['tm-a', 'tm-b']);
    for (const t of tmList.taskmanagers) {
      assert.ok(t.metrics.rss > 10_000_000 && t.metrics.heapUsed > 1_000_000, JSON.stringify(t.metrics));
      assert.match(t['prometheus-address'], /^127\.0\.0\.1:\d+$/);
    }
    // weir status without a job id: the dashboard and each TaskManager's Prometheus endpoint
    const status = await weir(['status', '--jobmanager', jm.address]);
    assert.equal(status.code, 0, status.stderr);
    assert.ok(status.stdout.includes(`dashboard and REST API: http://${rest}/`), status.stdout);
    for (const t of tmList.taskmanagers)
      assert.ok(status.stdout.includes(`metrics http://${t['prometheus-address']}/metrics`), status.stdout);
    const tm = await valid(rest, '/taskmanagers/tm-a', 'taskmanager');
    assert.equal(
      tm.slots.filter((s: { 'job-id': string | null }) => s['job-id'] === jid).length,
      tm.slotsNumber - tm.freeSlots,
    );
  });

  test('bad input: 400 for malformed ids and values, 404 for unknown ones, 405 for a wrong method', async () => {
    assert.match(await expectError(rest, '/jobs/not-a-job', 400), /Malformed job id 'not-a-job'/);
    assert.match(await expectError(rest, `/jobs/${'0'.repeat(32)}`, 404), /No job with id '0{32}'/);
    assert.match(await expectError(rest, `/jobs/${'0'.repeat(32)}/checkpoints`, 404), /No job/);
    assert.match(
      await expectError(rest, `/jobs/${jid}/checkpoints/details/abc`, 400),
      /Malformed checkpoint id/,
    );
    assert.match(
      await expectError(rest, `/jobs/${jid}/checkpoints/details/999999`, 404),
      /no checkpoint 999999/,
    );
    assert.match(await expectError(rest, `/jobs/${jid}/vertices/nope/backpressure`, 404), /no vertex 'nope'/);
    assert.match(await expectError(rest, `/jobs/${jid}/vertices/a%20b`, 400), /Malformed vertex id/);
    assert.match(await expectError(rest, `/jobs/${jid}?mode=stop`, 400, { method: 'PATCH' }), /mode=cancel/);
    assert.match(
      await expectError(rest, `/jobs/${jid}/savepoints`, 400, { method: 'POST', body: '{oops' }),
      /not JSON/,
    );
    assert.match(
      await expectError(rest, `/jobs/${jid}/savepoints`, 400, {
        method: 'POST',
        body: '{"cancel-job":"yes"}',
      }),
      /'cancel-job' must be true or false/,
    );
    assert.match(
      await expectError(rest, `/jobs/${jid}`, 405, { method: 'DELETE' }),
      /DELETE is not supported/,
    );
    assert.match(await expectError(rest, '/taskmanagers/tm-zz', 404), /No TaskManager with id 'tm-zz'/);
    await expectError(rest, '/no/such/path', 404);
    assert.match(await expectError(rest, `/jobs/${jid}/vertices/%E0%A4%A`, 400), /Malformed path/);
  });

  test('a savepoint is an asynchronous operation: trigger, then poll its status', async () => {
    const target = path.join(dir, 'savepoints');
    const t = await get(rest, `/jobs/${jid}/savepoints`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ 'target-directory': target, 'cancel-job': false }),
    });
    assert.equal(t.status, 202, JSON.stringify(t.body));
    assert.ok(ajv.validate(SCHEMAS.savepointTrigger, t.body));
    const done = await until('the savepoint completed', async () => {
      const s = await valid(rest, `/jobs/${jid}/savepoints/${t.body['request-id']}`, 'savepointStatus');
      return s.status.id === 'COMPLETED' ? s : undefined;
    });
    assert.ok(done.operation.location.startsWith(`file://${target}/savepoint-`), JSON.stringify(done));
    assert.ok(existsSync(path.join(fileURLToPath(done.operation.location), '_metadata')));
    await expectError(rest, `/jobs/${jid}/savepoints/nosuchtrigger`, 404);
    const cps = (await get(rest, `/jobs/${jid}/checkpoints`)).body;
    assert.equal(cps.latest.savepoint.external_path, done.operation.location);
  });

  test('Prometheus: the JobManager and every TaskManager expose weir_ families a real parser reads, and counters move', async () => {
    const first = await scrape(rest);
    const records = (text: string): number =>
      samples(text, 'weir_task_num_records_in_total')
        .filter((s) => s.labels.job === jid && s.labels.operator === 'Generator')
        .reduce((a, s) => a + s.value, 0);
    const jmSamples = samples(first, 'weir_task_num_records_in_total').filter((s) => s.labels.job === jid);
    assert.deepEqual(jmSamples.map((s) => `${s.labels.operator_id}/${s.labels.subtask}`).sort(), [
      'uid-count/0',
      'uid-count/1',
      'uid-generator/0',
      'uid-generator/1',
    ]);
    assert.equal(samples(first, 'weir_cluster_taskmanagers')[0]?.value, 2);
    assert.ok(
      (samples(first, 'weir_job_checkpoints_completed').find((s) => s.labels.job === jid)?.value ?? 0) >= 3,
    );
    assert.equal(samples(first, 'weir_taskmanager_rss_bytes').length, 2);
    assert.ok(samples(first, 'weir_process_resident_memory_bytes')[0]!.value > 0);
    const lastCheckpoint = (text: string): number | undefined =>
      samples(text, 'weir_job_last_checkpoint_id').find((s) => s.labels.job === jid)?.value;
    // scraped again once both moved (a fixed 2.5 s wait before), as long as that wait at most
    let second = first;
    const deadline = Date.now() + 2_500;
    do {
      await new Promise((r) => setTimeout(r, 100));
      second = await scrape(rest);
    } while (
      Date.now() < deadline &&
      !(records(second) > records(first) && lastCheckpoint(second)! > lastCheckpoint(first)!)
    );
    assert.ok(
      records(second) > records(first),
      `records did not move: ${records(first)} -> ${records(second)}`,
    );
    const last = lastCheckpoint(second)!;
    assert.ok(last > lastCheckpoint(first)!);
    // each TaskManager serves its own subtasks
    const tmList = (await get(rest, '/taskmanagers')).body.taskmanagers as Array<{
      id: string;
      'prometheus-address': string;
    }>;
    for (const tm of tmList) {
      const a = await scrape(tm['prometheus-address']);
      const busy = samples(a, 'weir_task_busy_time_ms_per_second').filter((s) => s.labels.job === jid);
      assert.equal(busy.length, 2, `${tm.id} serves two subtasks`);
      assert.ok(busy.every((s) => s.value >= 0 && s.value <= 1000));
      const sum = (t: string): number =>
        samples(t, 'weir_task_num_records_out_total').reduce((x, s) => x + s.value, 0) +
        samples(t, 'weir_task_num_records_in_total').reduce((x, s) => x + s.value, 0);
      // scraped again once the counters moved (a fixed 1.2 s wait before), as long as that at most
      let b = a;
      const tmDeadline = Date.now() + 1_200;
      do {
        await new Promise((r) => setTimeout(r, 100));
        b = await scrape(tm['prometheus-address']);
      } while (Date.now() < tmDeadline && !(sum(b) > sum(a)));
      assert.ok(sum(b) > sum(a), `${tm.id}: counters did not move`);
    }
  });

  test('a TaskManager killed with -9: a restart with its recovery timeline, and the failure in the exceptions', async () => {
    tms[1]!.child.kill('SIGKILL');
    const r = await until<any>(
      'the restart reached its first checkpoint',
      async () => {
        const b = (await get(rest, `/jobs/${jid}/restarts`)).body;
        const first = b.restarts[0];
        return first?.steps.find((s: { name: string }) => s.name === 'first-checkpoint')?.timestamp
          ? b
          : undefined;
      },
      60_000,
    );
    assert.ok(ajv.validate(SCHEMAS.restarts, r) as boolean, ajv.errorsText());
    const restart = r.restarts[0];
    // whichever is seen first: the JobManager losing tm-b, or a downstream task losing its channel
    assert.match(restart.cause, /TaskManager tm-b .* was lost|Lost the input channel from TaskManager tm-b/);
    const at = (name: string): number =>
      restart.steps.find((s: { name: string }) => s.name === name)['since-detection-ms'];
    assert.ok(at('detected') === 0 && at('cancelled') <= at('deployed') && at('deployed') <= at('running'));
    assert.ok(at('running') <= at('first-checkpoint'));
    assert.equal(restart['recovery-ms'], at('running'));
    const ex = await valid(rest, `/jobs/${jid}/exceptions`, 'exceptions');
    assert.match(ex['root-exception'], /tm-b/);
    assert.equal(ex.exceptionHistory.entries[0].exceptionName, 'JobFailover');
    const cps = (await get(rest, `/jobs/${jid}/checkpoints`)).body;
    assert.ok(cps.counts.restored >= 1 && cps.latest.restored.id > 0, JSON.stringify(cps.latest.restored));
  });

  test('after the JobManager is killed with -9 and started again, the history is still there', async () => {
    const before = (await get(rest, `/jobs/${jid}/checkpoints`)).body;
    const restartsBefore = (await get(rest, `/jobs/${jid}/restarts`)).body.restarts;
    const idsBefore = before.history
      .filter((c: { status: string }) => c.status === 'COMPLETED')
      .map((c: { id: number }) => c.id);
    // the job store gets the history at most a second after a change
    await sleep(1_500);
    jm.child.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 1_000));
    jm = await startWeirProcess(jmArgs, path.join(dir, 'jobmanager.log'));
    children.push(jm.child);
    assert.equal(jm.rest, rest, 'the REST API is back on its port');
    const recovered = await until<any>(
      'the recovered job completed a new checkpoint',
      async () => {
        const b = (await get(rest, `/jobs/${jid}/checkpoints`)).body;
        return b?.latest?.completed?.id > Math.max(...idsBefore) ? b : undefined;
      },
      60_000,
    );
    assert.ok(ajv.validate(SCHEMAS.checkpoints, recovered) as boolean, ajv.errorsText());
    // the history holds the newest 50 entries (newest first), failed ones included, so on a slow machine the
    // oldest entries of before may have been pushed out by new ones: every entry of before that is
    // not older than the oldest one kept must be there, and the newest completed one in any case
    const idsAfter: number[] = recovered.history.map((c: { id: number }) => c.id);
    const shown = JSON.stringify(
      recovered.history.map((c: { id: number; status: string }) => [c.id, c.status]),
    );
    assert.ok(
      idsAfter.includes(Math.max(...idsBefore)),
      `the newest completed checkpoint was kept: ${shown}`,
    );
    for (const id of idsBefore.filter((i: number) => i >= Math.min(...idsAfter)))
      assert.ok(idsAfter.includes(id), `checkpoint ${id} kept across the restart: ${shown}`);
    assert.ok(recovered.counts.completed > before.counts.completed);
    assert.ok(
      recovered.counts.restored > before.counts.restored,
      'the recovery from the job store counts as a restore',
    );
    const restarts = (await get(rest, `/jobs/${jid}/restarts`)).body.restarts;
    assert.deepEqual(restarts[0], restartsBefore[0]);
    const ex = (await get(rest, `/jobs/${jid}/exceptions`)).body;
    assert.match(ex.exceptionHistory.entries.at(-1).stacktrace, /tm-b/);
  });

  test('PATCH ?mode=cancel cancels the job', async () => {
    const r = await get(rest, `/jobs/${jid}?mode=cancel`, { method: 'PATCH' });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    await until('CANCELED', async () =>
      (await get(rest, `/jobs/${jid}`)).body.state === 'CANCELED' ? true : undefined,
    );
    assert.match(
      await expectError(rest, `/jobs/${jid}?mode=cancel`, 409, { method: 'PATCH' }),
      /already ended/,
    );
  });

  test('back pressure: a slow sink makes its producer back-pressured and itself busy', async () => {
    const r = await weir([
      'run',
      path.join(ROOT, 'test/jobs/slow-sink.ts'),
      '--jobmanager',
      jm.address,
      '--detached',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const slow = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    try {
      const d = await until<any>(
        'the generator back-pressured and the sink busy',
        async () => {
          // both are rates over the last second: on a loaded machine one sample may miss
          const b = (await get(rest, `/jobs/${slow}`)).body;
          return b.vertices?.[0]?.metrics['backpressured-time-ms-per-second'] > 500 &&
            b.vertices[1].metrics['busy-time-ms-per-second'] > 500
            ? b
            : undefined;
        },
        30_000,
      );
      const [source, sink] = d.vertices;
      assert.match(source.name, /Fast generator/);
      assert.ok(sink.metrics['busy-time-ms-per-second'] > 500, JSON.stringify(sink.metrics));
      const bp = await valid(rest, `/jobs/${slow}/vertices/${source.id}/backpressure`, 'backpressure');
      assert.equal(bp.backpressureLevel, 'high');
      const sinkBp = await valid(rest, `/jobs/${slow}/vertices/${sink.id}/backpressure`, 'backpressure');
      assert.equal(sinkBp.backpressureLevel, 'ok', 'the bottleneck itself is busy, not back-pressured');
    } finally {
      await get(rest, `/jobs/${slow}?mode=cancel`, { method: 'PATCH' });
    }
  });
});

describe('REST API protection and start-up errors', () => {
  const dir = tempDir('weir-rest-auth-');

  test('with a token configured: 401 without it, 200 with it; the dashboard page itself is public', async () => {
    const token = 'rest-test-token-0123456789';
    const jm = await startWeirProcess(
      ['jobmanager', '--port', '0', '--no-job-store', '--checkpoint-dir', path.join(dir, 'c')],
      path.join(dir, 'jm.log'),
      { WEIR_AUTH_TOKEN: token },
    );
    try {
      for (const p of ['/overview', '/jobs/overview', '/metrics']) {
        const r = await get(jm.rest, p);
        assert.equal(r.status, 401, p);
        assert.match(r.body.errors[0], /Bearer/);
        assert.equal(
          (await get(jm.rest, p, { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status,
          401,
        );
        assert.equal(
          (await get(jm.rest, p, { headers: { authorization: `Bearer ${token}` } })).status,
          200,
          p,
        );
      }
      const page = await get(jm.rest, '/');
      assert.equal(page.status, 200);
      assert.match(String(page.body), /<div id="app">/);
      assert.ok(!readFileSync(path.join(dir, 'jm.log'), 'utf8').includes(token), 'the token is never logged');
    } finally {
      jm.child.kill('SIGKILL');
    }
  });

  test('fuzz: random methods, paths, queries, headers and bodies; never a 5xx, never data without the token, the server keeps serving', async () => {
    const token = 'rest-fuzz-token-0123456789';
    const jm = await startWeirProcess(
      ['jobmanager', '--port', '0', '--no-job-store', '--checkpoint-dir', path.join(dir, 'fuzz')],
      path.join(dir, 'jm-fuzz.log'),
      { WEIR_AUTH_TOKEN: token },
    );
    try {
      let seed = 1129;
      const rnd = (n: number): number => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return seed % n;
      };
      const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;
      const ids = [
        '0'.repeat(32),
        'a'.repeat(32),
        'zz',
        '%00',
        '..%2F..%2Fetc',
        '%E2%82',
        'x'.repeat(5000),
        '-1',
        '1e999',
        '',
      ];
      const templates = [
        '/overview',
        '/config',
        '/jobs',
        '/jobs/overview',
        '/jobs/:id',
        '/jobs/:id/checkpoints',
        '/jobs/:id/checkpoints/details/:id',
        '/jobs/:id/checkpoints/details/:id/subtasks/:id',
        '/jobs/:id/exceptions',
        '/jobs/:id/restarts',
        '/jobs/:id/vertices/:id',
        '/jobs/:id/vertices/:id/backpressure',
        '/jobs/:id/savepoints',
        '/jobs/:id/savepoints/:id',
        '/taskmanagers',
        '/taskmanagers/:id',
        '/metrics',
        '/:id',
        '/assets/:id',
        '/',
        '/main.js',
      ];
      const queries = [
        '',
        '?mode=cancel',
        '?mode=%ZZ',
        '?a=1&a=2',
        `?${'q='.repeat(2000)}`,
        '?mode=stop',
        '?limit=-5',
      ];
      const bodies = [
        undefined,
        '',
        '{',
        'null',
        '[]',
        '{"target-directory":1}',
        '{"cancel-job":"yes"}',
        'x'.repeat(200_000),
      ];
      const methods = ['GET', 'POST', 'PATCH', 'PUT', 'DELETE', 'OPTIONS'];
      const auths = [
        undefined,
        `Bearer ${token}`,
        'Bearer',
        'Basic Zm9vOmJhcg==',
        `Bearer ${token}x`,
        'bearer ' + token,
      ];
      let withoutTokenData = 0;
      for (let i = 0; i < 1500; i++) {
        const p = pick(templates).replace(/:id/g, () => pick(ids)) + pick(queries);
        const method = pick(methods);
        const auth = pick(auths);
        const body = method === 'GET' ? undefined : pick(bodies);
        const res = await fetch(`http://${jm.rest}${p}`, {
          method,
          headers: {
            ...(auth ? { authorization: auth } : {}),
            'content-type': pick(['application/json', 'text/plain']),
          },
          body,
        });
        const text = await res.text();
        assert.ok(res.status < 500, `${method} ${p.slice(0, 200)}: ${res.status} ${text.slice(0, 200)}`);
        // the auth scheme is case-insensitive (RFC 7235), the token is not
        const authorized = auth !== undefined && /^bearer /i.test(auth) && auth.slice(7) === token;
        // the dashboard's static files hold no data and are public
        const isPage =
          method === 'GET' && ['/', '/index.html', '/main.js', '/main.css'].includes(p.split('?')[0]!);
        if (!authorized && res.status < 300 && !isPage && !p.startsWith('/metrics')) withoutTokenData++;
        if (!authorized && p.startsWith('/metrics') && method === 'GET') assert.equal(res.status, 401, p);
        if (res.status >= 400)
          assert.doesNotThrow(() => JSON.parse(text), `${method} ${p.slice(0, 200)}: error body not JSON`);
      }
      assert.equal(withoutTokenData, 0, 'no API answer without the token');
      // raw garbage on the socket: the server closes or answers 400, and keeps serving
      for (const garbage of [
        '\x00\x01\x02\r\n\r\n',
        'GET /' + 'a'.repeat(100_000) + ' HTTP/1.1\r\n\r\n',
        'PATCH\r\n\r\n',
      ]) {
        const [host, port] = jm.rest.split(':');
        await new Promise<void>((resolve) => {
          const sock = net.connect(Number(port), host!, () => sock.end(garbage));
          sock.on('error', () => resolve());
          sock.on('close', () => resolve());
          sock.resume();
        });
      }
      const ok = await get(jm.rest, '/overview', { headers: { authorization: `Bearer ${token}` } });
      assert.equal(ok.status, 200);
      assert.equal(jm.child.exitCode, null, 'the JobManager is still running');
    } finally {
      jm.child.kill('SIGKILL');
    }
  });

  test('a REST port in use: the JobManager names the port and exits non-zero', async () => {
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const port = (holder.address() as net.AddressInfo).port;
    try {
      const r = await weir(['jobmanager', '--port', '0', '--rest-port', String(port), '--no-job-store'], {
        timeoutMs: 30_000,
      });
      assert.notEqual(r.code, 0);
      assert.match(
        r.stderr,
        new RegExp(
          `Cannot listen on 127\\.0\\.0\\.1:${port}: port ${port} is already in use; choose another with rest\\.port`,
        ),
      );
    } finally {
      holder.close();
    }
  });
});

describe('event-time metrics', () => {
  test('late records dropped by a window without a late side output and the input watermark are exposed', async () => {
    const cluster = await new TestCluster({ taskManagers: 2, slots: 2 }).start();
    try {
      const out = tempDir('weir-rest-et-');
      const r = await cluster.run([
        'run',
        path.join(ROOT, 'test/jobs/event-time.ts'),
        '--detached',
        '--',
        '16000',
        '2000',
        out,
        'heap',
      ]);
      assert.equal(r.code, 0, r.stderr);
      await until(
        'late drops and an input watermark on the windows',
        async () => {
          const text = await scrape(cluster.rest);
          const late = samples(text, 'weir_task_num_late_records_dropped_total').filter((s) =>
            s.labels.operator!.startsWith('Window(SlidingEventTimeWindows'),
          );
          const wm = samples(text, 'weir_task_current_input_watermark').filter((s) =>
            s.labels.operator!.startsWith('Window(TumblingEventTimeWindows'),
          );
          const dropped = late.reduce((n, s) => n + s.value, 0);
          return dropped > 0 && wm.length === 2 && wm.every((s) => Number.isFinite(s.value) && s.value > 0)
            ? true
            : undefined;
        },
        20_000,
      );
      // the tumbling window sends its late records to a side output: none dropped
      const text = await scrape(cluster.rest);
      const tumblingDrops = samples(text, 'weir_task_num_late_records_dropped_total').filter((s) =>
        s.labels.operator!.startsWith('Window(TumblingEventTimeWindows'),
      );
      assert.ok(
        tumblingDrops.length > 0 && tumblingDrops.every((s) => s.value === 0),
        JSON.stringify(tumblingDrops),
      );
    } finally {
      await cluster.stop();
    }
  });
});
