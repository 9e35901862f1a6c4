import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import ini from 'ini';
import { PierError } from '../errors.js';
import { dataDirLayout, resolveDataDir } from '../server/data-dir.js';

export interface Credentials {
  host: string;
  token: string;
  /** Where they came from, for error messages. */
  source: string;
}

/**
 * Resolves where to send API calls and with which token, the way Databricks
 * tools do: `DATABRICKS_HOST`/`DATABRICKS_TOKEN`, else a `~/.databrickscfg`
 * profile (`--profile`, `DATABRICKS_CONFIG_PROFILE`, or DEFAULT), else the
 * admin of the Pier running on the local data dir.
 */
export function resolveCredentials(options: { profile?: string; dataDir?: string }): Credentials {
  const profileName = options.profile || process.env.DATABRICKS_CONFIG_PROFILE || undefined;
  const envHost = process.env.DATABRICKS_HOST || undefined;
  const envToken = process.env.DATABRICKS_TOKEN || undefined;
  if (!profileName && envHost && envToken)
    return { host: normaliseHost(envHost), token: envToken, source: 'environment' };

  const configFile = process.env.DATABRICKS_CONFIG_FILE || join(homedir(), '.databrickscfg');
  let profiles: Record<string, Record<string, string>> = {};
  try {
    profiles = ini.parse(readFileSync(configFile, 'utf8')) as typeof profiles;
  } catch (error) {
    if (profileName) {
      throw new PierError(
        'INVALID_PARAMETER_VALUE',
        `Cannot read ${configFile} for profile '${profileName}': ${(error as NodeJS.ErrnoException).code}.`,
      );
    }
  }
  const name = profileName ?? 'DEFAULT';
  const profile = profiles[name];
  if (profileName && !profile) {
    throw new PierError('INVALID_PARAMETER_VALUE', `Profile '${profileName}' is not in ${configFile}.`);
  }
  if (profile?.host && profile.token) {
    return {
      host: normaliseHost(envHost ?? profile.host),
      token: envToken ?? profile.token,
      source: `profile ${name}`,
    };
  }

  const layout = dataDirLayout(resolveDataDir(options.dataDir));
  try {
    const state = JSON.parse(readFileSync(layout.stateFile, 'utf8')) as { apiUrl: string };
    const token = readFileSync(layout.adminTokenFile, 'utf8').trim();
    return {
      host: envHost ? normaliseHost(envHost) : state.apiUrl,
      token: envToken ?? token,
      source: `local Pier at ${layout.dataDir}`,
    };
  } catch {
    throw new PierError(
      'UNAUTHENTICATED',
      'No credentials: set DATABRICKS_HOST and DATABRICKS_TOKEN (`eval "$(npx pier status -o env)"`), pass --profile, or start Pier with `npx pier up`.',
    );
  }
}

function normaliseHost(host: string): string {
  const withScheme = /^https?:\/\//.test(host) ? host : `https://${host}`;
  return withScheme.replace(/\/+$/, '');
}
