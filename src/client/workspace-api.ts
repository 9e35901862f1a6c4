import type { Credential } from './credential-source.js';
import { PierClientError } from './errors.js';
import { readJsonResponse, requestTimeout } from './http.js';
import { oauthM2MSource } from './oauth-m2m.js';
import type { WorkspaceAuth } from './workspace-auth.js';

/** The few workspace REST calls the pool makes, authenticated one way or the other. */
export interface WorkspaceApi {
  readonly host: string;
  /** Where the credentials came from (environment, a profile), for error messages. */
  readonly source: string;
  /** The service principal's client id when the workspace is reached over OAuth M2M. */
  readonly clientId?: string;
  /** The bearer token for REST calls; for M2M, also a valid Postgres password. */
  bearer(signal?: AbortSignal): Promise<Credential>;
  request<T = Record<string, unknown>>(
    method: string,
    path: string,
    options?: { body?: unknown; signal?: AbortSignal },
  ): Promise<T>;
}

/**
 * REST access to a workspace. With a service principal the OAuth token is
 * fetched once and reused until a minute before it expires (concurrent
 * callers share one request).
 *
 * @example
 * const api = workspaceApi(resolveWorkspaceAuth({ env: process.env }));
 * const me = await api.request('GET', '/api/2.0/preview/scim/v2/Me');
 */
export function workspaceApi(auth: WorkspaceAuth): WorkspaceApi {
  let bearer: (signal?: AbortSignal) => Promise<Credential>;
  if ('token' in auth) {
    const fixed = { token: auth.token, expiresAt: Number.POSITIVE_INFINITY };
    bearer = async () => fixed;
  } else {
    const source = oauthM2MSource(auth);
    let current: Credential | undefined;
    let pending: Promise<Credential> | undefined;
    bearer = (signal) => {
      if (current && current.expiresAt - 60_000 > Date.now()) return Promise.resolve(current);
      pending ??= source.fetchCredential(signal).then(
        (credential) => {
          current = credential;
          pending = undefined;
          return credential;
        },
        (error: unknown) => {
          pending = undefined;
          throw error;
        },
      );
      return pending;
    };
  }
  return {
    host: auth.host,
    source: auth.source,
    clientId: 'clientId' in auth ? auth.clientId : undefined,
    bearer,
    async request<T>(method: string, path: string, options: { body?: unknown; signal?: AbortSignal } = {}) {
      const { token } = await bearer(options.signal);
      let response: Response;
      try {
        response = await fetch(new URL(path, `${auth.host}/`), {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/json',
            ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
          signal: requestTimeout(options.signal),
        });
      } catch (cause) {
        const error = cause as Error;
        throw new PierClientError(
          'unreachable',
          `Cannot reach ${auth.host} (${auth.source}): ${(error.cause as Error | undefined)?.message ?? error.message}.`,
          { cause },
        );
      }
      return (await readJsonResponse(response, `${method} ${path}`)) as T;
    },
  };
}
