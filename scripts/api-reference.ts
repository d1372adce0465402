// Renders the route reference of docs/api.md from the OpenAPI document the producer serves at
// /openapi.json (producer/openapi.ts, built from the zod schemas that validate requests), and writes
// it between docs/api.md's api-reference markers: `npm run docs:api` after adding or changing a route
// (test/unit/producer/api-reference.test.ts fails until then).
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';
import { buildOpenApi } from '../producer/openapi.ts';

type Schema = {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  items?: Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
  description?: string;
  default?: unknown;
  format?: string;
  nullable?: boolean;
  minimum?: number;
  maximum?: number;
};
interface Operation {
  summary: string;
  parameters?: { name: string; in: 'path' | 'query'; required: boolean; schema: Schema }[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, { content?: Record<string, { schema: Schema }> }>;
}
export interface OpenApiDoc {
  paths: Record<string, Record<string, Operation>>;
}

export const API_DOC = new URL('../docs/api.md', import.meta.url);
export const API_SECTION = /(<!-- api-reference:start[^>]*-->\n)[\s\S]*?(<!-- api-reference:end -->)/;

/** A table cell: one line, pipes escaped. */
const cell = (s: string) => s.replace(/\s*\n\s*/g, ' ').replaceAll('|', '\\|');

/** A short type: `string`, `integer 1-100000`, `"a" \| "b"`, `array of number`, ... */
function typeOf(s: Schema | undefined): string {
  if (!s) return 'any';
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' or ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  const alts = s.anyOf ?? s.oneOf;
  if (alts) return [...new Set(alts.map(typeOf))].join(' or ');
  if (s.allOf?.length === 1) return typeOf(s.allOf[0]);
  const t = Array.isArray(s.type) ? s.type.join(' or ') : s.type;
  if (t === 'array') return `array of ${typeOf(s.items)}`;
  if (t === 'string' && s.format === 'binary') return 'bytes';
  const max = s.maximum !== undefined && s.maximum < Number.MAX_SAFE_INTEGER ? s.maximum : undefined;
  const range = s.minimum !== undefined ? (max !== undefined ? ` ${s.minimum}-${max}` : ` >= ${s.minimum}`) : max !== undefined ? ` <= ${max}` : '';
  return `${t ?? 'any'}${range}${s.nullable ? ' or null' : ''}`;
}

/** The fields of an object schema (through one level of anyOf/allOf), for a table. */
function fields(s: Schema): { name: string; schema: Schema; required: boolean }[] {
  const objects = [s, ...(s.allOf ?? []), ...(s.anyOf ?? []), ...(s.oneOf ?? [])].filter((o) => o.properties);
  const seen = new Map<string, { name: string; schema: Schema; required: boolean }>();
  for (const o of objects)
    for (const [name, schema] of Object.entries(o.properties!))
      if (!seen.has(name)) seen.set(name, { name, schema, required: objects.length === 1 && (o.required?.includes(name) ?? false) });
  return [...seen.values()];
}

const describe = (s: Schema) => [s.description, s.default !== undefined ? `default ${JSON.stringify(s.default)}` : ''].filter(Boolean).join('; ');

function fieldTable(rows: { name: string; schema: Schema; required: boolean }[]): string[] {
  return [
    '| Field | Type | Required | Meaning |',
    '|---|---|---|---|',
    ...rows.map((f) => `| \`${f.name}\` | ${cell(typeOf(f.schema))} | ${f.required ? 'yes' : 'no'} | ${cell(describe(f.schema))} |`),
  ];
}

/** The route reference: an index of every route, then each route's parameters, body and answers. */
export function apiReference(doc: OpenApiDoc): string {
  const ops: { method: string; path: string; op: Operation }[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(methods)) ops.push({ method, path, op });
  const anchor = (method: string, path: string) =>
    `${method}-${path}`
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/-+$/, '');
  const out = [
    `${ops.length} routes.`,
    '',
    '| Route | What |',
    '|---|---|',
    ...ops.map((o) => `| [\`${o.method.toUpperCase()} ${o.path}\`](#${anchor(o.method, o.path)}) | ${cell(o.op.summary.split(/(?<=\.)\s/)[0]!)} |`),
  ];
  for (const { method, path, op } of ops) {
    out.push('', `<a id="${anchor(method, path)}"></a>`, '', `### \`${method.toUpperCase()} ${path}\``, '', cell(op.summary));
    const query = (op.parameters ?? []).filter((p) => p.in === 'query');
    if (query.length) out.push('', 'Query parameters:', '', ...fieldTable(query.map((p) => ({ name: p.name, schema: p.schema, required: p.required }))));
    const content = op.requestBody?.content ?? {};
    for (const [type, { schema }] of Object.entries(content)) {
      const f = fields(schema);
      if (type === 'application/json' && f.length) out.push('', `Body (\`${type}\`):`, '', ...fieldTable(f));
      else out.push('', `Body: \`${type}\`${schema.format === 'binary' ? ' (the bytes)' : ` (${typeOf(schema)})`}.`);
    }
    const answers = Object.entries(op.responses).map(([status, r]) => {
      const body = r.content?.['application/json']?.schema;
      if (status === '4XX')
        return `4xx \`${body && fields(body).some((f) => f.name === 'error' && typeOf(f.schema) === 'string') ? '{ "error": "..." }' : '{ "error": { "code", "message" } }'}\``;
      const f = body ? fields(body) : [];
      return `${status}${f.length ? ` with ${f.map((x) => `\`${x.name}\``).join(', ')}` : ''}`;
    });
    out.push('', `Answers: ${answers.join('; ')}.`);
  }
  return out.join('\n');
}

/** docs/api.md with its generated section replaced by `reference`. */
export function withReference(page: string, reference: string): string {
  if (!API_SECTION.test(page)) throw new Error('docs/api.md has no <!-- api-reference:start --> ... <!-- api-reference:end --> section');
  return page.replace(API_SECTION, (_m, start: string, end: string) => `${start}${reference}\n${end}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  fs.writeFileSync(API_DOC, withReference(fs.readFileSync(API_DOC, 'utf8'), apiReference(buildOpenApi() as unknown as OpenApiDoc)));
}
