import type { ErrorKind } from '../errors.js';
import { isPierError } from '../errors.js';

/** The one place an error kind becomes an HTTP status and a Databricks `error_code`. */
const HTTP: Record<ErrorKind, { status: number; errorCode: string }> = {
  INVALID_PARAMETER_VALUE: { status: 400, errorCode: 'INVALID_PARAMETER_VALUE' },
  MALFORMED_REQUEST: { status: 400, errorCode: 'MALFORMED_REQUEST' },
  INVALID_STATE: { status: 400, errorCode: 'INVALID_STATE' },
  UNAUTHENTICATED: { status: 401, errorCode: 'UNAUTHENTICATED' },
  PERMISSION_DENIED: { status: 403, errorCode: 'PERMISSION_DENIED' },
  RESOURCE_DOES_NOT_EXIST: { status: 404, errorCode: 'RESOURCE_DOES_NOT_EXIST' },
  RESOURCE_ALREADY_EXISTS: { status: 409, errorCode: 'RESOURCE_ALREADY_EXISTS' },
  REQUEST_TOO_LARGE: { status: 413, errorCode: 'REQUEST_LIMIT_EXCEEDED' },
  RESOURCE_EXHAUSTED: { status: 429, errorCode: 'RESOURCE_EXHAUSTED' },
  NOT_IMPLEMENTED: { status: 501, errorCode: 'NOT_IMPLEMENTED' },
  INTERNAL_ERROR: { status: 500, errorCode: 'INTERNAL_ERROR' },
  TEMPORARILY_UNAVAILABLE: { status: 503, errorCode: 'TEMPORARILY_UNAVAILABLE' },
  NOT_FOUND: { status: 404, errorCode: 'NOT_FOUND' },
  ALREADY_EXISTS: { status: 409, errorCode: 'ALREADY_EXISTS' },
  BAD_REQUEST: { status: 400, errorCode: 'BAD_REQUEST' },
};

export interface ErrorEnvelope {
  status: number;
  body: { error_code: string; message: string };
}

/**
 * The Databricks error envelope for any error. Unexpected errors become a
 * generic INTERNAL_ERROR: their text stays in the server log, never in a response.
 */
export function errorEnvelope(error: unknown, log?: (message: string) => void): ErrorEnvelope {
  if (isPierError(error) && error.kind !== 'INTERNAL_ERROR') {
    const { status, errorCode } = HTTP[error.kind];
    return { status, body: { error_code: errorCode, message: error.message } };
  }
  log?.(`internal error: ${(error as Error)?.stack ?? String(error)}`);
  return {
    status: 500,
    body: { error_code: 'INTERNAL_ERROR', message: 'Pier hit an internal error; details are in its log.' },
  };
}
