import { PierClientError } from './errors.js';

/** A REST call that hangs longer than this fails, so a refresh retries instead of waiting forever. */
const REQUEST_TIMEOUT_MS = 30_000;

/** The caller's signal, bounded by the request timeout. */
export function requestTimeout(signal?: AbortSignal): AbortSignal {
  const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
  return signal ? AbortSignal.any([signal, timeout]) : timeout;
}

/** The JSON body of a successful response; an error response becomes a PierClientError of kind `api`. */
export async function readJsonResponse(response: Response, what: string): Promise<Record<string, unknown>> {
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    // A proxy's HTML error page: the status says enough.
  }
  if (!response.ok) {
    const code =
      typeof body.error_code === 'string'
        ? body.error_code
        : typeof body.error === 'string'
          ? body.error
          : undefined;
    const message =
      typeof body.message === 'string'
        ? body.message
        : typeof body.error_description === 'string'
          ? body.error_description
          : response.statusText;
    throw new PierClientError(
      'api',
      `${what} failed with ${response.status}${code ? ` ${code}` : ''}: ${message}`,
      {
        status: response.status,
        errorCode: code,
      },
    );
  }
  return body;
}
