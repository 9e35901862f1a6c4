import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/** The `pier` command exactly as `npx pier` runs it. */
export const PIER_BIN = fileURLToPath(new URL('../../../bin/pier.js', import.meta.url));

export interface PierProcess {
  dataDir: string;
  apiUrl: string;
  proxyPort: number;
  adminToken: string;
  caCertPath?: string;
  child: ChildProcess;
  output(): string;
  /** SIGTERM and wait: stops every instance and the store. */
  stop(): Promise<void>;
  /** kill -9: leaves Postgres processes behind, like a crash. */
  kill(): Promise<void>;
}

/** A fresh data dir under the system temp dir (reachable by the unprivileged Postgres account). */
export async function tempDataDir(prefix = 'pier-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/**
 * Starts `pier up` in a child process on free ports and waits until its API
 * answers. Extra flags go to `pier up`.
 */
export async function startPier(
  options: { dataDir?: string; args?: string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<PierProcess> {
  const dataDir = options.dataDir ?? (await tempDataDir());
  const args = [
    PIER_BIN,
    'up',
    '--data-dir',
    dataDir,
    '--api-port',
    '0',
    '--proxy-port',
    '0',
    ...(options.args ?? []),
  ];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let exitCode: number | null | undefined;
  void exited.then((code) => {
    exitCode = code;
  });
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (exitCode !== undefined) throw new Error(`pier up exited with ${exitCode}:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`pier up did not become ready:\n${output}`);
    }
    const state = await readJsonFile(join(dataDir, 'pier.json'));
    if (state && state.pid === child.pid) {
      const adminToken = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
      return {
        dataDir,
        apiUrl: state.apiUrl as string,
        proxyPort: state.proxyPort as number,
        caCertPath: state.caCertPath as string | undefined,
        adminToken,
        child,
        output: () => output,
        stop: async () => {
          if (exitCode === undefined) {
            child.kill('SIGTERM');
            // A clean stop takes a second or two; never wait forever.
            const force = setTimeout(() => child.kill('SIGKILL'), 60_000);
            await exited;
            clearTimeout(force);
          }
        },
        kill: async () => {
          if (exitCode === undefined) {
            child.kill('SIGKILL');
            await exited;
          }
        },
      };
    }
    await sleep(50);
  }
}

async function readJsonFile(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Stops Pier (and its Postgres servers) and removes the data dir. */
export async function removePier(pier: PierProcess): Promise<void> {
  await pier.stop();
  await runPier(['down', '--data-dir', pier.dataDir]);
  await rm(pier.dataDir, { recursive: true, force: true });
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the `pier` CLI to completion. */
export function runPier(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [PIER_BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const limit = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.on('exit', (code) => {
      clearTimeout(limit);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A plain HTTP call to the API, returning status and parsed body. */
export async function api(
  pier: { apiUrl: string },
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${pier.apiUrl}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    // A hung server fails the test instead of stalling the suite.
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Polls until `check` returns a value (not undefined) or the time is up. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
