// docs/reliability.md is the failure matrix whose row ids (L1, F14, G1, ...) tests carry in their
// titles. This keeps the two in step: every id a test title uses has a row on the page, every row
// lists the files whose titles carry its id (or says plainly that nothing covers it), and every
// test file the page names exists. Titles are read with the TypeScript parser, so `describe.each`
// and titles split over lines count as well.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const page = readFileSync(join(root, 'docs', 'reliability.md'), 'utf8');

/** A row id as tests write it: one capital letter and one or two digits, a word of its own. */
const idPattern = /\b[A-Z]\d{1,2}\b/g;

/** Test files under test/, as paths from the repository root with forward slashes. */
const testFiles = readdirSync(join(root, 'test'), { recursive: true, encoding: 'utf8' })
  .map((f) => `test/${f.split('\\').join('/')}`)
  .filter((f) => f.endsWith('.test.ts'))
  .sort();

const runners = new Set(['describe', 'it', 'test']);

/** The identifier a callee starts from: `it` for `it`, `it.each([...])`, `describe.skip`, ... */
function runnerOf(callee: ts.Expression): string | undefined {
  let node: ts.Expression = callee;
  for (;;) {
    if (ts.isIdentifier(node)) return runners.has(node.text) ? node.text : undefined;
    if (ts.isPropertyAccessExpression(node)) node = node.expression;
    else if (ts.isCallExpression(node)) node = node.expression;
    else return undefined;
  }
}

/** The titles of every describe/it/test call in a file (template literals as written). */
function titlesOf(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(join(root, file), 'utf8'), ts.ScriptTarget.Latest, true);
  const titles: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && runnerOf(node.expression) !== undefined) {
      const first = node.arguments[0];
      if (first !== undefined && (ts.isStringLiteral(first) || ts.isNoSubstitutionTemplateLiteral(first))) titles.push(first.text);
      else if (first !== undefined && ts.isTemplateExpression(first)) titles.push(first.getText(source));
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return titles;
}

/** Each id used in a test title, with the files whose titles use it. */
function idsInTests(): Map<string, Set<string>> {
  const ids = new Map<string, Set<string>>();
  for (const file of testFiles) {
    for (const title of titlesOf(file)) {
      for (const [id] of title.matchAll(idPattern)) {
        if (!ids.has(id)) ids.set(id, new Set());
        ids.get(id)!.add(file);
      }
    }
  }
  return ids;
}

/** The page's matrix rows (`| F14 | ... |`): id and the whole row's text. */
const rows = new Map([...page.matchAll(/^\| ([A-Z]\d{1,2}) \|(.*)$/gm)].map((m) => [m[1]!, m[2]!] as const));

/** Paths under test/ the page names, in code spans or links. */
const namedFiles = [...new Set([...page.matchAll(/\btest\/[\w./*-]+\.(?:ts|mjs)\b/g)].map((m) => m[0]))].filter((f) => !f.includes('*'));

describe('docs/reliability.md and the test titles', () => {
  it('reads ids from the test titles (the reader finds the known tagged files)', () => {
    const ids = idsInTests();
    // A guard on the reader itself: if the parser stopped finding titles, every check below would pass vacuously.
    expect(ids.get('F14')).toContain('test/integration/redis/flow-loss.test.ts');
    expect(ids.get('C1')).toContain('test/service/probes.test.ts'); // a describe.each title
    expect(ids.get('L6')).toContain('test/unit/circuit/circuit-breaker.test.ts'); // an it.each title on its own line
  });

  it('has a row for every id a test title uses', () => {
    const missing = [...idsInTests().keys()].filter((id) => !rows.has(id)).sort();
    expect(missing, 'ids used in test titles with no row in docs/reliability.md').toEqual([]);
  });

  it('lists, in each row, every test file whose titles carry its id', () => {
    const unlisted: string[] = [];
    for (const [id, files] of idsInTests()) {
      const row = rows.get(id) ?? '';
      for (const file of files) if (!row.includes(`\`${file}\``)) unlisted.push(`${id}: ${file}`);
    }
    expect(unlisted.sort(), 'tagged test files a row does not name').toEqual([]);
  });

  it('names a test file in every row, or says it is not covered yet', () => {
    const bare = [...rows].filter(([, text]) => !/`test\/[^`]+`/.test(text) && !text.includes('not covered yet')).map(([id]) => id);
    expect(bare).toEqual([]);
  });

  it('names only test files that exist', () => {
    expect(namedFiles.length).toBeGreaterThan(20);
    expect(namedFiles.filter((f) => !existsSync(join(root, f)))).toEqual([]);
  });
});
