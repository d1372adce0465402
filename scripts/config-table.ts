// Writes core/config.ts's configuration table into docs/operations.md, between its config-table
// markers: `npm run docs:config` after adding or changing a key (the config unit test fails until then).
import fs from 'node:fs';
import { configTable } from '../core/config.ts';

const file = new URL('../docs/operations.md', import.meta.url);
const page = fs.readFileSync(file, 'utf8');
const section = /(<!-- config-table:start[^>]*-->\n)[\s\S]*?(<!-- config-table:end -->)/;
if (!section.test(page)) throw new Error('docs/operations.md has no <!-- config-table:start --> ... <!-- config-table:end --> section');
fs.writeFileSync(
  file,
  page.replace(section, (_m, start: string, end: string) => `${start}${configTable()}\n${end}`),
);
