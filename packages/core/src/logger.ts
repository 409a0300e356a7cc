import { pino, type Logger } from 'pino';

export type { Logger };

/** One structured logger per process; the component name tells whose line it is. */
export function createLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({
    name: component,
    level: process.env.WEIR_LOG_LEVEL ?? 'info',
    base: { pid: process.pid, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
