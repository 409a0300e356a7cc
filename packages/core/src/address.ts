/** Parses `host:port` (or `[v6]:port`) and names the flag or setting on error. */
export function parseAddress(value: string, what = 'address'): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value.trim());
  if (!m) throw new Error(`Invalid ${what} '${value}': expected HOST:PORT, e.g. 127.0.0.1:6123`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new Error(`Invalid ${what} '${value}': port must be in 1..65535`);
  return { host: m[1]!, port };
}

export function parsePort(value: string, what = '--port'): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new Error(`Invalid ${what} '${value}': expected a port number in 0..65535`);
  return n;
}

export function parsePositiveInt(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`Invalid ${what} '${value}': expected a positive integer`);
  return n;
}
