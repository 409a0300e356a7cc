import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { StorageError } from './storage-error.js';

/**
 * Where checkpoints, savepoints or the job store live, parsed once from what a user, a
 * configuration file or a job gave: a local directory, or a prefix in an S3 bucket. Every
 * decision about storage locations (which implementation, whether one is inside another, how a
 * handle path such as `../shared/<file>` resolves) is made on this type, never on strings.
 */
export type StorageLocation = FileLocation | S3Location;

/** A local directory (or file): an absolute, normalized path without a trailing slash. */
export interface FileLocation {
  readonly scheme: 'file';
  readonly path: string;
}

/** Objects under `prefix` in `bucket`; the prefix has no leading, trailing or doubled slashes. */
export interface S3Location {
  readonly scheme: 's3';
  readonly bucket: string;
  readonly prefix: string;
}

/** The two accepted URI forms, for error messages. */
export const STORAGE_URI_FORMS = 'file:///absolute/path or s3://bucket/prefix';

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/** True when `s` starts with a URI scheme (`file://`, `s3://`, or any other `x://`). */
export function isStorageUri(s: string): boolean {
  return SCHEME.test(s);
}

export interface ParseLocationOptions {
  /**
   * Plain paths are accepted and resolved against this directory; without it only URIs are
   * accepted (configuration files and jobs name storage by URI).
   */
  baseDir?: string;
  /** What the location is for, to start error messages with (default "Storage location"). */
  what?: string;
}

/**
 * The one parser of storage locations. Accepts `file:///absolute/path` (or
 * `file://localhost/...`), `s3://bucket[/prefix]` and, with `baseDir`, plain paths. A URI with a
 * `..` segment is refused (a plain path is resolved as a shell would: `../x` is a sibling of the
 * base directory). Every error is a StorageError with reason INVALID_LOCATION that quotes the
 * input and says which forms are accepted.
 */
