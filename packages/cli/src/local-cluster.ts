import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { chmodSync, mkdirSync, openSync, closeSync, writeFileSync, writeSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDefinitions, resolveConfig } from '@weir/core';

/**
 * The CLI entry the cluster's processes run: the built one next to the built module, or the
 * source one when this module runs from source (through tsx, as benchmarks do).
 */
export const WEIR_BIN = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? './bin/weir.ts' : './bin/weir.js', import.meta.url),
);

/**
 * The Node.js flags of a cluster process: the TypeScript loader when its entry is source, then
 * the flags asked for. Never this process's own flags (fork's default), which would hand a
 * bench's --cpu-prof or --inspect, or a test's heap limit, to every JobManager and TaskManager.
 */
export function childExecArgv(entry: string, asked: readonly string[] = []): string[] {
  return [...(entry.endsWith('.ts') ? ['--import', import.meta.resolve('tsx')] : []), ...asked];
}

/**
 * The environment of a TaskManager process: glibc gives every thread that allocates an arena
 * of its own (up to 8 per core), and RocksDB's threads and libuv's pool fragment them, so the
 * resident set grows past what the memory budget counts (a TaskManager with 10M keys of
 * RocksDB state peaked at 901 MiB with them, 821 MiB with 2; bench/README.md). Two arenas, as
 * Flink's memory tuning advises for glibc, unless the environment already sets
 * MALLOC_ARENA_MAX. The container image sets the same.
 */
export function taskManagerEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return env.MALLOC_ARENA_MAX === undefined ? { ...env, MALLOC_ARENA_MAX: '2' } : env;
}

export interface LocalClusterOptions {
  taskManagers: number;
  slots: number;
  port: number;
  /** logs and working files go here (default .weir under the current directory) */
  dir: string;
  /** extra flags for the JobManager, e.g. a slot request timeout */
  jobManagerArgs?: string[];
  /** keep running jobs in <dir>/ha so a restarted JobManager resumes them (off for the embedded cluster of `run --local`) */
  jobStore?: boolean;
  /** --config and security flags for every process (this one must be configured alike, see applySecurity) */
  securityArgs?: string[];
  /** more fields for cluster.json, e.g. the security settings later commands in this directory use */
  clusterFileExtra?: Record<string, unknown>;
  /**
   * Node.js flags for the TaskManager processes, e.g. --max-old-space-size=256 or --cpu-prof
   * (the cluster's processes get none of this process's own flags)
   */
  taskManagerNodeArgs?: string[];
  /**
   * The REST API's port (0: any free port). Unset: 8081 when it is free and the JobManager
   * has a fixed port, else any free port, so clusters started side by side never collide.
   */
  restPort?: number;
  /** false: no REST API, dashboard or Prometheus endpoints (the metrics benchmark's baseline) */
  metrics?: boolean;
  /**
   * Keep one TaskManager process started ahead, with no identity: when a TaskManager dies, the
   * standby takes its id and working directories at once (its local recovery state with them)
   * instead of a new process starting (about 0.3 s), and a new standby starts behind it.
   */
  standbyTaskManager?: boolean;
}

/** True when nothing listens on 127.0.0.1:port right now. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** What a standby TaskManager says once its code is loaded. */
interface StandbyMessage {
  type: 'standby';
}

/** What a standby TaskManager takes over from one that died (see standbyTaskManager). */
export interface AdoptMessage {
  type: 'adopt';
  id: string;
  workDir: string;
}

/**
 * A child's output appended to a log file that can change: a standby's output goes to its own
 * file until it takes a dead TaskManager's name, then to that name's file, so each name's log
 * holds all its processes.
 */
class SwitchableLog {
  private fd: number;

  constructor(child: ChildProcess, file: string) {
    this.fd = openSync(file, 'a');
    const write = (d: Buffer): void => void writeSync(this.fd, d);
    child.stdout!.on('data', write);
    child.stderr!.on('data', write);
    child.once('close', () => closeSync(this.fd));
  }

  switchTo(file: string): void {
    closeSync(this.fd);
    this.fd = openSync(file, 'a');
  }
}

export interface ReadyMessage {
  type: 'ready';
  address: string;
  /** host:port of the JobManager's REST API and dashboard */
  rest?: string;
  /** host:port of a TaskManager's Prometheus endpoint */
  metrics?: string;
}

/**
 * A JobManager and TaskManagers as child processes of this one, logging to files. They are
 * forked with an IPC channel so each can say where it listens once it is ready. Like a
 * container platform, it starts a TaskManager again when it dies, with a growing delay.
 */
