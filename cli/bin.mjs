#!/usr/bin/env node
// Entry of the `modelq` command (package.json "bin"): registers tsx so the TypeScript sources run
// as they are, from a plain `npm ci` with no build step, then hands over to cli/main.ts.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
