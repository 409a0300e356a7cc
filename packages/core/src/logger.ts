import { pino, type Logger } from 'pino';
import { defaultSettings, type LogLevel } from './config.js';
import { hasSecrets, maskSecrets, maskString } from './secrets.js';

export type { Logger };

/** Keys whose values are never written, whatever they hold. */
const REDACT = [
  'token',
  'authorization',
  'secretAccessKey',
  'accessKeyId',
  'sessionToken',
  'password',
  '*.token',
  '*.authorization',
  '*.secretAccessKey',
  '*.accessKeyId',
  '*.sessionToken',
  '*.password',
  'credentials',
  '*.credentials',
];

/**
 * One structured logger per process; the component name tells whose line it is. Secrets the
 * process knows (see secrets.ts) are masked in every message and field. `level` is the
 * process's log.level setting (the registry's default when not given).
 */
export function createLogger(
  component: string,
  bindings: Record<string, unknown> = {},
  level: LogLevel = defaultSettings()['log.level'],
): Logger {
  return pino({
    name: component,
    level,
    base: { pid: process.pid, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT, censor: '***' },
    formatters: {
      log: (obj) => (hasSecrets() ? maskSecrets(obj) : obj),
    },
    hooks: {
      logMethod(args, method) {
        if (hasSecrets()) {
          for (let i = 0; i < args.length; i++)
            if (typeof args[i] === 'string') args[i] = maskString(args[i] as string);
        }
        method.apply(this, args as Parameters<typeof method>);
      },
    },
  });
}
