// Every link in README.md, CONTRIBUTING.md and docs/**/*.md leads somewhere: a relative link to
// a file that exists, and an anchor to a heading on the page it names. The front page links to
// every guide, so any area is one click from the top.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const guides = readdirSync(join(root, 'docs'), { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.md'))
  .map((f) => `docs/${f.split('\\').join('/')}`)
  .sort();
const pages = ['README.md', 'CONTRIBUTING.md', ...guides];

/** Markdown text outside fenced code blocks (a link inside an example is code, not a link). */
function prose(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, '');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(page: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const [, heading] of prose(readFileSync(join(root, page), 'utf8')).matchAll(/^#{1,6} (.+)$/gm)) {
    const slug = heading!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\- _]/gu, '')
      .replaceAll(' ', '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

function linksOf(page: string): string[] {
  return [...prose(readFileSync(join(root, page), 'utf8')).matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
}

describe('links in the docs', () => {
  it.each(pages)('%s: every relative link and anchor resolves', (page) => {
    const broken: string[] = [];
    for (const link of linksOf(page)) {
      if (/^[a-z]+:/i.test(link)) continue; // http(s), mailto: not checked here
      const [path, anchor] = link.split('#') as [string, string | undefined];
      const target = path === '' ? page : relative(root, join(root, dirname(page), path));
      if (!existsSync(join(root, target))) {
        broken.push(`${link} (no file ${target})`);
        continue;
      }
      if (anchor !== undefined && target.endsWith('.md') && !anchorsOf(target).has(anchor)) broken.push(`${link} (no heading #${anchor} in ${target})`);
    }
    expect(broken).toEqual([]);
  });

  it('the front page links to every guide', () => {
    const linked = new Set(linksOf('README.md').map((l) => l.split('#')[0]));
    expect(guides.filter((g) => !linked.has(g))).toEqual([]);
  });
});
