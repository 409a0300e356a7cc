import {
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
} from 'node:fs';
import path from 'node:path';

/**
 * File-system steps of a sink commit that must survive a power cut and must never replace a
 * file that is already there. Synchronous: they run on the task thread between records, as
 * Flink's committer runs in the task's mailbox.
 */

/** Makes creations, links, renames and removals inside `dir` durable (POSIX needs the directory synced). */
export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** `mkdir -p` whose new directories survive a power cut: the parent of each one is synced. */
export function mkdirDurable(dir: string): void {
  const first = mkdirSync(dir, { recursive: true });
  if (first === undefined) return;
  for (let d = dir; ; d = path.dirname(d)) {
    fsyncDirectory(path.dirname(d));
    if (d === first || path.dirname(d) === d) break;
  }
}

/** Errors of link() on a file system without hard links (FAT, some network and FUSE mounts). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Gives the file `from` the name `to`, never replacing an existing `to`. Node has no
 * renameat2(RENAME_NOREPLACE), and rename() silently replaces, so the new name is made with
 * link(), which fails with EEXIST when the name is taken, atomically, in the kernel; the caller
 * removes `from` after syncing the directory. Idempotent, so a commit can run again after a
 * restore or a crash between its steps:
 *
 * - `from` gone and `to` present: committed before; nothing to do (`false`);
 * - both present and the same file (same inode, or identical bytes after a copy that did not
 *   keep hard links): the earlier commit stopped before removing `from` (`true`: remove it);
 * - `to` present and different: refused with an error, `to` untouched;
 * - both gone: the data is lost, and the error says so.
 *
 * On a file system without hard links the fallback is check-then-rename, exclusive against
 * everything but another writer racing for the same name (sink names are unique per writer).
 * Returns whether `from` still exists and must be removed.
 */
export function linkExclusive(from: string, to: string, what: string): boolean {
  try {
    linkSync(from, to);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (code === 'ENOENT' && !existsSync(from)) {
      if (existsSync(to)) return false;
      throw new Error(
        `${what} cannot commit ${to}: neither it nor its pre-committed file ${path.basename(from)} exists, so the output it held is lost; were files removed from ${path.dirname(to)} while the job ran?`,
      );
    }
    if (code === 'EEXIST' || (NO_HARD_LINKS.has(code) && existsSync(to))) {
      if (sameFile(from, to)) return true;
      throw new Error(
        `${what} will not overwrite ${to}: a different file already has that name (the pre-committed data stays in ${path.basename(from)}). Part file names are unique to each writer, so another program made it; move it out of the way and restart the job from its latest checkpoint`,
      );
    }
    if (NO_HARD_LINKS.has(code)) {
      renameSync(from, to);
      return false;
    }
    throw new Error(`${what} cannot commit ${from} as ${path.basename(to)}: ${(e as Error).message}`);
  }
}

function sameFile(a: string, b: string): boolean {
  const sa = lstatSync(a);
  const sb = lstatSync(b);
  if (sa.ino === sb.ino && sa.dev === sb.dev) return true;
  return sa.isFile() && sb.isFile() && sa.size === sb.size && sameBytes(a, b, sa.size);
}

function sameBytes(a: string, b: string, size: number): boolean {
  const fa = openSync(a, 'r');
  const fb = openSync(b, 'r');
  try {
    const ba = Buffer.allocUnsafe(Math.min(size, 1 << 20) || 1);
    const bb = Buffer.allocUnsafe(ba.length);
    for (let off = 0; off < size;) {
      const n = readSync(fa, ba, 0, ba.length, off);
      if (n <= 0 || readSync(fb, bb, 0, n, off) !== n || !ba.subarray(0, n).equals(bb.subarray(0, n)))
        return false;
      off += n;
    }
    return true;
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}
