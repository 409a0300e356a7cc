// A weir cluster for chaos runs: a JobManager, TaskManagers, a client host and optionally an S3
// server behind a fault proxy, each on its own host (network namespace), each a real process.
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { JobDetails__Output } from '../../packages/core/src/index.js';
import type { CheckpointStatsSnapshot } from '../../packages/core/src/index.js';
import { ROOT, WEIR, tempDir } from '../helpers/cli.js';
import type { FaultMode } from '../helpers/fault-proxy.js';
import { NetnsNetwork, firstMessage, killHard } from '../helpers/netns.js';

export const JOB = path.join(ROOT, 'test/chaos/job.ts');
const JM_PORT = 6123;
const TM_PORT = 6122;
let subnets = 0;

export interface ClusterOptions {
  taskManagers: number;
  slots: number;
  /** checkpoints on s3://weir/checkpoints through the fault proxy */
  s3?: boolean;
  /** a tmpfs of this many MiB mounted as the checkpoint directory */
  tmpfsMiB?: number;
  heartbeatTimeoutMs?: number;
}

export class ChaosCluster {
  readonly work = tempDir('weir-chaos-');
  readonly net: NetnsNetwork;
  readonly tmNames: string[];
  readonly checkpointDir: string;
  readonly jobStore: string;
  readonly s3Dir: string;
  private jm: ChildProcess | undefined;
  private readonly tms = new Map<string, ChildProcess>();
  private agent: ChildProcess | undefined;
  private proxy: ChildProcess | undefined;
  private calls = 0;
  private readonly waiting = new Map<number, (m: { value?: unknown; error?: string }) => void>();
  private mounted = false;

  constructor(readonly opts: ClusterOptions) {
    this.tmNames = Array.from({ length: opts.taskManagers }, (_, i) => `tm${i + 1}`);
    this.net = new NetnsNetwork(
      ['jm', ...this.tmNames, 'cli', ...(opts.s3 ? ['s3'] : [])],
      `10.200.${(process.pid + subnets++) % 250}`,
    );
    this.checkpointDir = path.join(this.work, 'checkpoints');
    this.jobStore = path.join(this.work, 'ha');
    this.s3Dir = path.join(this.work, 's3');
    for (const d of ['logs', 'checkpoints', 'ha', 'savepoints', 'out', 's3', 'jm'])
      mkdirSync(path.join(this.work, d));
  }

  log(name: string): string {
    return path.join(this.work, 'logs', `${name}.log`);
  }

  get jmAddress(): string {
    return `${this.net.addr('jm')}:${JM_PORT}`;
  }

  /** Where the job's checkpoint files are on disk (s3rver keeps objects as files too). */
  get checkpointRoot(): string {
    return this.opts.s3 ? path.join(this.s3Dir, 'weir', 'checkpoints') : this.checkpointDir;
  }

  private get env(): Record<string, string> {
    return this.opts.s3
      ? {
          WEIR_S3_ENDPOINT: `http://${this.net.addr('s3')}:9000`,
          WEIR_S3_REGION: 'us-east-1',
          WEIR_S3_PATH_STYLE: 'true',
          AWS_ACCESS_KEY_ID: 'S3RVER',
          AWS_SECRET_ACCESS_KEY: 'S3RVER',
        }
      : {};
  }

