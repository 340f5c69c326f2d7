import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchSection, describeMachine, writeSections } from './report.js';

/**
 * `npm run bench -- <name>` runs bench/<name>.ts; `npm run bench` (or `-- all`) runs every suite.
 * A suite exports `run(): Promise<BenchSection>`; only the sections that ran are rewritten in
 * docs/benchmarks.md.
 */
const here = path.dirname(fileURLToPath(import.meta.url));
const NOT_SUITES = new Set(['main', 'report']);
const SUITE_NAME = /^[a-z][a-z0-9-]{0,39}$/;

function availableSuites(): string[] {
  return readdirSync(here)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -3))
    .filter((n) => SUITE_NAME.test(n) && !NOT_SUITES.has(n))
    .sort();
}

async function main(): Promise<number> {
  const requested = process.argv.slice(2).filter((a) => a !== '--');
  const suites = availableSuites();
  const names = requested.length === 0 || requested.includes('all') ? suites : requested;
  const unknown = names.filter((n) => !suites.includes(n));
  if (unknown.length > 0) {
    console.error(`unknown benchmark ${unknown.join(', ')}; available: ${suites.join(', ') || '(none)'}`);
    return 2;
  }
  const sections: BenchSection[] = [];
  let failed = false;
  for (const name of names) {
    console.log(`bench ${name}: running`);
    try {
      const suite = (await import(`./${name}.js`)) as { run?: () => Promise<BenchSection> };
      if (typeof suite.run !== 'function') throw new Error(`bench/${name}.ts does not export run()`);
      const section = await suite.run();
      if (section.name !== name) throw new Error(`bench/${name}.ts returned section "${section.name}"`);
      sections.push(section);
      console.log(`\n## ${section.title}\n\n${section.markdown}\n`);
    } catch (error) {
      failed = true;
      console.error(`bench ${name} failed:`, error);
    }
  }
  if (sections.length > 0) {
    const target = path.join(here, '..', 'docs', 'benchmarks.md');
    writeSections(target, await describeMachine(), sections);
    console.log(`wrote ${sections.map((s) => s.name).join(', ')} to ${path.relative(process.cwd(), target)}`);
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
