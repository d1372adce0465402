// Structured JSON logs (pino). One root logger per process; children carry the component and job ids.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(component: string, level = process.env.MODELQ_LOG_LEVEL || 'info'): Logger {
  return pino({ level, base: { component, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}
