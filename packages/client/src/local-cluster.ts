import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync, writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadClusterConfig } from '@weir/core';
import { ClusterClient } from './cluster-client.js';

export const WEIR_BIN = fileURLToPath(new URL('./bin/weir.js', import.meta.url));

export interface LocalClusterOptions {
  taskManagers: number;
  slots: number;
  port: number;
  /** logs and working files go here (default .weir under the current directory) */
  dir: string;
  /** extra flags for the JobManager, e.g. a slot request timeout */
  jobManagerArgs?: string[];
  /** --config and security flags for every process (this one must be configured alike, see applySecurity) */
  securityArgs?: string[];
  /** more fields for cluster.json, e.g. the security settings later commands in this directory use */
  clusterFileExtra?: Record<string, unknown>;
}

export interface ReadyMessage {
  type: 'ready';
  address: string;
}

/**
 * A JobManager and TaskManagers as child processes of this one, logging to files. They are
 * forked with an IPC channel so each can say where it listens once it is ready.
 */
export class LocalCluster {
  private readonly children: ChildProcess[] = [];
  jobManagerAddress = '';

  constructor(readonly opts: LocalClusterOptions) {}

  private spawn(name: string, args: string[]): Promise<{ child: ChildProcess; address: string }> {
    const logDir = path.join(this.opts.dir, 'logs');
    mkdirSync(logDir, { recursive: true });
    const logFile = path.join(logDir, `${name}.log`);
    const fd = openSync(logFile, 'a');
    const child = fork(WEIR_BIN, args, { stdio: ['ignore', fd, fd, 'ipc'], env: { ...process.env } });
    closeSync(fd);
    this.children.push(child);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s; see ${logFile}`)), 30_000);
      child.once('message', (m: ReadyMessage) => {
        clearTimeout(timer);
        resolve({ child, address: m.address });
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited with code ${code} while starting; see ${logFile}`));
      });
    });
  }

  async start(onProgress: (msg: string) => void = () => {}): Promise<void> {
    const workDir = path.join(this.opts.dir, 'work');
    const sec = this.opts.securityArgs ?? [];
    const extra = [...(this.opts.jobManagerArgs ?? []), ...sec];
    // the configuration file's directories apply where it has them; otherwise everything stays under dir
    const configFile = extra[extra.indexOf('--config') + 1];
    const config = extra.includes('--config') && configFile ? loadClusterConfig(configFile) : undefined;
    const dirs = [
      ...(config?.checkpointDir ? [] : ['--checkpoint-dir', path.join(this.opts.dir, 'checkpoints')]),
      ...(config?.savepointDir ? [] : ['--savepoint-dir', path.join(this.opts.dir, 'savepoints')]),
    ];
    const jm = await this.spawn('jobmanager', ['jobmanager', '--port', String(this.opts.port), ...dirs, ...extra]);
    this.jobManagerAddress = jm.address;
    onProgress(`JobManager listening on ${jm.address}`);
    await Promise.all(
      Array.from({ length: this.opts.taskManagers }, (_, i) =>
        this.spawn(`taskmanager-${i + 1}`, [
          'taskmanager', '--jobmanager', jm.address, '--slots', String(this.opts.slots), '--id', `tm-${i + 1}`,
          '--work-dir', path.join(workDir, `tm-${i + 1}`), ...sec,
        ]).then((tm) => onProgress(`TaskManager tm-${i + 1} listening on ${tm.address}`)),
      ),
    );
    await this.waitForTaskManagers(this.opts.taskManagers);
    writeFileSync(path.join(this.opts.dir, 'cluster.json'), JSON.stringify({ jobmanager: jm.address, pid: process.pid, ...this.opts.clusterFileExtra }, null, 2));
  }

  private async waitForTaskManagers(n: number): Promise<void> {
    const client = await ClusterClient.connect(this.jobManagerAddress);
    try {
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const o = await client.overview();
        if (o.taskManagers.length >= n) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`Only some of ${n} TaskManagers registered within 30 s; see ${path.join(this.opts.dir, 'logs')}`);
    } finally {
      client.close();
    }
  }

  /** SIGTERM to every process, SIGKILL to any still alive after the grace period. */
  async stop(graceMs = 5_000): Promise<void> {
    rmSync(path.join(this.opts.dir, 'cluster.json'), { force: true });
    const alive = this.children.filter((c) => c.exitCode === null && c.signalCode === null);
    // TaskManagers first, so the JobManager does not see them as lost mid-cancel
    await Promise.all(alive.map((c) => new Promise<void>((resolve) => {
      const t = setTimeout(() => { c.kill('SIGKILL'); resolve(); }, graceMs);
      c.once('exit', () => { clearTimeout(t); resolve(); });
      c.kill('SIGTERM');
    })));
  }

  pids(): number[] {
    return this.children.map((c) => c.pid!).filter(Boolean);
  }
}
