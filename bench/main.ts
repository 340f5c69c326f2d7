import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchSection, describeMachine, writeSections } from './report.js';

/**
 * `npm run bench -- <name>` runs bench/<name>.ts; `npm run bench` (or `-- all`) runs every suite.
 * A suite exports `run(): Promise<BenchSection>`; only the sections that ran are rewritten in
 * docs/benchmarks.md.
 *
 * Each suite runs in a process of its own (this script again, with `--suite`), so one suite's heap,
 * peak RSS, JIT state and leftover timers cannot colour the next one's numbers: the reconciliation
 * suite reports its process's peak RSS, which in a shared process would be the largest of every
 * suite that ran before it.
 */
const here = path.dirname(fileURLToPath(import.meta.url));
const NOT_SUITES = new Set(['main', 'report']);
const SUITE_NAME = /^[a-z][a-z0-9-]{0,39}$/;
/** A suite that hangs must not hold the run forever (the longest, projections at 1M events, takes minutes). */
const SUITE_TIMEOUT_MS = 30 * 60_000;

function availableSuites(): string[] {
  return readdirSync(here)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -3))
    .filter((n) => SUITE_NAME.test(n) && !NOT_SUITES.has(n))
    .sort();
}

/** Child mode: run one suite and write its section as JSON to `outFile`. */
async function runSuite(name: string, outFile: string): Promise<number> {
  const suite = (await import(`./${name}.js`)) as { run?: () => Promise<BenchSection> };
  if (typeof suite.run !== 'function') throw new Error(`bench/${name}.ts does not export run()`);
  const section = await suite.run();
  if (section.name !== name) throw new Error(`bench/${name}.ts returned section "${section.name}"`);
  writeFileSync(outFile, JSON.stringify(section));
  return 0;
}

/** Runs one suite in a fresh process with this process's Node flags (the tsx loader among them). */
function spawnSuite(name: string, outFile: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), '--suite', name, '--out', outFile],
      { stdio: 'inherit' },
    );
    const timer = setTimeout(() => child.kill('SIGKILL'), SUITE_TIMEOUT_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

async function main(argv: string[]): Promise<number> {
  const suiteFlag = argv.indexOf('--suite');
  if (suiteFlag >= 0) {
    const name = argv[suiteFlag + 1];
    const outFile = argv[argv.indexOf('--out') + 1];
    if (!name || !outFile) throw new Error('usage: main.ts --suite <name> --out <file>');
    return runSuite(name, outFile);
  }

  const requested = argv.filter((a) => a !== '--');
  const suites = availableSuites();
  const names = requested.length === 0 || requested.includes('all') ? suites : requested;
  const unknown = names.filter((n) => !suites.includes(n));
  if (unknown.length > 0) {
    console.error(`unknown benchmark ${unknown.join(', ')}; available: ${suites.join(', ') || '(none)'}`);
    return 2;
  }
  const sections: BenchSection[] = [];
  let failed = false;
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'ledger-bench-'));
  try {
    for (const name of names) {
      console.log(`bench ${name}: running`);
      const outFile = path.join(scratch, `${name}.json`);
      const code = await spawnSuite(name, outFile);
      if (code !== 0) {
        failed = true;
        console.error(`bench ${name} failed (exit ${code})`);
        continue;
      }
      const section = JSON.parse(readFileSync(outFile, 'utf8')) as BenchSection;
      sections.push(section);
      console.log(`\n## ${section.title}\n\n${section.markdown}\n`);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  if (sections.length > 0) {
    const target = path.join(here, '..', 'docs', 'benchmarks.md');
    writeSections(target, await describeMachine(), sections);
    console.log(`wrote ${sections.map((s) => s.name).join(', ')} to ${path.relative(process.cwd(), target)}`);
  }
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
