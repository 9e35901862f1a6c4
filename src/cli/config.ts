import { readFileSync } from 'node:fs';
import { PierClientError } from '../client/errors.js';
import { type ConfigProfile, normaliseHost, profileNamed, readProfile } from '../client/profiles.js';
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
  const envHost = process.env.DATABRICKS_HOST || undefined;
  const envToken = process.env.DATABRICKS_TOKEN || undefined;
  const lookup = { env: process.env, profile: options.profile };
  if (!profileNamed(lookup) && envHost && envToken)
    return { host: normaliseHost(envHost), token: envToken, source: 'environment' };

  let profile: ConfigProfile;
  try {
    profile = readProfile(lookup);
  } catch (error) {
    if (error instanceof PierClientError) throw new PierError('INVALID_PARAMETER_VALUE', error.message);
    throw error;
  }
  if (profile.fields?.host && profile.fields.token) {
    return {
      host: normaliseHost(envHost ?? profile.fields.host),
      token: envToken ?? profile.fields.token,
      source: `profile ${profile.name}`,
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
