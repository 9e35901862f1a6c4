import { PierError } from '../errors.js';
import type { Credentials } from './config.js';

/** Error from the API, carrying its Databricks error_code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Calls the REST API with the resolved credentials and returns parsed JSON.
 * @example
 * await call(creds, 'GET', '/api/2.0/database/instances/order-mgmt-db')
 */
export async function call<T = Record<string, unknown>>(
  credentials: Credentials,
  method: string,
  path: string,
  options: { query?: Record<string, string | number | boolean | undefined>; body?: unknown } = {},
): Promise<T> {
  const url = new URL(path, `${credentials.host}/`);
  for (const [key, value] of Object.entries(options.query ?? {})) {
    if (value !== undefined) url.searchParams.set(key, String(value));
  }
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${credentials.token}`,
        ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
    });
  } catch (cause) {
    throw new PierError(
      'INTERNAL_ERROR',
      `Cannot reach ${credentials.host} (${credentials.source}): ${((cause as Error).cause as Error)?.message ?? (cause as Error).message}. Is Pier running? Start it with \`npx pier up\`.`,
      { cause },
    );
  }
  const text = await response.text();
  const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (!response.ok) {
    throw new ApiError(
      response.status,
      String(body.error_code ?? response.status),
      String(body.message ?? response.statusText),
    );
  }
  return body as T;
}
