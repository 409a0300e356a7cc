import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import assert from 'node:assert/strict';
import type { ClusterClient } from '../../packages/client/src/cluster-client.js';
import type { JobDetails__Output } from '../../packages/core/src/index.js';
import path from 'node:path';
import { tempDir } from './temp-dirs.js';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const WEIR = path.join(ROOT, 'packages/cli/bin/weir.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `weir ...` as a real process and collects its output. */
export function weir(
  args: string[],
  opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WEIR, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`weir ${args.join(' ')} timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 120_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Polls `fn` until it returns a value; fails naming what it waited for. */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits for the job to finish; a failed job fails the wait with its cause. */
export function untilJobFinished(
  client: ClusterClient,
  jobId: string,
  timeoutMs = 90_000,
): Promise<JobDetails__Output> {
  return until(
    'job finished',
    async () => {
      const s = await client.status(jobId);
      if (s.status === 'JOB_FAILED') throw new Error(`job failed: ${s.failureCause}`);
      return s.status === 'JOB_FINISHED' ? s : undefined;
    },
    timeoutMs,
  );
}

/**
 * `weir cancel JOB --savepoint DIR` (it must succeed), then waits for CANCELED; gives the
 * savepoint's path and the job's final details. Waits first for every task to run: a savepoint
 * is refused while one is still deploying (records can flow before the last task runs).
 */
export async function cancelWithSavepoint(
  cluster: TestCluster,
  client: ClusterClient,
  jobId: string,
  dir: string,
): Promise<{ savepoint: string; details: JobDetails__Output }> {
  await until('every task running', async () =>
    (await client.status(jobId)).vertices.every((v) => v.subtasks.every((t) => t.state === 'RUNNING'))
      ? true
      : undefined,
  );
  const c = await weir(['cancel', jobId, '--savepoint', dir, '--jobmanager', cluster.address]);
  assert.equal(c.code, 0, c.stderr);
  const savepoint = /Savepoint completed: (.+)/
    .exec(c.stdout)![1]!
    .trim()
    .replace(/^file:\/\//, '');
  const details = await until('canceled', async () => {
    const s = await client.status(jobId);
    return s.status === 'JOB_CANCELED' ? s : undefined;
  });
  return { savepoint, details };
}

/** The job graph of a one-operator job, for tests that submit over gRPC without a job file. */
export function oneVertexJobGraphJson(): string {
  const op = { id: 'source-0', name: 'Source', kind: 'source', keyed: false };
  return JSON.stringify({
    jobName: 'x',
    maxParallelism: 128,
    checkpoint: {},
    vertices: [
      { id: op.id, name: op.name, parallelism: 1, maxParallelism: 128, isSource: true, operators: [op] },
    ],
    edges: [],
  });
}

export { tempDir };

/** `weir cluster start` as a real process tree on an ephemeral port. */
export class TestCluster {
  private child: ChildProcess | undefined;
  address = '';
  /** host:port of the JobManager's REST API and dashboard */
  rest = '';
  readonly dir: string;
  /** what `weir cluster start` printed so far (its progress: TaskManagers exiting, standbys) */
  out = '';

  constructor(
    private readonly opts: {
      taskManagers?: number;
      slots?: number;
      extra?: string[];
      env?: Record<string, string>;
    } = {},
  ) {
    this.dir = tempDir('weir-cluster-');
  }

  async start(): Promise<this> {
    const args = [
      WEIR,
      'cluster',
      'start',
      '--port',
      '0',
      '--dir',
      this.dir,
      '--taskmanagers',
      String(this.opts.taskManagers ?? 2),
      '--slots',
      String(this.opts.slots ?? 2),
      ...(this.opts.extra ?? []),
    ];
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, ...this.opts.env },
    });
    this.child = child;
    const append = (d: Buffer): void => void (this.out += d.toString());
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    this.address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`cluster did not start: ${this.out}`)), 60_000);
      child.on('message', (m: { type: string; address: string; rest?: string }) => {
        if (m.type === 'ready') {
          clearTimeout(timer);
          this.rest = m.rest ?? '';
          resolve(m.address);
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`cluster exited with ${code}: ${this.out}`));
      });
    });
    return this;
  }

  run(args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
    return weir([args[0]!, '--jobmanager', this.address, ...args.slice(1)], opts);
  }

  /** PIDs of the TaskManager processes, from the cluster's log directory. */
  logDir(): string {
    return path.join(this.dir, 'logs');
  }

  /** The pid of a TaskManager (tm-1, tm-2, ...): the newest process that logged under that id. */
  taskManagerPid(taskManagerId: string): number {
    const n = /^tm-(\d+)$/.exec(taskManagerId)?.[1];
    if (!n) throw new Error(`not a local cluster TaskManager id: ${taskManagerId}`);
    const lines = readFileSync(path.join(this.logDir(), `taskmanager-${n}.log`), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'));
    return (JSON.parse(lines[lines.length - 1]!) as { pid: number }).pid;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, 15_000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }
}

/** One `weir` process (jobmanager or taskmanager) with its output in a log file; resolves once it said where it listens. */
export async function startWeirProcess(
  args: string[],
  logFile: string,
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; address: string; rest: string }> {
  const fd = openSync(logFile, 'a');
  // a JobManager on a fixed gRPC port would take the REST API's default 8081, which tests running side by side share
  if (args[0] === 'jobmanager' && !args.includes('--rest-port') && !args.includes('--no-rest'))
    args = [...args, '--rest-port', '0'];
  const child = spawn(process.execPath, [WEIR, ...args], {
    cwd: ROOT,
    stdio: ['ignore', fd, fd, 'ipc'],
    env: { ...process.env, ...env },
  });
  closeSync(fd);
  const ready = await new Promise<{ address: string; rest?: string }>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`weir ${args[0]} did not start; see ${logFile}`)),
      30_000,
    );
    child.once('message', (m: { address: string; rest?: string }) => {
      clearTimeout(timer);
      resolve(m);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`weir ${args[0]} exited with ${code}; see ${logFile}`));
    });
  });
  return { child, address: ready.address, rest: ready.rest ?? '' };
}

/** A port that was free a moment ago, for a process that must come back on the same address. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}
