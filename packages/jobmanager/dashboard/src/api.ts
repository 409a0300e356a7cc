import { useEffect, useState } from 'preact/hooks';

/** The REST API's token, when the cluster requires one: asked once and kept in this browser. */
const TOKEN_KEY = 'weir.token';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const token = localStorage.getItem(TOKEN_KEY);
  const res = await fetch(path, {
    ...init,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers ?? {}) },
  });
  const body = (await res.json().catch(() => ({}))) as { errors?: string[] };
  if (!res.ok) throw new ApiError(res.status, body.errors?.join('; ') ?? res.statusText);
  return body as T;
}

export function setToken(token: string): void {
  localStorage.setItem(TOKEN_KEY, token);
}

export interface Polled<T> {
  data: T | undefined;
  error: ApiError | undefined;
}

/** GETs `path` now and every `intervalMs` while the component is shown (the dashboard's live updates). */
export function usePoll<T>(path: string | undefined, intervalMs = 2000): Polled<T> {
  const [state, setState] = useState<Polled<T>>({ data: undefined, error: undefined });
  useEffect(() => {
    if (!path) return undefined;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = (): void => {
      api<T>(path)
        .then(
          (data) => !stopped && setState({ data, error: undefined }),
          (error: ApiError) => !stopped && setState((s) => ({ data: s.data, error })),
        )
        .finally(() => {
          if (!stopped) timer = setTimeout(tick, intervalMs);
        });
    };
    setState({ data: undefined, error: undefined });
    tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [path, intervalMs]);
  return state;
}
