// Writes core/config.ts's configuration table into README.md, between its config-table markers:
// `npm run docs:config` after adding or changing a key (the config unit test fails until then).
import fs from 'node:fs';
import { configTable } from '../core/config.ts';

const file = new URL('../README.md', import.meta.url);
const readme = fs.readFileSync(file, 'utf8');
const section = /(<!-- config-table:start[^>]*-->\n)[\s\S]*?(<!-- config-table:end -->)/;
if (!section.test(readme)) throw new Error('README.md has no <!-- config-table:start --> ... <!-- config-table:end --> section');
fs.writeFileSync(
  file,
  readme.replace(section, (_m, start: string, end: string) => `${start}${configTable()}\n${end}`),
);
