import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * The dependency rule of docs/architecture.md, read off the import graph of src/ (every `import`,
 * `import type`, `export ... from` and `import()` of a relative path): generic data structures (lib)
 * import nothing of ours; the domain is pure and depends on nothing of ours outside it but lib; the read side (projections) and the write side (commands) never import
 * each other; shared response views (contracts) depend only on the domain.
 */

const SRC = resolve(import.meta.dirname, '../../src');

/** Top-level area of a file under src/ ('main.ts' and 'server.ts' are the composition root). */
function areaOf(file: string): string {
  const rel = relative(SRC, file);
  const first = rel.split('/')[0]!;
  return first.endsWith('.ts') ? '(root)' : first;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

interface Import {
  from: string;
  to: string;
}

/** Every relative import of every source file, resolved to the imported file. */
function importGraph(): Import[] {
  const out: Import[] = [];
  for (const file of sourceFiles(SRC)) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const { fileName } of info.importedFiles) {
      if (!fileName.startsWith('.')) continue;
      out.push({ from: file, to: resolve(dirname(file), fileName.replace(/\.js$/, '.ts')) });
    }
  }
  return out;
}

/** Which areas each area may import (itself always). Areas not listed here are not restricted. */
const ALLOWED: Record<string, readonly string[]> = {
  // Generic, pure data structures (src/lib) are the one thing the domain may use from outside itself.
  lib: [],
  domain: ['lib'],
  contracts: ['domain', 'lib'],
};
/** Pairs of areas that must not import each other, in either direction. */
const APART: ReadonlyArray<readonly [string, string]> = [['projections', 'commands']];

function describeImport(i: Import): string {
  return `${relative(SRC, i.from)} imports ${relative(SRC, i.to)}`;
}

describe('dependency rule (import graph of src/)', () => {
  const graph = importGraph();

  it('reads a real graph', () => {
    // A parser that finds nothing would pass every rule below.
    expect(graph.length).toBeGreaterThan(200);
    expect(graph.some((i) => areaOf(i.from) === 'projections' && areaOf(i.to) === 'domain')).toBe(true);
  });

  it('every relative import names an existing file', () => {
    expect(graph.filter((i) => !existsSync(i.to)).map(describeImport)).toEqual([]);
  });

  for (const [area, allowed] of Object.entries(ALLOWED)) {
    it(`src/${area} imports only ${allowed.length ? allowed.map((a) => `src/${a}`).join(', ') : 'itself'}`, () => {
      const bad = graph.filter(
        (i) => areaOf(i.from) === area && areaOf(i.to) !== area && !allowed.includes(areaOf(i.to)),
      );
      expect(bad.map(describeImport)).toEqual([]);
    });
  }

  for (const [a, b] of APART) {
    it(`src/${a} and src/${b} do not import each other`, () => {
      const bad = graph.filter(
        (i) => (areaOf(i.from) === a && areaOf(i.to) === b) || (areaOf(i.from) === b && areaOf(i.to) === a),
      );
      expect(bad.map(describeImport)).toEqual([]);
    });
  }
});
