/**
 * Every error Pier shows a user has a kind. The kind decides, in exactly one
 * place each, the HTTP status and Databricks `error_code` (api/errors.ts) and
 * the SQLSTATE a Postgres client sees (proxy/errors.ts). Messages say what
 * happened and what to do; they never carry internal paths, keys or stacks.
 */
export type ErrorKind =
  | 'INVALID_PARAMETER_VALUE'
  | 'MALFORMED_REQUEST'
  | 'RESOURCE_ALREADY_EXISTS'
  | 'RESOURCE_DOES_NOT_EXIST'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'RESOURCE_EXHAUSTED'
  | 'REQUEST_TOO_LARGE'
  | 'NOT_IMPLEMENTED'
  | 'INVALID_STATE'
  | 'INTERNAL_ERROR'
  /** Could work a moment later or through another Pier node (HTTP 503). */
  | 'TEMPORARILY_UNAVAILABLE'
  /** Lakebase Autoscaling's own codes (`/api/2.0/postgres`), which differ from Provisioned's. */
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'BAD_REQUEST';

export class PierError extends Error {
  readonly kind: ErrorKind;

  /**
   * @example
   * throw new PierError('RESOURCE_DOES_NOT_EXIST', `Database instance 'x' does not exist.`);
   */
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = 'PierError';
  }
}

/** Shorthand for the most common kind: the caller sent something we cannot accept. */
export function invalidParameter(message: string): PierError {
  return new PierError('INVALID_PARAMETER_VALUE', message);
}

export function notFound(message: string): PierError {
  return new PierError('RESOURCE_DOES_NOT_EXIST', message);
}

export function isPierError(error: unknown): error is PierError {
  return error instanceof PierError;
}

/**
 * What a listener that could not bind says: a port in use or not allowed is
 * the user's to fix, with the flag that moves it; anything else passes as is.
 */
export function listenError(error: NodeJS.ErrnoException, host: string, port: number, flag: string): Error {
  if (error.code === 'EADDRINUSE') {
    return new PierError(
      'INVALID_PARAMETER_VALUE',
      `Port ${port} on ${host} is already in use. Free it, or pass ${flag} with another port.`,
    );
  }
  if (error.code === 'EACCES') {
    return new PierError(
      'INVALID_PARAMETER_VALUE',
      `Not allowed to listen on ${host}:${port}. Use a port above 1024 with ${flag}.`,
    );
  }
  return error;
}
