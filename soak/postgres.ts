import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { freePort, run, waitUntil } from './proc.js';

/**
 * A private PostgreSQL cluster for one soak run: initdb into a temp dir owned by the `postgres` OS user
 * (initdb refuses to run as root), listening on a free port on 127.0.0.1 only, with fsync off (a
 * PostgreSQL crash is simulated, an OS crash is not) but synchronous commit on. The machine's shared server on 5432 is never touched.
 */
export class PrivatePostgres {
  private constructor(
    readonly binDir: string,
    readonly root: string,
    readonly port: number,
    readonly database: string,
  ) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${this.database}`;
  }

  private get dataDir(): string {
    return path.join(this.root, 'data');
  }

  private get logFile(): string {
    return path.join(this.root, 'postgres.log');
  }

  static async create(parentDir: string, database: string): Promise<PrivatePostgres> {
    const binDir = findBinDir();
    const root = path.join(parentDir, 'postgres');
    mkdirSync(root, { recursive: true });
    const owner = await osUser('postgres');
    if (process.getuid?.() === 0) {
      chownSync(root, owner.uid, owner.gid);
      // The postgres user must be able to traverse the (0700) parent temp dir to reach its own.
      chmodSync(parentDir, 0o711);
    }
    const instance = new PrivatePostgres(binDir, root, await freePort(), database);
    const init = await instance.asOwner(
      path.join(binDir, 'initdb'),
      ['-D', instance.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'],
      60_000,
    );
    if (init.code !== 0) throw new Error(`initdb failed: ${init.stderr.trim() || init.stdout.trim()}`);
    await instance.start();
    const client = new pg.Client({ connectionString: instance.adminUrl, connectionTimeoutMillis: 5_000 });
    await client.connect();
    try {
      await client.query(`create database ${database}`);
    } finally {
      await client.end();
    }
    return instance;
  }

  private get adminUrl(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  async start(): Promise<void> {
    const options = [
      `-p ${this.port}`,
      `-k ${this.root}`,
      '-c listen_addresses=127.0.0.1',
      // fsync and full-page writes only protect against an OS crash or power loss, which the soak does
      // not simulate. synchronous_commit stays ON: with it off, a PostgreSQL crash (our restart fault)
      // loses commits already acknowledged, which would be the harness's fault, not the ledger's.
      '-c fsync=off',
      '-c full_page_writes=off',
      '-c max_connections=200',
    ].join(' ');
    const result = await this.asOwner(
      path.join(this.binDir, 'pg_ctl'),
      ['-D', this.dataDir, '-o', options, '-l', this.logFile, '-w', '-t', '60', 'start'],
      70_000,
    );
    if (result.code !== 0)
      throw new Error(`pg_ctl start failed: ${result.stderr.trim() || result.stdout.trim()}`);
    const ready = await waitUntil(() => this.ping(), { timeoutMs: 30_000, intervalMs: 200 });
    if (!ready) throw new Error('private PostgreSQL did not accept connections within 30 s');
  }

  /** mode immediate = a crash (recovery from WAL on the next start); fast = a clean shutdown. */
  async stop(mode: 'immediate' | 'fast'): Promise<void> {
    if (!existsSync(path.join(this.dataDir, 'postmaster.pid'))) return;
    const result = await this.asOwner(
      path.join(this.binDir, 'pg_ctl'),
      ['-D', this.dataDir, '-m', mode, '-w', '-t', '60', 'stop'],
      70_000,
    );
    if (result.code !== 0)
      throw new Error(`pg_ctl stop failed: ${result.stderr.trim() || result.stdout.trim()}`);
  }

  async ping(): Promise<boolean> {
    const client = new pg.Client({ connectionString: this.adminUrl, connectionTimeoutMillis: 2_000 });
    try {
      await client.connect();
      await client.query('select 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private asOwner(command: string, args: string[], timeoutMs: number) {
    if (process.getuid?.() !== 0) return run(command, args, { timeoutMs });
    return run('runuser', ['-u', 'postgres', '--', command, ...args], { timeoutMs, cwd: this.root });
  }
}

function findBinDir(): string {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) throw new Error(`no PostgreSQL server binaries under ${base}`);
  const versions = readdirSync(base)
    .filter((v) => /^\d+$/.test(v) && existsSync(path.join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) throw new Error(`no initdb under ${base}/*/bin`);
  return path.join(base, versions[0]!, 'bin');
}

async function osUser(name: string): Promise<{ uid: number; gid: number }> {
  const uid = await run('id', ['-u', name], { timeoutMs: 5_000 });
  const gid = await run('id', ['-g', name], { timeoutMs: 5_000 });
  if (uid.code !== 0 || gid.code !== 0) throw new Error(`no OS user ${name} to run PostgreSQL as`);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}
