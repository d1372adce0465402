// ESLint (flat config) with typescript-eslint: catches real problems (unused code, promises nobody
// awaits or catches, misused async callbacks) without style rules; layout and spacing are the
// formatter's business (npm run format), layering and cycles dependency-cruiser's (npm run deps).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'coverage/**', '.bench/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Type-aware: a promise that is neither awaited, returned, caught nor marked `void` loses its error.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      // Casts at the edges (JSON, protobuf, worker messages) are deliberate and reviewed; `any` is a smell, not an error.
      '@typescript-eslint/no-explicit-any': 'warn',
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  {
    files: ['**/*.mjs', '**/*.js', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  // The dashboard's pages run in the browser.
  { files: ['dashboard/ui/**/*.js'], languageOptions: { globals: { ...globals.browser } } },
);