  async start(): Promise<this> {
    if (this.opts.tmpfsMiB) {
      execFileSync('mount', [
        '-t',
        'tmpfs',
        '-o',
        `size=${this.opts.tmpfsMiB}m`,
        'weir-chaos',
        this.checkpointDir,
      ]);
      this.mounted = true;
      process.once('exit', this.unmount);
    }
    this.net.create();
    if (this.opts.s3) {
      const s3 = this.net.spawn(
        's3',
        [path.join(ROOT, 'test/helpers/s3-server-main.mjs'), this.s3Dir, '127.0.0.1', '9001'],
        { log: this.log('s3'), ipc: true },
      );
      await firstMessage(s3, 's3rver', this.log('s3'));
      this.proxy = this.net.spawn(
        's3',
        [
          '--import',
          'tsx',
          path.join(ROOT, 'test/helpers/fault-proxy-main.ts'),
          this.net.addr('s3'),
          '9000',
          '127.0.0.1',
          '9001',
        ],
        { log: this.log('proxy'), ipc: true },
      );
      await firstMessage(this.proxy, 'the S3 fault proxy', this.log('proxy'));
    }
    await this.startJobManager();
    await Promise.all(this.tmNames.map((n) => this.startTaskManager(n)));
    this.agent = this.net.spawn(
      'cli',
      ['--import', 'tsx', path.join(ROOT, 'test/chaos/agent.ts'), this.jmAddress],
      {
        log: this.log('agent'),
        ipc: true,
      },
    );
    await firstMessage(this.agent, 'the chaos agent', this.log('agent'));
    this.agent.on('message', (m: { id: number; value?: unknown; error?: string }) => {
      this.waiting.get(m.id)?.(m);
      this.waiting.delete(m.id);
    });
    return this;
  }

  async startJobManager(): Promise<void> {
    const args = [
      WEIR,
      'jobmanager',
      '--host',
      this.net.addr('jm'),
      '--port',
      String(JM_PORT),
      '--insecure',
      '--heartbeat-interval',
      '500',
      '--heartbeat-timeout',
      String(this.opts.heartbeatTimeoutMs ?? 3_000),
      '--checkpoint-dir',
      this.opts.s3 ? 's3://weir/checkpoints' : this.checkpointDir,
      '--savepoint-dir',
      path.join(this.work, 'savepoints'),
      '--job-store',
      this.jobStore,
    ];
    this.jm = this.net.spawn('jm', args, {
      env: this.env,
      cwd: path.join(this.work, 'jm'),
      log: this.log('jobmanager'),
      ipc: true,
    });
    await firstMessage(this.jm, 'the JobManager', this.log('jobmanager'));
  }

  async killJobManager(): Promise<void> {
    await killHard(this.jm);
  }

  async startTaskManager(name: string): Promise<void> {
    const dir = path.join(this.work, name);
    mkdirSync(dir, { recursive: true });
    const c = this.net.spawn(
      name,
      [
        WEIR,
        'taskmanager',
        '--jobmanager',
        this.jmAddress,
        '--host',
        this.net.addr(name),
        '--port',
        String(TM_PORT),
        '--insecure',
        '--slots',
        String(this.opts.slots),
        '--id',
        name,
        '--work-dir',
        path.join(dir, 'work'),
        '--state-dir',
        path.join(dir, 'state'),
      ],
      { env: this.env, cwd: dir, log: this.log(name), ipc: true },
    );
    this.tms.set(name, c);
    await firstMessage(c, `TaskManager ${name}`, this.log(name));
  }

  async killTaskManager(name: string): Promise<void> {
    await killHard(this.tms.get(name));
  }

  /** Sets the S3 fault proxy's mode. */
  s3Fault(mode: FaultMode): void {
    this.proxy?.send(mode);
  }