export function parseStorageLocation(input: string, opts: ParseLocationOptions = {}): StorageLocation {
  const what = opts.what ?? 'Storage location';
  const invalid = (why: string): StorageError =>
    new StorageError('INVALID_LOCATION', `${what} '${input}' ${why}`);
  if (typeof input !== 'string' || input.trim() === '') throw invalid(`is empty: give ${STORAGE_URI_FORMS}`);
  if (input.includes('\0')) throw new StorageError('INVALID_LOCATION', `${what} contains a NUL character`);
  const m = SCHEME.exec(input);
  if (!m) {
    if (opts.baseDir === undefined) throw invalid(`is not a storage URI: give ${STORAGE_URI_FORMS}`);
    return { scheme: 'file', path: trimSlashes(path.resolve(opts.baseDir, input)) };
  }
  const scheme = m[1]!.toLowerCase();
  const rest = input.slice(m[0].length);
  if (scheme !== 'file' && scheme !== 's3')
    throw invalid(
      `has an unsupported scheme '${m[1]}://': give ${opts.baseDir !== undefined ? 'a directory, ' : ''}${STORAGE_URI_FORMS}`,
    );
  const segments = rest.split('/');
  if (segments.some((s) => s === '..' || s.toLowerCase() === '%2e%2e'))
    throw invalid(`has a '..' segment: give the location without it`);
  if (scheme === 's3') {
    const bucket = segments[0]!;
    if (!bucket) throw invalid('names no bucket: give s3://bucket/prefix');
    if (/[\s?#]/.test(bucket)) throw invalid(`has an invalid bucket name '${bucket}'`);
    const prefix = segments
      .slice(1)
      .filter((s) => s !== '' && s !== '.')
      .join('/');
    return { scheme: 's3', bucket, prefix };
  }
  if (!rest.startsWith('/') && !/^localhost\//i.test(rest))
    throw invalid(`names a host or a relative path: give file:///absolute/path (three slashes)`);
  let p: string;
  try {
    p = fileURLToPath(input);
  } catch (e) {
    throw invalid(`is not a file URI of this machine (${(e as Error).message}): give file:///absolute/path`);
  }
  return { scheme: 'file', path: trimSlashes(path.normalize(p)) };
}

function trimSlashes(p: string): string {
  const t = p.replace(/\/+$/, '');
  return t === '' ? '/' : t;
}

/** The canonical URI of a location: `file:///...` (percent-encoded) or `s3://bucket/prefix`, no trailing slash. */
export function storageUri(loc: StorageLocation): string {
  if (loc.scheme === 's3') return `s3://${loc.bucket}${loc.prefix ? `/${loc.prefix}` : ''}`;
  return pathToFileURL(loc.path).href;
}

/** How a location is named in messages and logs: a local path as a path, S3 as its URI. */
export function describeLocation(loc: StorageLocation): string {
  return loc.scheme === 'file' ? loc.path : storageUri(loc);
}

/** A URI or a directory as a canonical storage URI; plain paths are relative to `baseDir` (default: the working directory). */
export function toStorageUri(target: string, baseDir: string = process.cwd()): string {
  return storageUri(parseStorageLocation(target, { baseDir }));
}

/** The file:// URI of a local directory (relative to the working directory). */
export function fileStorageUri(dir: string): string {
  return storageUri({ scheme: 'file', path: trimSlashes(path.resolve(dir)) });
}

/**
 * `rel` (slash-separated, relative, without `..`) under `loc`. Throws StorageError
 * INVALID_LOCATION naming both when `rel` would climb out.
 */
export function childLocation(loc: StorageLocation, rel: string): StorageLocation {
  const norm = path.posix.normalize(rel);
  if (norm === '..' || norm.startsWith('../') || path.posix.isAbsolute(norm))
    throw new StorageError('INVALID_LOCATION', `Path ${rel} escapes ${storageUri(loc)}`);
  const clean = norm === '.' ? '' : norm.replace(/\/+$/, '');
  if (!clean) return loc;
  if (loc.scheme === 's3') return { ...loc, prefix: loc.prefix ? `${loc.prefix}/${clean}` : clean };
  return { scheme: 'file', path: path.join(loc.path, clean) };
}

/** The enclosing directory, or undefined at the top (`/`, or the bucket). */
export function parentLocation(loc: StorageLocation): StorageLocation | undefined {
  if (loc.scheme === 's3') {
    if (!loc.prefix) return undefined;
    const cut = loc.prefix.lastIndexOf('/');
    return { ...loc, prefix: cut < 0 ? '' : loc.prefix.slice(0, cut) };
  }
  return loc.path === '/' ? undefined : { scheme: 'file', path: path.dirname(loc.path) };
}

/** The last segment of a location ('' at the top). */
export function locationName(loc: StorageLocation): string {
  if (loc.scheme === 's3') return loc.prefix.slice(loc.prefix.lastIndexOf('/') + 1);
  return loc.path === '/' ? '' : path.basename(loc.path);
}

/** True when `loc` is `root` or below it (same scheme, same bucket, whole segments). */
export function isWithinLocation(loc: StorageLocation, root: StorageLocation): boolean {
  if (loc.scheme === 'file' && root.scheme === 'file')
    return root.path === '/' || loc.path === root.path || loc.path.startsWith(`${root.path}/`);
  if (loc.scheme === 's3' && root.scheme === 's3')
    return (
      loc.bucket === root.bucket &&
      (root.prefix === '' || loc.prefix === root.prefix || loc.prefix.startsWith(`${root.prefix}/`))
    );
  return false;
}

/**
 * A state handle's path is relative to the directory of its checkpoint's `_metadata` and may
 * climb out of it (`../shared/<file>`, the files incremental checkpoints share): the location to
 * open storage at, and the plain path under it. Throws StorageError INVALID_LOCATION when the
 * path climbs above the top of the storage (`/` or the bucket).
 */
export function resolveHandlePath(
  root: StorageLocation | string,
  relPath: string,
): { root: StorageLocation; path: string } {
  let at = typeof root === 'string' ? parseStorageLocation(root) : root;
  let rel = path.posix.normalize(relPath);
  while (rel.startsWith('../')) {
    const up = parentLocation(at);
    if (!up)
      throw new StorageError(
        'INVALID_LOCATION',
        `Checkpoint path ${relPath} escapes ${typeof root === 'string' ? root : storageUri(root)}`,
      );
    at = up;
    rel = rel.slice(3);
  }
  return { root: at, path: rel };
}
