/**
 * Why a pool could not get what it needs. `configuration`: the options and
 * environment do not say how to connect (fix the setup); `api`: the
 * workspace API answered with an error (its status and Databricks
 * `error_code` are kept); `unreachable`: the API did not answer at all.
 */
export type ClientErrorKind = 'configuration' | 'api' | 'unreachable';

/** An error of the client library; `kind` says whether retrying can help. */
export class PierClientError extends Error {
  readonly kind: ClientErrorKind;
  /** HTTP status, for `api` errors. */
  readonly status?: number;
  /** Databricks `error_code`, for `api` errors. */
  readonly errorCode?: string;

  /**
   * @example
   * throw new PierClientError('configuration', 'Set PGHOST or pass host.');
   */
  constructor(
    kind: ClientErrorKind,
    message: string,
    options: { cause?: unknown; status?: number; errorCode?: string } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'PierClientError';
    this.kind = kind;
    this.status = options.status;
    this.errorCode = options.errorCode;
  }

  /** True when asking again later may succeed (the API was down, overloaded or rate limiting). */
  get retryable(): boolean {
    return (
      this.kind === 'unreachable' ||
      (this.kind === 'api' && (this.status === 429 || (this.status ?? 0) >= 500))
    );
  }
}
