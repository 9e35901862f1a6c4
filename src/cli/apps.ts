import { spawn } from 'node:child_process';
import { basename, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { readAppDirectory } from '../apps/deployments.js';
import { baseEnvironment, expandCommand, withPort } from '../apps/environment.js';
import { freePort } from '../apps/process.js';
import {
  ConfigProblem,
  type DatabaseResource,
  mergeResources,
  parseResourceFlag,
} from '../apps/resources.js';
import { PierError } from '../errors.js';
import { ApiError, call } from './api-client.js';
import { credentials, listAll, segment } from './catalog.js';
import type { Credentials } from './config.js';
import { printJson, progress } from './output.js';

interface AppJson {
  name: string;
  url?: string;
  resources?: DatabaseResource[];
  compute_status?: { state?: string; message?: string };
  app_status?: { state?: string; message?: string };
  active_deployment?: DeploymentJson;
}
interface DeploymentJson {
  deployment_id: string;
  status?: { state?: string; message?: string };
}

const appPath = (name: string) => `/api/2.0/apps/${segment(name)}`;

function resourceFlags(values: string[]): DatabaseResource[] {
  return values.map((value) => {
    try {
      return parseResourceFlag(value);
    } catch (error) {
      if (error instanceof ConfigProblem) throw new PierError('INVALID_PARAMETER_VALUE', error.message);
      throw error;
    }
  });
}

/** `--name`, else the directory's name made into an app name (`Feature_Flags` → `feature-flags`). */
function appName(dir: string, flag: string | undefined): string {
  if (flag) return flag;
  const derived = basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 30);
  if (derived.length < 2) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      `Cannot name an app after '${dir}'; pass --name, e.g. --name my-app.`,
    );
  }
  return derived;
}

/** The app, created if missing (stopped for `run`), with `resources` added to its own. */
async function ensureApp(
  creds: Credentials,
  name: string,
  resources: DatabaseResource[],
  options: { compute: boolean },
): Promise<AppJson> {
  let app: AppJson;
  try {
    app = await call<AppJson>(creds, 'GET', appPath(name));
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    progress(`Creating app ${name}`);
    return call<AppJson>(creds, 'POST', '/api/2.0/apps', {
      query: { no_compute: options.compute ? undefined : true },
      body: { name, resources },
    });
  }
  const merged = mergeResources(app.resources ?? [], resources);
  if (JSON.stringify(merged) !== JSON.stringify(app.resources ?? [])) {
    app = await call<AppJson>(creds, 'PATCH', appPath(name), { body: { resources: merged } });
  }
  return app;
}

/** Polls the app until `done`, or fails after `timeoutMs`. */
async function waitForApp(
  creds: Credentials,
  name: string,
  done: (app: AppJson) => boolean,
  timeoutMs: number,
): Promise<AppJson> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const app = await call<AppJson>(creds, 'GET', appPath(name));
    if (done(app)) return app;
    if (Date.now() > deadline) {
      throw new PierError(
        'INVALID_STATE',
        `App ${name} is still ${app.compute_status?.state} / ${app.app_status?.state} after ${timeoutMs / 1000} s: ${app.app_status?.message ?? ''}`,
      );
    }
    await sleep(250);
  }
}

/** `pier apps run DIR`: the app in the foreground, as its service principal, output to this terminal. */
async function run(
  dir: string,
  options: { name?: string; resource: string[]; port?: string },
  command: Command,
) {
  const creds = credentials(command);
  const path = resolve(dir);
  const config = await readAppDirectory(path);
  const name = appName(path, options.name);
  await ensureApp(creds, name, mergeResources(config.resources, resourceFlags(options.resource)), {
    compute: false,
  });
  const { environment } = await call<{ environment: Record<string, string> }>(
    creds,
    'POST',
    `${appPath(name)}/environment`,
    { body: { env: config.env } },
  );
  const port = options.port ? Number(options.port) : await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = expandCommand(config.command, port);
  process.stderr.write(`Running app ${name} on ${url} (${JSON.stringify(args)}; Ctrl-C stops it)\n`);
  const child = spawn(args[0], args.slice(1), {
    cwd: path,
    stdio: 'inherit',
    env: {
      ...baseEnvironment(process.env.HOME),
      ...(process.env.TERM ? { TERM: process.env.TERM } : {}),
      ...withPort(environment, port, url),
    },
  });
  // Ctrl-C reaches the app through the terminal; a signal sent to this process alone is passed on.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => child.kill(signal));
  }
  const code = await new Promise<number>((done, fail) => {
    child.once('error', (error) =>
      fail(
        new PierError(
          'INVALID_PARAMETER_VALUE',
          `Could not start ${JSON.stringify(args[0])}: ${(error as NodeJS.ErrnoException).code}. Check command in app.yaml (it is not run in a shell).`,
        ),
      ),
    );
    child.once('exit', (exitCode, signal) => done(exitCode ?? (signal === 'SIGINT' ? 130 : 1)));
  });
  process.exit(code);
}

