import type { ConnectionOptions } from 'node:tls';
import type pg from 'pg';
import { CredentialCache, type CredentialRefreshError } from './credential-cache.js';
import type { CredentialSource } from './credential-source.js';
import { databaseCredentialSource } from './database-credential.js';
import { endpointCredentialSource, endpointHost } from './endpoint.js';
import { PierClientError } from './errors.js';
import { currentUserName, instanceEndpoint, instanceNameForHost } from './instances.js';
import { oauthM2MSource } from './oauth-m2m.js';
import { type Environment, normaliseHost } from './profiles.js';
import { RefreshingPool } from './refreshing-pool.js';
import { type SslMode, sslModeFrom, tlsOptions } from './tls.js';
import { workspaceApi } from './workspace-api.js';
import { resolveWorkspaceAuth, type WorkspaceAuth, type WorkspaceCredentials } from './workspace-auth.js';

/** Options of {@link createPool}: node-postgres pool settings, plus where the instance and its credentials are. */
export interface PoolOptions
  extends Omit<
    pg.PoolConfig,
    'password' | 'ssl' | 'host' | 'port' | 'user' | 'database' | 'connectionString'
  > {
  /** The database instance; its address and the credential's scope come from the API. */
  instanceName?: string;
  /**
   * Lakebase Autoscaling instead: the endpoint (`projects/<p>/branches/<b>/endpoints/<e>`,
   * default `LAKEBASE_ENDPOINT`); credentials from `/api/2.0/postgres/credentials`.
   */
  endpoint?: string;
  /** Default `PGHOST`, else the instance's `read_write_dns`. */
  host?: string;
  /** Default `PGPORT`, else 5432. */
  port?: number;
  /** Default `PGDATABASE`, else `databricks_postgres`. */
  database?: string;
  /** Default `PGUSER`, else `DATABRICKS_CLIENT_ID`, else the caller's user name (SCIM Me). */
  user?: string;
  /** Default `PGSSLMODE`, else `verify-full`. */
  sslMode?: SslMode;
  /** A CA to trust besides Node's roots (PEM path or text); default `PGSSLROOTCERT`. */
  sslRootCert?: string;
  /** Full node-postgres TLS options, replacing sslMode and sslRootCert. */
  ssl?: ConnectionOptions;
  /** The workspace and how to authenticate; default the environment or `profile`. */
  workspace?: WorkspaceCredentials;
  /** A `~/.databrickscfg` profile name. */
  profile?: string;
  /** Where passwords come from; default the M2M token for a service principal, else database credentials. */
  credentialSource?: CredentialSource;
  /** Refresh this many seconds before the credential expires (default 600), or halfway through a shorter lifetime. */
  refreshBeforeSeconds?: number;
  /** Close connections older than this (default: the credential's lifetime, one hour on Databricks). */
  maxLifetimeSeconds?: number;
  /** Backoff of failed refreshes: first delay (default 1 s), doubling up to maxDelayMs (default 30 s). */
  retry?: { initialDelayMs?: number; maxDelayMs?: number };
  /** Where PG* and DATABRICKS_* are read from (default `process.env`). */
  env?: Environment;
}

/** The `pg.Pool` {@link createPool} returns: a standard pool, plus its credential and two events. */
export type PierPool = pg.Pool & {
  /** The credential every new connection logs in with. */
  readonly credentials: CredentialCache;
  /** A refresh failed; it is retried after `retryInMs`. Queries fail only once no credential is valid. */
  on(event: 'credentialError', listener: (report: CredentialRefreshError) => void): PierPool;
  /** A new credential is in use. */
  on(event: 'credentialRefresh', listener: (credential: { expiresAt: number }) => void): PierPool;
};

/**
 * A node-postgres pool for a Lakebase (or Pier) database instance whose
 * password is a short-lived credential, refreshed in the background before
 * it expires and shared by all connections. In a Databricks App it needs no
 * options: `PGHOST`, `PGUSER`, `DATABRICKS_CLIENT_ID`/`SECRET` … say it all.
 *
 * @example
 * const pool = createPool({ instanceName: 'order-mgmt-db', database: 'databricks_postgres' });
 * pool.on('credentialError', ({ error, retryInMs }) => log.warn(error, `retrying in ${retryInMs} ms`));
 * await pool.query('SELECT 1');
 */
