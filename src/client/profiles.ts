import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import ini from 'ini';
import { PierClientError } from './errors.js';

/** Where the pool reads Databricks configuration from; `process.env` unless a test says otherwise. */
export type Environment = Readonly<Record<string, string | undefined>>;

/** One `~/.databrickscfg` profile: its name, file and fields (`host`, `token`, `client_id`, …). */
export interface ConfigProfile {
  name: string;
  configFile: string;
  /** Undefined when the file or the DEFAULT profile is missing (only an error for a named profile). */
  fields?: Record<string, string>;
}

/**
 * Reads the profile the Databricks tools would: `profile`, else
 * `DATABRICKS_CONFIG_PROFILE`, else DEFAULT, from `DATABRICKS_CONFIG_FILE`
 * or `~/.databrickscfg`. A named profile that cannot be read is an error;
 * a missing DEFAULT is not.
 *
 * @example
 * readProfile({ env: process.env }).fields?.host // 'https://…'
 */
export function readProfile(options: { env: Environment; profile?: string }): ConfigProfile {
  const { env } = options;
  const named = options.profile || env.DATABRICKS_CONFIG_PROFILE || undefined;
  const configFile = env.DATABRICKS_CONFIG_FILE || join(env.HOME || homedir(), '.databrickscfg');
  let profiles: Record<string, Record<string, string>> = {};
  try {
    profiles = ini.parse(readFileSync(configFile, 'utf8')) as typeof profiles;
  } catch (cause) {
    if (named) {
      throw new PierClientError(
        'configuration',
        `Cannot read ${configFile} for profile '${named}': ${(cause as NodeJS.ErrnoException).code}.`,
        { cause },
      );
    }
  }
  const name = named ?? 'DEFAULT';
  const fields = profiles[name];
  if (named && !fields) {
    throw new PierClientError('configuration', `Profile '${named}' is not in ${configFile}.`);
  }
  return { name, configFile, fields };
}

/** Whether a profile was asked for by name (`profile` or `DATABRICKS_CONFIG_PROFILE`). */
export function profileNamed(options: { env: Environment; profile?: string }): boolean {
  return Boolean(options.profile || options.env.DATABRICKS_CONFIG_PROFILE);
}

/** `example.cloud.databricks.com` → `https://example.cloud.databricks.com`, no trailing slash. */
export function normaliseHost(host: string): string {
  const withScheme = /^https?:\/\//.test(host) ? host : `https://${host}`;
  return withScheme.replace(/\/+$/, '');
}
