/**
 * A child process for the DATA_DIR lock tests: `lockHolder.ts <dataDir> <role> <mode> [startAtMs]`.
 * hold: takes the lock, prints `locked <pid>`, waits to be killed. race: at startAtMs tries once,
 * prints `won` or `busy`, then holds (won) or exits. exit: takes the lock and exits normally.
 */
import { acquireDataDirLock, DataDirBusyError } from '../../../src/db/dataDirLock.js';

const [dataDir, role, mode, startAt] = process.argv.slice(2);
if (!dataDir || (role !== 'app' && role !== 'cli')) throw new Error('usage: lockHolder.ts DIR app|cli MODE');

const take = () => acquireDataDirLock(dataDir, { role, command: role === 'app' ? 'start' : 'verify' });

if (mode === 'hold') {
  take();
  process.stdout.write(`locked ${process.pid}\n`);
  setInterval(() => undefined, 60_000);
} else if (mode === 'race') {
  const wait = Number(startAt) - Date.now();
  setTimeout(
    () => {
      try {
        take();
        process.stdout.write('won\n');
        setInterval(() => undefined, 60_000);
      } catch (error) {
        process.stdout.write(error instanceof DataDirBusyError ? 'busy\n' : `error ${String(error)}\n`);
        process.exit(0);
      }
    },
    Math.max(0, wait),
  );
} else if (mode === 'exit') {
  take();
  process.stdout.write('locked\n');
  process.exitCode = 0;
} else {
  throw new Error(`unknown mode ${mode}`);
}