export class LocalCluster {
  private readonly children: ChildProcess[] = [];
  /** the current process of each name (jobmanager, taskmanager-1, ...) */
  private readonly byName = new Map<string, ChildProcess>();
  private stopping = false;
  /** TaskManagers started again after they died, for the CLI and tests to see */
  readonly restarts: Array<{ name: string; at: number; code: number | null; signal: string | null }> = [];
  jobManagerAddress = '';
  /** flags every child gets besides securityArgs: where the cluster secret is */
  private readonly secretArgs: string[] = [];
  /** host:port of the REST API and dashboard, empty when the JobManager serves none */
  restAddress = '';
  /** the Prometheus endpoint of each TaskManager (tm-1, ...), as it last reported */
  readonly metricsAddresses = new Map<string, string>();
  /** the TaskManager flags every TaskManager shares (not its id or working directory) */
  private taskManagerCommon: string[] = [];
  /** the standby TaskManager while it waits, its code loaded (see standbyTaskManager) */
  private standby: { child: ChildProcess; log: SwitchableLog } | undefined;
  private standbys = 0;
  private standbyStarting = false;

  constructor(readonly opts: LocalClusterOptions) {}

  /**
   * A fresh cluster secret for this cluster, in `<dir>/cluster-secret` (mode 0600); the children
   * get the file's path (never the secret itself on a command line, which other local users can
   * read), and their internal services then refuse every process without it. A secret the
   * configuration or the environment already gives is used as it is.
   */
  private makeClusterSecret(configured: boolean): void {
    if (configured) return;
    mkdirSync(this.opts.dir, { recursive: true });
    const file = path.join(this.opts.dir, 'cluster-secret');
    rmSync(file, { force: true });
    writeFileSync(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
    this.secretArgs.push('-D', `security.cluster.secret-file=${file}`);
  }

  private spawn(
    name: string,
    args: string[],
    execArgv: string[] = [],
  ): Promise<{ child: ChildProcess; address: string; ready: ReadyMessage }> {
    const logFile = this.logFile(name);
    const fd = openSync(logFile, 'a');
    const child = this.fork(name, args, execArgv, [fd, fd]);
    closeSync(fd);
    return this.untilMessage<ReadyMessage>(name, child, logFile, 'ready').then((ready) => ({
      child,
      address: ready.address,
      ready,
    }));
  }

  private logFile(name: string): string {
    const logDir = path.join(this.opts.dir, 'logs');
    mkdirSync(logDir, { recursive: true });
    return path.join(logDir, `${name}.log`);
  }

  private fork(name: string, args: string[], execArgv: string[], out: Array<number | 'pipe'>): ChildProcess {
    // the cluster's processes run in this one's environment (TaskManagers with taskManagerEnv's addition)
    const parentEnv = process.env;
    const child = fork(WEIR_BIN, args, {
      stdio: ['ignore', out[0]!, out[1]!, 'ipc'],
      execArgv: childExecArgv(WEIR_BIN, execArgv),
      env: name.startsWith('taskmanager') ? taskManagerEnv(parentEnv) : parentEnv,
    });
    this.children.push(child);
    this.byName.set(name, child);
    return child;
  }

  /** Resolves with the child's first message of `type`; rejects when it exits first or takes 30 s. */
  private untilMessage<M extends { type: string }>(
    name: string,
    child: ChildProcess,
    logFile: string,
    type: M['type'],
  ): Promise<M> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: M): void => {
        if (m?.type !== type) return;
        done();
        resolve(m);
      };
      const onExit = (code: number | null): void => {
        done();
        reject(new Error(`${name} exited with code ${code} while starting; see ${logFile}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${name} did not start within 30 s; see ${logFile}`));
      }, 30_000);
      const done = (): void => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  }

  async start(onProgress: (msg: string) => void = () => {}): Promise<void> {
    const workDir = path.join(this.opts.dir, 'work');
    const given = this.opts.securityArgs ?? [];
    const extra = [...(this.opts.jobManagerArgs ?? []), ...given];
    // the configuration file's directories apply where it has them; otherwise everything stays under dir
    const configFile = extra.includes('--config') ? extra[extra.indexOf('--config') + 1] : undefined;
    const defines = extra.flatMap((a, i) => (a === '-D' && extra[i + 1] ? [extra[i + 1]!] : []));
    // what the file, the environment or -D set is left alone; flags would override it
    const resolved = resolveConfig({
      ...(configFile ? { file: configFile } : {}),
      flags: parseDefinitions(defines),
    });
    const config = resolved.toClusterConfig();
    this.makeClusterSecret(
      resolved.get('security.cluster.secret-file') !== undefined ||
        resolved.get('security.cluster.secret') !== undefined,
    );
    const sec = [...given, ...this.secretArgs];
    const dirs = [
      ...(config.checkpointDir ? [] : ['--checkpoint-dir', path.join(this.opts.dir, 'checkpoints')]),
      ...(config.savepointDir ? [] : ['--savepoint-dir', path.join(this.opts.dir, 'savepoints')]),
    ];
    if (this.opts.jobStore === false) dirs.push('--no-job-store');
    else if (!config.jobStore && config.jobStoreEnabled !== false)
      dirs.push('--job-store', path.join(this.opts.dir, 'ha'));
    // the JobManager's working files stay under dir unless the configuration says where
    if (!resolved.isSet('process.jobmanager.working-dir')) dirs.push('--work-dir', path.join(workDir, 'jm'));
    if (this.opts.metrics === false) dirs.push('--no-rest');
    else if (!extra.includes('--rest-port') && !resolved.isSet('rest.port')) {
      const port =
        this.opts.restPort ??
        (this.opts.port !== 0 && (await portIsFree(resolved.get('rest.port')))
          ? resolved.get('rest.port')
          : 0);
      dirs.push('--rest-port', String(port));
    }
    const jm = await this.spawn('jobmanager', [
      'jobmanager',
      '--port',
      String(this.opts.port),
      ...dirs,
      ...extra,
      ...this.secretArgs,
    ]);
    this.jobManagerAddress = jm.address;
    this.restAddress = jm.ready.rest ?? '';
    onProgress(`JobManager listening on ${jm.address}`);
    this.taskManagerCommon = [
      '--jobmanager',
      jm.address,
      '--slots',
      String(this.opts.slots),
      ...sec,
      // each TaskManager gets its own Prometheus port unless a configuration file sets one
      ...(this.opts.metrics !== false && !resolved.isSet('metrics.reporter.prometheus.port')
        ? ['--metrics-port', '0']
        : []),
      // RocksDB state stays under dir unless a configuration file says where
      ...(resolved.get('state.backend.rocksdb.localdir')
        ? []
        : ['--state-dir', path.join(this.opts.dir, 'tm-state')]),
    ];
    // a TaskManager says it is ready once the JobManager accepted its registration, so once
    // every one did the cluster takes jobs (no polling of the JobManager's overview)
    await Promise.all(
      Array.from({ length: this.opts.taskManagers }, (_, i) => {
        const name = `taskmanager-${i + 1}`;
        const args = [
          'taskmanager',
          '--id',
          `tm-${i + 1}`,
          '--work-dir',
          path.join(workDir, `tm-${i + 1}`),
          ...this.taskManagerCommon,
        ];
        return this.spawn(name, args, this.opts.taskManagerNodeArgs).then((tm) => {
          if (tm.ready.metrics) this.metricsAddresses.set(`tm-${i + 1}`, tm.ready.metrics);
          onProgress(
            `TaskManager tm-${i + 1} listening on ${tm.address}${tm.ready.metrics ? `, metrics on http://${tm.ready.metrics}/metrics` : ''}`,
          );
          this.supervise(name, args, tm.child, onProgress);
        });
      }),
    );
    if (this.opts.standbyTaskManager) await this.startStandby(onProgress);
    writeFileSync(
      path.join(this.opts.dir, 'cluster.json'),
      JSON.stringify(
        {
          jobmanager: jm.address,
          ...(this.restAddress ? { rest: this.restAddress } : {}),
          pid: process.pid,
          ...this.opts.clusterFileExtra,
        },
        null,
        2,
      ),
    );
  }

  /**
   * Starts a TaskManager again when it exits on its own: at once (its tasks wait for it when
   * they restore from its local state), then after 0.2 s, doubling to 10 s while it keeps
   * exiting; from scratch after a minute up.
   */
  private supervise(
    name: string,
    args: string[],
    child: ChildProcess,
    onProgress: (msg: string) => void,
    delayMs = 0,
  ): void {
    const startedAt = Date.now();
    child.once('exit', (code, signal) => {
      if (this.stopping) return;
      const delay = Date.now() - startedAt > 60_000 ? 0 : delayMs;
      this.restarts.push({ name, at: Date.now(), code, signal });
      const exited = `${name} exited (${signal ?? `code ${code}`})`;
      if (this.takeOver(name, args, onProgress, exited, delay)) return;
      onProgress(`${exited}; starting it again in ${delay} ms`);
      this.respawn(name, args, onProgress, delay);
    });
  }

  /** Starts the standby TaskManager; resolves once its code is loaded. */
  private async startStandby(onProgress: (msg: string) => void): Promise<void> {
    if (this.standbyStarting) return;
    this.standbyStarting = true;
    try {
      await this.forkStandby(onProgress);
    } finally {
      this.standbyStarting = false;
    }
  }

  private async forkStandby(onProgress: (msg: string) => void): Promise<void> {
    const name = `taskmanager-standby-${++this.standbys}`;
    const logFile = this.logFile(name);
    const child = this.fork(
      name,
      ['taskmanager', '--standby', ...this.taskManagerCommon],
      this.opts.taskManagerNodeArgs ?? [],
      ['pipe', 'pipe'],
    );
    const log = new SwitchableLog(child, logFile);
    this.byName.delete(name);
    await this.untilMessage<StandbyMessage>(name, child, logFile, 'standby');
    if (this.stopping) return;
    this.standby = { child, log };
    child.once('exit', (code, signal) => {
      if (this.standby?.child !== child) return;
      // it died waiting: TaskManagers start as new processes until another standby is up
      this.standby = undefined;
      if (this.stopping) return;
      onProgress(`standby TaskManager exited (${signal ?? `code ${code}`}); starting another in 1 s`);
      setTimeout(() => {
        if (!this.stopping && !this.standby)
          this.startStandby(onProgress).catch((err: Error) =>
            onProgress(`the next standby TaskManager failed to start: ${err.message}`),
          );
      }, 1_000);
    });
    onProgress(`standby TaskManager ready (pid ${child.pid})`);
  }

  /**
   * The standby, when there is one, becomes the TaskManager `name` that exited: the same id and
   * working directories, so its tasks restore from their local state without waiting for a
   * process to start. A new standby starts behind it.
   */
  private takeOver(
    name: string,
    args: string[],
    onProgress: (msg: string) => void,
    exited: string,
    delayMs: number,
  ): boolean {
    const standby = this.standby;
    if (!standby || standby.child.exitCode !== null || standby.child.signalCode !== null) return false;
    this.standby = undefined;
    const id = args[args.indexOf('--id') + 1]!;
    const workDir = args[args.indexOf('--work-dir') + 1]!;
    const logFile = this.logFile(name);
    standby.log.switchTo(logFile);
    this.byName.set(name, standby.child);
    standby.child.send({ type: 'adopt', id, workDir } satisfies AdoptMessage);
    onProgress(`${exited}; the standby TaskManager (pid ${standby.child.pid}) takes over as ${id}`);
    const next = Math.min(Math.max(delayMs * 2, 200), 10_000);
    this.untilMessage<ReadyMessage>(name, standby.child, logFile, 'ready').then(
      (ready) => {
        if (ready.metrics) this.metricsAddresses.set(id, ready.metrics);
        onProgress(`${name} started again, listening on ${ready.address}`);
        this.supervise(name, args, standby.child, onProgress, next);
      },
      (err: Error) => {
        onProgress(`${name} failed to start again: ${err.message}`);
        this.respawn(name, args, onProgress, next);
      },
    );
    this.startStandby(onProgress).catch((err: Error) =>
      onProgress(`the next standby TaskManager failed to start: ${err.message}`),
    );
    return true;
  }

  private respawn(name: string, args: string[], onProgress: (msg: string) => void, delay: number): void {
    const next = Math.min(Math.max(delay * 2, 200), 10_000);
    setTimeout(() => {
      if (this.stopping) return;
      this.spawn(name, args, this.opts.taskManagerNodeArgs).then(
        (tm) => {
          if (tm.ready.metrics)
            this.metricsAddresses.set(name.replace('taskmanager-', 'tm-'), tm.ready.metrics);
          onProgress(`${name} started again, listening on ${tm.address}`);
          this.supervise(name, args, tm.child, onProgress, next);
        },
        (err: Error) => {
          onProgress(`${name} failed to start again: ${err.message}`);
          this.respawn(name, args, onProgress, next);
        },
      );
    }, delay);
  }

  /** SIGTERM to every process, SIGKILL to any still alive after the grace period. */
  async stop(graceMs = 5_000): Promise<void> {
    this.stopping = true;
    rmSync(path.join(this.opts.dir, 'cluster.json'), { force: true });
    const alive = this.children.filter((c) => c.exitCode === null && c.signalCode === null);
    // TaskManagers first, so the JobManager does not see them as lost mid-cancel
    await Promise.all(
      alive.map(
        (c) =>
          new Promise<void>((resolve) => {
            const t = setTimeout(() => {
              c.kill('SIGKILL');
              resolve();
            }, graceMs);
            c.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
  }

  /** The pid of TaskManager `tm-<n>`'s current process. */
  taskManagerPid(taskManagerId: string): number | undefined {
    return this.byName.get(taskManagerId.replace(/^tm-/, 'taskmanager-'))?.pid;
  }

  pids(): number[] {
    return this.children.map((c) => c.pid!).filter(Boolean);
  }
}
