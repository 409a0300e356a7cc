import { lstat, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * Where a JobManager unpacks the job bundles it plans (for split enumerators): a directory of
 * its own, `weir-jobmanager-<pid>-<random>`, under process.jobmanager.working-dir or else the
 * system's temporary directory. The random part (mkdtemp, mode 0700) keeps another local user
 * from preparing the directory the JobManager imports job code from. A JobManager removes its
 * own directory when it stops; one killed with SIGKILL cannot, so every JobManager removes on
 * start the directories of JobManagers that are no longer running.
 */
export function bundleDirectoryBase(workDir: string | undefined): string {
  return workDir ?? tmpdir();
}

const PREFIX = 'weir-jobmanager-';
/** a JobManager's bundle directory; also the plain `weir-jobmanager-<pid>` of older versions */
const NAME = /^weir-jobmanager-(\d+)(?:-[A-Za-z0-9]+)?$/;

export async function createBundleDirectory(base: string): Promise<string> {
  await mkdir(base, { recursive: true });
  return mkdtemp(path.join(base, `${PREFIX}${process.pid}-`));
}

/** Whether a process with this pid exists (one of another user's answers EPERM: it does). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Removes the bundle directories under `base` whose JobManager's pid no longer runs. Only
 * directories this user owns (never a symbolic link, never another user's); this process's
 * and every running process's are kept. Returns what it removed and what it could not.
 */
export async function removeStaleBundleDirectories(
  base: string,
): Promise<{ removed: string[]; failed: Array<{ dir: string; error: string }> }> {
  const removed: string[] = [];
  const failed: Array<{ dir: string; error: string }> = [];
  let names: string[];
  try {
    names = await readdir(base);
  } catch {
    return { removed, failed }; // no such directory yet: nothing stale
  }
  const uid = process.getuid?.();
  for (const name of names) {
    const pid = Number(NAME.exec(name)?.[1] ?? NaN);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || isRunning(pid)) continue;
    const dir = path.join(base, name);
    try {
      const st = await lstat(dir);
      if (!st.isDirectory() || st.uid !== uid) continue;
      await rm(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch (err) {
      // another JobManager starting at the same time removed it first
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        failed.push({ dir, error: (err as Error).message });
    }
  }
  return { removed, failed };
}
