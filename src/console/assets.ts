import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The finance console's browser code (console/src, TypeScript + Preact + uPlot) as the files the app
 * serves. Nothing built is committed: from the source tree (`npm start`, tests) the bundle is built in
 * memory with esbuild once per process; `npm run build` writes the same files to dist/console-assets,
 * which a compiled app (dist/src/console/assets.js) serves as they are.
 */
export interface ConsoleAsset {
  /** File name as served under /console/assets/ (content-hashed, so it may be cached forever). */
  name: string;
  contentType: string;
  body: Buffer;
}

export interface ConsoleAssets {
  /** The entry script and stylesheet, by role. */
  script: ConsoleAsset;
  stylesheet: ConsoleAsset;
  byName: ReadonlyMap<string, ConsoleAsset>;
  /** Where they came from: built in memory now, or read from a build directory. */
  source: 'memory' | 'prebuilt';
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** The browser sources, <repo>/console: two levels up from src/console, three from dist/src/console. */
const SOURCE_DIR =
  [path.resolve(here, '../../console'), path.resolve(here, '../../../console')].find((dir) =>
    existsSync(path.join(dir, 'tsconfig.json')),
  ) ?? path.resolve(here, '../../console');
/** `npm run build` output beside the compiled app: dist/console-assets. */
export const PREBUILT_DIR = path.resolve(here, '../../console-assets');
const ENTRY = 'src/main.tsx';

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** Builds the bundle with esbuild into memory (or into `outdir` when given: `npm run build`). */
export async function buildConsoleBundle(
  options: { outdir?: string; minify?: boolean } = {},
): Promise<ConsoleAsset[]> {
  // Imported lazily: a compiled app serving prebuilt files never loads the bundler.
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    absWorkingDir: SOURCE_DIR,
    entryPoints: { app: ENTRY },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110', 'firefox115', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: options.minify ?? true,
    sourcemap: 'linked',
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    outdir: options.outdir ?? path.join(SOURCE_DIR, 'out'),
    write: options.outdir !== undefined,
    metafile: false,
    legalComments: 'linked',
    logLevel: 'silent',
  });
  if (result.errors.length > 0) {
    throw new Error(`console bundle failed: ${result.errors.map((e) => e.text).join('; ')}`);
  }
  if (options.outdir !== undefined) return readAssetDir(options.outdir);
  return (result.outputFiles ?? []).map((file) =>
    asset(path.basename(file.path), Buffer.from(file.contents)),
  );
}

function asset(name: string, body: Buffer): ConsoleAsset {
  const ext = path.extname(name);
  return { name, body, contentType: CONTENT_TYPES[ext] ?? 'application/octet-stream' };
}

function readAssetDir(dir: string): ConsoleAsset[] {
  return readdirSync(dir)
    .filter((name) => Object.hasOwn(CONTENT_TYPES, path.extname(name)) || name.endsWith('.LEGAL.txt'))
    .map((name) => asset(name, readFileSync(path.join(dir, name))));
}

function assemble(files: ConsoleAsset[], source: ConsoleAssets['source']): ConsoleAssets {
  const byName = new Map(files.map((f) => [f.name, f]));
  const script = files.find((f) => /^app-[A-Za-z0-9]+\.js$/.test(f.name));
  const stylesheet = files.find((f) => /^app-[A-Za-z0-9]+\.css$/.test(f.name));
  if (!script || !stylesheet) {
    throw new Error(`console bundle is incomplete: ${files.map((f) => f.name).join(', ') || 'no files'}`);
  }
  return { script, stylesheet, byName, source };
}

let loading: Promise<ConsoleAssets> | undefined;

/**
 * The console's files, loaded once per process: the prebuilt ones when this code runs compiled and
 * `npm run build` wrote them, otherwise built in memory (about a second on this machine). A failed
 * build is not cached, so a fixed source is picked up by the next request.
 */
export function loadConsoleAssets(): Promise<ConsoleAssets> {
  loading ??= (async () => {
    const compiled = import.meta.url.endsWith('.js');
    if (compiled && existsSync(PREBUILT_DIR)) return assemble(readAssetDir(PREBUILT_DIR), 'prebuilt');
    return assemble(await buildConsoleBundle(), 'memory');
  })();
  loading.catch(() => {
    loading = undefined;
  });
  return loading;
}

/** A strong ETag for a body. */
export function etagOf(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
}