export function createPool(options: PoolOptions = {}): PierPool {
  const env = options.env ?? process.env;
  const {
    instanceName,
    endpoint: endpointOption,
    host,
    port,
    database,
    user,
    sslMode,
    sslRootCert,
    ssl,
    workspace,
    profile,
    credentialSource,
    refreshBeforeSeconds,
    maxLifetimeSeconds,
    retry,
    env: _env,
    ...poolSettings
  } = options;
  const endpoint = endpointOption ?? (instanceName ? undefined : env.LAKEBASE_ENDPOINT || undefined);
  const knownHost = host ?? (instanceName ? undefined : env.PGHOST || undefined);
  const knownUser = user ?? (env.PGUSER || undefined);
  if (!knownHost && !instanceName && !endpoint) {
    throw new PierClientError(
      'configuration',
      'Say which instance to connect to: pass instanceName, endpoint or host, or set PGHOST or LAKEBASE_ENDPOINT.',
    );
  }
  // The workspace is needed for credentials (unless a source is given) and for whatever
  // the options leave to the API; read it now so a missing setup fails here, not at a query.
  const needsWorkspace = !credentialSource || !knownHost || !knownUser;
  const auth: WorkspaceAuth | undefined = !needsWorkspace
    ? undefined
    : workspace
      ? { ...workspace, host: normaliseHost(workspace.host), source: 'options' }
      : resolveWorkspaceAuth({ env, profile });
  const api = auth && workspaceApi(auth);
  const workspaceAccess = () => api!;

  let instanceNames: Promise<string[]> | undefined;
  const scope = () => {
    instanceNames ??= (
      instanceName ? Promise.resolve(instanceName) : instanceNameForHost(workspaceAccess(), knownHost!)
    ).then(
      (name) => [name],
      (error: unknown) => {
        instanceNames = undefined;
        throw error;
      },
    );
    return instanceNames;
  };
  const source =
    credentialSource ??
    (endpoint
      ? endpointCredentialSource(api!, endpoint)
      : auth && 'clientId' in auth
        ? oauthM2MSource(auth) // as Databricks Apps do: the service principal's token is the password
        : databaseCredentialSource(api!, scope));

  const needsLookup = !knownHost || !(knownUser ?? api?.clientId);
  const pool = new RefreshingPool(
    {
      ...poolSettings,
      host: knownHost,
      port: port ?? (env.PGPORT ? Number(env.PGPORT) : 5432),
      database: database ?? (env.PGDATABASE || 'databricks_postgres'),
      user: knownUser ?? api?.clientId,
      ssl: ssl ?? tlsOptions(sslMode ?? sslModeFrom(env.PGSSLMODE), sslRootCert ?? env.PGSSLROOTCERT, env),
      maxLifetimeSeconds,
      // Apps set PGAPPNAME; read it from `env` like the other PG* variables.
      application_name: poolSettings.application_name ?? env.PGAPPNAME,
    },
    (self) =>
      new CredentialCache({
        source,
        refreshBeforeMs: (refreshBeforeSeconds ?? 600) * 1000,
        retry: { initialDelayMs: retry?.initialDelayMs ?? 1000, maxDelayMs: retry?.maxDelayMs ?? 30_000 },
        onRefresh(credential) {
          if (maxLifetimeSeconds === undefined) {
            // New connections take their lifetime from pool.options when they open.
            self.options.maxLifetimeSeconds = Math.max(
              1,
              Math.round((credential.expiresAt - Date.now()) / 1000),
            );
          }
          self.emit('credentialRefresh', { expiresAt: credential.expiresAt });
        },
        onError(report) {
          if (self.listenerCount('credentialError') > 0) self.emit('credentialError', report);
          else if (report.attempt === 1) {
            process.emitWarning(
              `refreshing the database credential failed (${report.error.message}); retrying in ${report.retryInMs} ms. Handle pool.on('credentialError') to report it your way.`,
              'PierCredentialWarning',
            );
          }
        },
      }),
    needsLookup
      ? async () => ({
          host:
            knownHost ??
            (endpoint
              ? await endpointHost(workspaceAccess(), endpoint)
              : (await instanceEndpoint(workspaceAccess(), instanceName!)).readWriteDns),
          user: knownUser ?? api?.clientId ?? (await currentUserName(workspaceAccess())),
        })
      : undefined,
  );
  return pool as unknown as PierPool;
}