/** `pier apps deploy DIR`: a deployment supervised by `pier up`; waits until it runs (or failed). */
async function deploy(
  dir: string,
  options: { name?: string; resource: string[]; wait: boolean; json?: boolean },
  command: Command,
) {
  const creds = credentials(command);
  const path = resolve(dir);
  const config = await readAppDirectory(path);
  const name = appName(path, options.name);
  let app = await ensureApp(creds, name, mergeResources(config.resources, resourceFlags(options.resource)), {
    compute: true,
  });
  if (app.compute_status?.state === 'STOPPED' || app.compute_status?.state === 'STOPPING') {
    progress(`Starting app ${name}`);
    await call(creds, 'POST', `${appPath(name)}/start`);
  }
  let deployment = await call<DeploymentJson>(creds, 'POST', `${appPath(name)}/deployments`, {
    body: { source_code_path: path, mode: 'SNAPSHOT' },
  });
  progress(`Deployment ${deployment.deployment_id}: ${deployment.status?.state}`);
  const deadline = Date.now() + 90_000;
  while (options.wait && deployment.status?.state === 'IN_PROGRESS') {
    if (Date.now() > deadline) {
      throw new PierError(
        'INVALID_STATE',
        `Deployment ${deployment.deployment_id} of ${name} is still IN_PROGRESS after 90 s.`,
      );
    }
    await sleep(250);
    deployment = await call<DeploymentJson>(
      creds,
      'GET',
      `${appPath(name)}/deployments/${deployment.deployment_id}`,
    );
  }
  if (deployment.status?.state === 'FAILED') {
    throw new PierError('INVALID_STATE', `Deployment of app ${name} failed: ${deployment.status.message}`);
  }
  app = await call<AppJson>(creds, 'GET', appPath(name));
  if (options.json) printJson(app);
  else
    process.stdout.write(
      `App ${name}: deployment ${deployment.deployment_id} ${deployment.status?.state}${app.url ? `, ${app.url}` : ''}\n`,
    );
}

async function logs(name: string, options: { follow?: boolean; tailBytes?: string }, command: Command) {
  const creds = credentials(command);
  const path = `${appPath(name)}/logs`;
  let page = await call<{ logs: string; next_offset: number }>(creds, 'GET', path, {
    query: { tail_bytes: options.tailBytes },
  });
  process.stdout.write(page.logs);
  while (options.follow) {
    await sleep(500);
    page = await call<{ logs: string; next_offset: number }>(creds, 'GET', path, {
      query: { offset: page.next_offset },
    });
    process.stdout.write(page.logs);
  }
}

function summary(app: AppJson): string {
  return `${app.name}\t${app.compute_status?.state ?? ''}\t${app.app_status?.state ?? ''}\t${app.url ?? ''}`;
}

/** `pier apps …`: run, deploy, list, get, logs, start, stop, delete. */
export function registerAppCommands(program: Command): void {
  const apps = program
    .command('apps')
    .description(
      'Databricks Apps on Pier: run an app directory with app.yaml, or deploy it under `pier up`.',
    );
  const collect = (value: string, all: string[]) => [...all, value];

  apps
    .command('run <dir>')
    .description(
      'Run the app in the foreground with the environment Databricks Apps inject (Ctrl-C stops it).',
    )
    .option('--name <name>', 'App name (default: the directory name).')
    .option('--resource <resource>', 'NAME=INSTANCE[/DATABASE] or JSON; repeatable.', collect, [])
    .option('--port <port>', 'DATABRICKS_APP_PORT (default: a free port).')
    .action((dir, options, command) => run(dir, options, command));

  apps
    .command('deploy <dir>')
    .description('Deploy the app: `pier up` runs it, restarts it after a crash and after its own restart.')
    .option('--name <name>', 'App name (default: the directory name).')
    .option('--resource <resource>', 'NAME=INSTANCE[/DATABASE] or JSON; repeatable.', collect, [])
    .option('--no-wait', 'Return once the deployment is created.')
    .option('--json', 'Print the app as JSON.')
    .action((dir, options, command) => deploy(dir, options, command));

  apps
    .command('list')
    .description('List apps.')
    .option('--json', 'Print JSON.')
    .action(async (options, command) => {
      const creds = credentials(command);
      if (options.json) return listAll(creds, '/api/2.0/apps', 'apps', {});
      const { apps: rows = [] } = await call<{ apps?: AppJson[] }>(creds, 'GET', '/api/2.0/apps', {
        query: { page_size: 1000 },
      });
      process.stdout.write(['NAME\tCOMPUTE\tAPP\tURL', ...rows.map(summary)].join('\n').concat('\n'));
    });

  apps
    .command('get <name>')
    .description('Show an app (JSON).')
    .option('--json', 'Print JSON (the default; accepted like on the other verbs).')
    .action(async (name, _options, command) =>
      printJson(await call(credentials(command), 'GET', appPath(name))),
    );

  apps
    .command('logs <name>')
    .description("Print the app's log (stdout and stderr, and Pier's lines about it).")
    .option('-f, --follow', 'Keep printing what is written.')
    .option('--tail-bytes <n>', 'How much of the end to print first (default 64 KiB).')
    .action((name, options, command) => logs(name, options, command));

  for (const [verb, state, description] of [
    ['start', 'ACTIVE', 'Start the app (its active deployment runs again).'],
    ['stop', 'STOPPED', 'Stop the app (its process ends; it stays deployed).'],
  ] as const) {
    apps
      .command(`${verb} <name>`)
      .description(description)
      .option('--no-wait', `Return without waiting for ${state}.`)
      .option('--json', 'Print the app as JSON.')
      .action(async (name, options, command) => {
        const creds = credentials(command);
        let app = await call<AppJson>(creds, 'POST', `${appPath(name)}/${verb}`);
        if (options.wait)
          app = await waitForApp(creds, name, (a) => a.compute_status?.state === state, 60_000);
        if (options.json) printJson(app);
        else process.stdout.write(`App ${name}: ${app.compute_status?.state}\n`);
      });
  }

  apps
    .command('delete <name>')
    .description(
      'Delete the app, its process, its service principal and its Postgres roles (their objects are kept).',
    )
    .option('--json', 'Print the deleted app as JSON.')
    .action(async (name, options, command) => {
      const app = await call<AppJson>(credentials(command), 'DELETE', appPath(name));
      if (options.json) printJson(app);
      else process.stdout.write(`App ${name} deleted.\n`);
    });
}
