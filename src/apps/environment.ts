import type { PierEndpoints } from '../control/context.js';
import type { EnvEntry } from './app-yaml.js';
import type { BoundDatabase } from './binding.js';

/**
 * The environment Databricks Apps give an app's command, for Pier:
 * DATABRICKS_HOST, DATABRICKS_CLIENT_ID / _SECRET (its service principal),
 * DATABRICKS_APP_NAME, DATABRICKS_WORKSPACE_ID; for the first database
 * resource PGHOST, PGPORT, PGDATABASE, PGUSER, PGSSLMODE=require, PGAPPNAME
 * and PGSSLROOTCERT (Pier's CA, so `verify-full` works); then app.yaml's
 * `env` (`valueFrom` a database resource is its host, as on Databricks).
 * The port (DATABRICKS_APP_PORT, DATABRICKS_APP_URL) is added per start
 * (`withPort`).
 */
export function appEnvironment(input: {
  appName: string;
  clientId: string;
  clientSecret: string;
  endpoints: PierEndpoints;
  workspaceId: string;
  databases: BoundDatabase[];
  env: EnvEntry[];
}): Record<string, string> {
  const env: Record<string, string> = {
    DATABRICKS_HOST: input.endpoints.apiUrl,
    DATABRICKS_CLIENT_ID: input.clientId,
    DATABRICKS_CLIENT_SECRET: input.clientSecret,
    DATABRICKS_APP_NAME: input.appName,
    DATABRICKS_WORKSPACE_ID: input.workspaceId,
  };
  const [first] = input.databases;
  if (first) {
    Object.assign(env, {
      PGHOST: first.host,
      PGPORT: String(input.endpoints.proxyPort),
      PGDATABASE: first.resource.database.database_name,
      PGUSER: input.clientId,
      PGSSLMODE: 'require',
      PGAPPNAME: input.appName,
      ...(input.endpoints.caCertPath ? { PGSSLROOTCERT: input.endpoints.caCertPath } : {}),
    });
  }
  for (const entry of input.env) {
    if ('value' in entry) env[entry.name] = entry.value;
    else {
      const database = input.databases.find((bound) => bound.resource.name === entry.valueFrom);
      if (database) env[entry.name] = database.host;
    }
  }
  return env;
}

/** The environment of one start: the app's, with its port and URL. */
export function withPort(env: Record<string, string>, port: number, url: string): Record<string, string> {
  return { ...env, DATABRICKS_APP_PORT: String(port), DATABRICKS_APP_URL: url };
}

/**
 * The command's arguments with `$DATABRICKS_APP_PORT` (or `${…}`) replaced
 * by the port: the one variable Databricks expands in a command, which is
 * not run in a shell.
 */
export function expandCommand(command: string[], port: number): string[] {
  return command.map((arg) =>
    arg.replace(/\$\{DATABRICKS_APP_PORT\}|\$DATABRICKS_APP_PORT\b/g, String(port)),
  );
}

/** What a child process inherits from Pier: only these, never Pier's own secrets or tokens. */
const INHERITED = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'];

/** The base environment of an app's process: the inherited variables, plus HOME. */
export function baseEnvironment(home: string | undefined, from: NodeJS.ProcessEnv = process.env) {
  const env: Record<string, string> = {};
  for (const name of INHERITED) if (from[name]) env[name] = from[name] as string;
  if (home) env.HOME = home;
  return env;
}
