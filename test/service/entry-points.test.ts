// The assembled services of test/service/ stand for what a user can build, so they may import
// bulwark only through its public entry points: the source file behind each subpath of
// package.json "exports" (tsup.config.ts `entries`), never a module behind them. A deep import
// would let a scenario pass on something a user cannot reach. This reads every import and export
// specifier of every file here and checks where it lands.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { entries } from '../../tsup.config.js';

const root = resolve(import.meta.dirname, '../..');
const here = import.meta.dirname;

/** Every .ts file under test/service/ but this one (whose examples are strings), as an absolute path. */
const files = readdirSync(here, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.ts'))
  .map((f) => join(here, f))
  .filter((f) => f !== import.meta.filename);

/** The module specifiers a source text imports or re-exports, static and dynamic. */
function specifiersOf(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/\b(?:from|import)\s*\(?\s*(['"])([^'"]+)\1/g)) found.push(m[2]!);
  return found;
}

/** The repository paths (with forward slashes, `.ts`) of the source files the package exports. */
const entryFiles = new Set<string>(Object.values(entries));

/** Imports from `file` that land in src/ on a file that is not an entry point: `file: specifier`. */
function deepImports(file: string, text: string): string[] {
  const bad: string[] = [];
  for (const spec of specifiersOf(text)) {
    if (!spec.startsWith('.')) continue;
    const target = relative(root, resolve(dirname(file), spec)).split('\\').join('/');
    if (!target.startsWith('src/')) continue;
    if (!entryFiles.has(target.replace(/\.js$/, '.ts'))) bad.push(`${relative(root, file)}: ${spec}`);
  }
  return bad;
}

describe('test/service/ builds its services from public entry points only', () => {
  it('reads the specifiers it checks (static, type-only, dynamic and re-exports)', () => {
    expect(
      specifiersOf(
        "import a from 'x';\nimport type { B } from \"../../src/index.js\";\nexport { c } from './c.js';\nconst d = await import('../d.js');",
      ),
    ).toEqual(['x', '../../src/index.js', './c.js', '../d.js']);
    // A deep import is caught; an entry point is not.
    const support = join(here, 'support', 'parts.ts');
    expect(deepImports(support, "import { gcra } from '../../../src/ratelimit/algorithms/gcra.js';")).toHaveLength(1);
    expect(deepImports(support, "import { redisStore } from '../../../src/ratelimit/redis/index.js';")).toEqual([]);
  });

  it('imports nothing from src/ but the files behind package.json "exports"', () => {
    expect(files.length).toBeGreaterThan(10);
    const exportsField = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, unknown> }).exports;
    for (const name of Object.keys(entries)) expect(exportsField, name).toHaveProperty(name === 'index' ? '.' : `./${name}`);
    const bad = files.flatMap((file) => deepImports(file, readFileSync(file, 'utf8')));
    expect(bad, 'imports of bulwark internals').toEqual([]);
  });
});
