// docs/api.md's route reference is the one rendered from the OpenAPI document the producer serves
// (npm run docs:api), and it names every route.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { API_SECTION, apiReference, withReference, type OpenApiDoc } from '../../../scripts/api-reference.ts';
import { buildOpenApi, ROUTES } from '../../../producer/openapi.ts';

const page = fs.readFileSync(new URL('../../../docs/api.md', import.meta.url), 'utf8');
const rendered = apiReference(buildOpenApi() as unknown as OpenApiDoc);

describe('docs/api.md', () => {
  it('holds the reference rendered from the OpenAPI document (npm run docs:api)', () => {
    const section = /<!-- api-reference:start[^>]*-->\n([\s\S]*?)\n<!-- api-reference:end -->/.exec(page);
    expect(section, 'docs/api.md has an api-reference section').not.toBeNull();
    const documented = section![1]!.split('\n');
    // Line by line, so a failure names the first line that differs.
    for (const [i, line] of rendered.split('\n').entries()) expect(documented[i], `line ${i + 1} of the generated section`).toBe(line);
    expect(documented.length).toBe(rendered.split('\n').length);
    expect(withReference(page, rendered)).toBe(page);
  });

  it('names every route with its summary, query parameters and body fields', () => {
    for (const r of ROUTES) expect(rendered, `${r.method} ${r.path}`).toContain(`### \`${r.method.toUpperCase()} ${r.path}\``);
    expect(rendered).toContain(`${ROUTES.length} routes.`);
    // /v1/batches: its query (from batchParamsSchema) and the by-reference JSON body.
    const batches = rendered.slice(rendered.indexOf('### `POST /v1/batches`'), rendered.indexOf('### `GET /v1/batches`'));
    expect(batches).toMatch(/^\| `model` \| /m);
    expect(batches).toMatch(/^\| `input` \| /m);
    expect(batches).toContain('Answers: 202;');
    // /v2 routes answer the protocol's error form, /v1 routes the platform's.
    const v2 = rendered.slice(rendered.indexOf('### `GET /v2/health/live`'));
    expect(v2.slice(0, v2.indexOf('\n###', 5))).toContain('4xx `{ "error": "..." }`');
    expect(rendered.slice(0, rendered.indexOf('### `GET /v1/models`'))).toContain('4xx `{ "error": { "code", "message" } }`');
    expect(() => withReference('# no section\n', rendered)).toThrow(/has no <!-- api-reference:start -->/);
    expect(API_SECTION.test(page)).toBe(true);
  });
});
