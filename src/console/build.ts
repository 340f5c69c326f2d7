import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { buildConsoleBundle, PREBUILT_DIR } from './assets.js';

/**
 * `npm run build` step: writes the console's bundle to dist/console-assets, where the compiled app
 * serves it from (src/console/assets.ts). Run from the compiled tree so PREBUILT_DIR is dist's.
 */
const outdir = path.resolve(process.argv[2] ?? PREBUILT_DIR);
rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const files = await buildConsoleBundle({ outdir });
process.stdout.write(
  `console bundle: ${files.map((f) => `${f.name} (${f.body.length} B)`).join(', ')} -> ${outdir}\n`,
);
