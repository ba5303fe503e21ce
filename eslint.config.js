import { readFileSync } from 'node:fs';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/*
 * The floors of DESIGN.md §2, bottom up: an import may only go down (or stay within its folder).
 * docs/architecture.md draws them; this rule keeps that picture true.
 */
const FLOORS = [
  ['host'],
  ['store', 'protocol'],
  ['net', 'image'],
  ['backend'],
  ['holder', 'control'],
  ['recovery', 'setup', 'health', 'dashboard', 'faults'],
  ['lib', 'cli'],
];
/** Beyond the floors: the client half stays small and fast to load (no backend, net or image). */
const ALSO_FORBIDDEN = { holder: ['control'], control: ['holder', 'net', 'image', 'backend'] };

const floorRules = FLOORS.flatMap((floor, level) =>
  floor.map((folder) => {
    const above = [...FLOORS.slice(level + 1).flat(), ...(ALSO_FORBIDDEN[folder] ?? [])];
    return {
      files: [`src/${folder}/**/*.ts`],
      rules: {
        'no-restricted-imports': [
          'error',
          {
            patterns: [
              {
                regex: `^(\\.\\./)+(${above.join('|')})/`,
                message: `src/${folder} sits below ${above.join(', ')} (DESIGN.md §2 floors, docs/architecture.md): move the shared piece down instead.`,
              },
            ],
          },
        ],
      },
    };
  }),
);

/*
 * Outside src/backend/ no code names a backend kind: what differs per backend is behind the
 * Backend and BackendSetup interfaces, and the registry (store/backend-kinds.ts) is the one list
 * of names. The names are read from that list, so a new backend is covered without editing this.
 */
const registry = readFileSync(new URL('./src/store/backend-kinds.ts', import.meta.url), 'utf8');
const kinds = /export const BACKENDS = \[([^\]]*)\]/.exec(registry)?.[1]?.match(/'[a-z0-9-]+'/g)?.map((quoted) => quoted.slice(1, -1));
if (!kinds?.length) throw new Error('eslint.config.js: cannot read the BACKENDS list of src/store/backend-kinds.ts');
const backendKindRule = {
  files: ['src/**/*.ts'],
  ignores: ['src/backend/**', 'src/store/backend-kinds.ts'],
  rules: {
    'no-restricted-syntax': [
      'error',
      {
        selector: `Literal[value=/^(${kinds.join('|')})$/]`,
        message: 'a backend kind is named only in src/backend/ and the registry (store/backend-kinds.ts): put the difference behind Backend or BackendSetup, or a trait in the registry.',
      },
    ],
  },
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '**/*.mjs', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // expect.stringContaining() and friends are typed `any` by vitest.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
  ...floorRules,
  backendKindRule,
);
