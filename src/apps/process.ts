import { type ChildProcess, spawn } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The operating-system side of running an app: processes, their identity
 * across restarts of Pier, ports. Every app process carries the variable
 * `PIER_APP_RUN=<node id>/<app name>/<run id>`, so a Pier that was killed
 * finds what it left running (and its children) in /proc and adopts the run
 * it recorded or ends any other: never two processes of one app.
 */
export const RUN_MARKER = 'PIER_APP_RUN';

/** A running process as /proc shows it. */
interface ProcInfo {
  state: string;
  pgid: number;
  /** Start time in clock ticks since boot: with the pid, who the process is. */
  startTicks: string;
}

async function procStat(pid: number): Promise<ProcInfo | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields are counted after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], pgid: Number(fields[2]), startTicks: fields[19] };
  } catch {
    return undefined;
  }
}

/** The start time of a live process (not a zombie), or undefined when it is gone. */
export async function processStart(pid: number): Promise<string | undefined> {
  const info = await procStat(pid);
  return info && info.state !== 'Z' && info.state !== 'X' ? info.startTicks : undefined;
}

/** Whether `pid` is still the process that started at `startTicks`. */
export async function sameProcessAlive(pid: number, startTicks: string | undefined): Promise<boolean> {
  const start = await processStart(pid);
  return start !== undefined && (startTicks === undefined || start === startTicks);
}

/** A process carrying the run marker: its pid, process group and marker value. */
interface MarkedProcess {
  pid: number;
  pgid: number;
  marker: string;
}

/** Every live process whose marker starts with `prefix` (e.g. `<node id>/`). */
export async function findMarkedProcesses(prefix: string): Promise<MarkedProcess[]> {
  const found: MarkedProcess[] = [];
  const needle = `${RUN_MARKER}=${prefix}`;
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const environ = await readFile(`/proc/${pid}/environ`, 'latin1').catch(() => '');
    const variable = environ.split('\0').find((item) => item.startsWith(needle));
    if (!variable) continue;
    const info = await procStat(pid);
    if (!info || info.state === 'Z') continue;
    found.push({ pid, pgid: info.pgid, marker: variable.slice(RUN_MARKER.length + 1) });
  }
  return found;
}

/** Sends `signal` to the process group `pgid` (an app and its children); gone already is fine. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** SIGTERM to the group, then SIGKILL after `graceMs` if its leader is still there. */
export async function stopGroup(pgid: number, startTicks: string | undefined, graceMs = 5000): Promise<void> {
  signalGroup(pgid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!(await sameProcessAlive(pgid, startTicks))) break;
    await sleep(50);
  }
  // Children that ignored SIGTERM go too.
  signalGroup(pgid, 'SIGKILL');
}

/** Ends every app process a Pier of `nodeId` left behind (for `pier down` after a kill). */
export async function stopMarkedProcesses(nodeId: string): Promise<number> {
  const found = await findMarkedProcesses(`${nodeId}/`);
  for (const pgid of new Set(found.map((p) => p.pgid))) signalGroup(pgid, 'SIGKILL');
  return found.length;
}

/** Whether `port` can be listened on (on every interface) right now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** `preferred` if it is free (an app keeps its port across restarts), else a free port the system picks. */
export async function freePort(preferred?: number): Promise<number> {
  if (preferred && (await portFree(preferred))) return preferred;
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ port: 0, exclusive: true }, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Whether something accepts connections on 127.0.0.1:`port`. */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** Who an app's process runs as. */
export interface RunAs {
  uid: number;
  gid: number;
  name: string;
}

/**
 * The account a deployed app runs as. Pier running as a normal user: that
 * user (it cannot switch). Pier running as root: the owner of the app's
 * directory, or `nobody` when root owns it — never root (an app could take
 * over the machine) and never the `pier` account (it owns every Postgres
 * data dir and the store, so an app would get past all of Pier's checks).
 */
export async function runAsFor(dir: string): Promise<RunAs | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const owner = await stat(dir);
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  const users = passwd
    .split('\n')
    .map((line) => line.split(':'))
    .filter((fields) => fields.length >= 4);
  const byUid = users.find((fields) => Number(fields[2]) === owner.uid);
  if (owner.uid !== 0 && byUid?.[0] !== 'pier') {
    return { uid: owner.uid, gid: owner.gid, name: byUid?.[0] ?? String(owner.uid) };
  }
  const nobody = users.find((fields) => fields[0] === 'nobody');
  return { uid: Number(nobody?.[2] ?? 65534), gid: Number(nobody?.[3] ?? 65534), name: 'nobody' };
}

/**
 * The first directory on the way to `dir` (itself included) that `runAs`
 * cannot enter, judged by the mode bits as the kernel would; undefined when
 * it can reach it.
 */
export async function unreachableFor(runAs: RunAs, dir: string): Promise<string | undefined> {
  const parts = dir.split('/').filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const path = `/${parts.slice(0, i).join('/')}`;
    const info = await stat(path);
    const mode = info.mode;
    const canEnter =
      (info.uid === runAs.uid && mode & 0o100) || (info.gid === runAs.gid && mode & 0o010) || mode & 0o001;
    if (!canEnter) return path;
  }
  return undefined;
}

/**
 * Starts an app's command in its own session and process group, detached
 * from Pier: its output goes straight to the log file descriptor, so it
 * keeps running (and logging) while Pier restarts.
 */
export function spawnApp(options: {
  command: string[];
  cwd: string;
  env: Record<string, string>;
  logFd: number;
  runAs?: RunAs;
}): ChildProcess {
  const [file, ...args] = options.command;
  const child = spawn(file, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', options.logFd, options.logFd],
    detached: true,
    ...(options.runAs ? { uid: options.runAs.uid, gid: options.runAs.gid } : {}),
  });
  child.unref();
  return child;
}
