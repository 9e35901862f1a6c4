/**
 * The console's one way to call Pier: same-origin fetch with the session
 * cookie (never a token in script-readable storage), the session's CSRF
 * token on every state-changing call, and Databricks' error envelope turned
 * into an ApiError the page shows where the action happened.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Session {
  user_name: string;
  display_name: string;
  is_admin: boolean;
  csrf_token: string;
  expires_at: string;
  /** How clients reach instances: the proxy's port and, when Pier made its own CA, that certificate's path. */
  connection: { proxy_port: number; ca_cert_path?: string; database: string };
}

let csrfToken: string | undefined;
let onSignedOut: () => void = () => {};

/** Called when any call finds the session gone (expired, signed out elsewhere, token revoked). */
export function whenSignedOut(handler: () => void): void {
  onSignedOut = handler;
}

export function setSession(session: Session | undefined): void {
  csrfToken = session?.csrf_token;
}

/** One API call; resolves to the parsed JSON body, rejects with an ApiError. */
export async function call<T = Record<string, unknown>>(
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-pier-csrf'] = csrfToken;
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'UNREACHABLE', 'Pier did not answer. Is `pier up` still running?');
  }
  const text = await response.text();
  let parsed: unknown = {};
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = { message: text };
  }
  if (!response.ok) {
    const envelope = parsed as { error_code?: string; message?: string };
    const error = new ApiError(
      response.status,
      envelope.error_code ?? 'ERROR',
      envelope.message ?? `${method} ${path} failed with HTTP ${response.status}.`,
    );
    if (response.status === 401 && !path.startsWith('/console/session')) onSignedOut();
    throw error;
  }
  return parsed as T;
}

/** Path segments are the user's names: always encoded. */
export function seg(value: string): string {
  return encodeURIComponent(value);
}

export function uuid(): string {
  return crypto.randomUUID();
}
