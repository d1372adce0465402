// Logs (pino). One root logger per process; children carry the component and job ids. Lines are
// JSON (MODELQ_LOG_FORMAT=json, and whenever stdout is not a terminal under `auto`, the default) or
// short readable lines on a terminal (`pretty`): pino-pretty would be a dependency for 30 lines.
// Access/audit lines have a stream of their own: createAuditLogger.
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };
export type LogFormat = 'auto' | 'json' | 'pretty';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const COLORS: Record<number, string> = { 40: '\x1b[33m', 50: '\x1b[31m', 60: '\x1b[31m' };
/** Fields every line has, or that the pretty line shows in its own place. */
const OMIT = new Set(['level', 'time', 'pid', 'hostname', 'component', 'msg']);

const show = (v: unknown) => (typeof v === 'string' && !/[\s"=]/.test(v) && v !== '' ? v : JSON.stringify(v));

/** One pino JSON line as `12:30:01 INFO  producer: producer listening bind=127.0.0.1 port=8080`. */
export function prettyLine(json: string, color = false): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const level = Number(o.level);
  const time = typeof o.time === 'string' ? o.time.slice(11, 19) : new Date(Number(o.time)).toISOString().slice(11, 19);
  const name = (LEVELS[level] ?? String(o.level)).padEnd(5);
  const fields = Object.entries(o)
    .filter(([k, v]) => !OMIT.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${show(v)}`)
    .join(' ');
  const lvl = color && COLORS[level] ? `${COLORS[level]}${name}\x1b[0m` : name;
  return `${time} ${lvl} ${String(o.component ?? '')}: ${String(o.msg ?? '')}${fields ? ` ${fields}` : ''}\n`;
}

function prettyStream(out: NodeJS.WriteStream): DestinationStream {
  const color = Boolean(out.isTTY);
  return { write: (line: string) => void out.write(prettyLine(line, color)) };
}

function resolveFormat(format: string | undefined): 'json' | 'pretty' {
  if (format === 'json' || format === 'pretty') return format;
  return process.stdout.isTTY ? 'pretty' : 'json';
}

export function createLogger(component: string, level = process.env.MODELQ_LOG_LEVEL || 'info', format = process.env.MODELQ_LOG_FORMAT): Logger {
  const opts = { level, base: { component, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  return resolveFormat(format) === 'pretty' ? pino(opts, prettyStream(process.stdout)) : pino(opts);
}

/**
 * Where the access/audit lines (one per state-changing request) go: appended as JSON to `file`
 * (MODELQ_AUDIT_LOG) when one is named; else to stdout with the other logs: at level info in JSON
 * (as collectors expect them), but in readable terminal output only when MODELQ_LOG_LEVEL is
 * `debug` or `trace`, so a terminal is not filled with a line per request.
 */
export function createAuditLogger(
  component: string,
  file: string,
  level = process.env.MODELQ_LOG_LEVEL || 'info',
  format = process.env.MODELQ_LOG_FORMAT,
): Logger {
  if (file) {
    const dest = pino.destination({ dest: file, append: true, mkdir: true, sync: true });
    return pino({ level: 'info', base: { component, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
  }
  if (resolveFormat(format) === 'json') return createLogger(component, level, 'json');
  return createLogger(component, level === 'debug' || level === 'trace' ? 'info' : 'silent', 'pretty');
}