  private ask<T>(op: 'status' | 'checkpoints', jobId: string): Promise<T> {
    const id = ++this.calls;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`no answer to ${op} within 15 s`));
      }, 15_000);
      this.waiting.set(id, (m) => {
        clearTimeout(t);
        if (m.error !== undefined) reject(new Error(m.error));
        else resolve(m.value as T);
      });
      this.agent!.send({ id, op, jobId });
    });
  }

  /** The job's details, or undefined while the JobManager cannot answer. */
  status(jobId: string): Promise<JobDetails__Output | undefined> {
    return this.ask<JobDetails__Output>('status', jobId).catch(() => undefined);
  }

  checkpoints(jobId: string): Promise<CheckpointStatsSnapshot | undefined> {
    return this.ask<CheckpointStatsSnapshot>('checkpoints', jobId).catch(() => undefined);
  }

  /** `weir ...` on the client host; resolves with its exit code and output. */
  weir(args: string[], name: string, timeoutMs = 60_000): Promise<{ code: number | null; out: string }> {
    const log = this.log(`${name}-${Date.now()}`);
    const child = this.net.spawn('cli', [WEIR, ...args], { log });
    return new Promise((resolve) => {
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('exit', (code) => {
        clearTimeout(t);
        resolve({ code, out: existsSync(log) ? readFileSync(log, 'utf8') : '' });
      });
    });
  }

  /** Submits test/chaos/job.ts detached; gives the job id. */
  async submit(jobArgs: Array<string | number>, opts: { fromSavepoint?: string } = {}): Promise<string> {
    const r = await this.weir(
      [
        'run',
        JOB,
        '--jobmanager',
        this.jmAddress,
        '--detached',
        ...(opts.fromSavepoint ? ['--from-savepoint', opts.fromSavepoint] : []),
        '--',
        ...jobArgs.map(String),
      ],
      'submit',
    );
    const id = /submitted with id (\w+)/.exec(r.out)?.[1];
    if (r.code !== 0 || !id) throw new Error(`weir run failed (${r.code}): ${r.out}`);
    return id;
  }

  /** `weir cancel ID --savepoint DIR`; gives the savepoint's directory once the job is canceled. */
  async cancelWithSavepoint(jobId: string): Promise<string> {
    const r = await this.weir(
      ['cancel', jobId, '--savepoint', path.join(this.work, 'savepoints'), '--jobmanager', this.jmAddress],
      'cancel',
      120_000,
    );
    const sp = /Savepoint completed: (.+)/
      .exec(r.out)?.[1]
      ?.trim()
      .replace(/^file:\/\//, '');
    if (r.code !== 0 || !sp) throw new Error(`weir cancel --savepoint failed (${r.code}): ${r.out}`);
    await this.until(
      'the job canceled',
      async () => ((await this.status(jobId))?.status === 'JOB_CANCELED' ? true : undefined),
      60_000,
    );
    return sp;
  }

  /** Polls `fn` every `everyMs` until it gives a value. */
  async until<T>(
    what: string,
    fn: () => Promise<T | undefined>,
    timeoutMs: number,
    everyMs = 200,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await fn();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(everyMs);
    }
  }

  /** Waits until every subtask runs (or the job ended); gives the details. */
  running(jobId: string, timeoutMs = 90_000): Promise<JobDetails__Output> {
    return this.until(
      'all tasks running',
      async () => {
        const s = await this.status(jobId);
        if (!s) return undefined;
        if (s.status === 'JOB_FAILED') throw new Error(`job failed: ${s.failureCause}`);
        if (s.status === 'JOB_FINISHED' || s.status === 'JOB_CANCELED') return s;
        return s.status === 'JOB_RUNNING' &&
          s.vertices.every((v) => v.subtasks.every((t) => t.state === 'RUNNING'))
          ? s
          : undefined;
      },
      timeoutMs,
    );
  }

  /** Waits for the job's end; FAILED is an error naming the cause. */
  finished(jobId: string, timeoutMs = 240_000): Promise<JobDetails__Output> {
    return this.until(
      'the job finished',
      async () => {
        const s = await this.status(jobId);
        if (s?.status === 'JOB_FAILED') throw new Error(`job failed: ${s.failureCause}`);
        return s?.status === 'JOB_FINISHED' ? s : undefined;
      },
      timeoutMs,
      500,
    );
  }

  /** TaskManagers that run a subtask of the job now. */
  static busy(d: JobDetails__Output): string[] {
    return [...new Set(d.vertices.flatMap((v) => v.subtasks.map((t) => t.taskManagerId)))]
      .filter(Boolean)
      .sort();
  }

  private readonly unmount = (): void => {
    if (!this.mounted) return;
    process.removeListener('exit', this.unmount);
    spawnSync('umount', ['-l', this.checkpointDir]);
    this.mounted = false;
  };

  /** Everything stopped and removed: processes, namespaces (with their rules), the tmpfs, the files. */
  async stop(keepFiles = false): Promise<void> {
    this.agent?.disconnect();
    await this.net.destroy();
    this.unmount();
    if (!keepFiles) rmSync(this.work, { recursive: true, force: true });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
