import type { ErrorKind } from '../errors.js';
import { ErrorResponse, encodeErrorFields, ProtocolViolation } from './protocol.js';

/**
 * Every way a proxied connection can fail, as one kind. The kind is the
 * metrics/log label and decides, here and only here, the SQLSTATE the client
 * sees. Messages are written for the person holding the client: what went
 * wrong and what to do. They never carry paths, keys or internal errors.
 */
export type ProxyErrorKind =
  | 'SSL_REQUIRED'
  | 'PROTOCOL_VIOLATION'
  | 'PACKET_TOO_LARGE'
  | 'PRE_AUTH_TIMEOUT'
  | 'TOKEN_MALFORMED'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_SIGNATURE_INVALID'
  | 'TOKEN_UNKNOWN_KEY'
  | 'TOKEN_WRONG_ISSUER'
  | 'TOKEN_WRONG_INSTANCE'
  | 'TOKEN_WRONG_USER'
  | 'USER_NOT_ALLOWED'
  | 'IDENTITY_REVOKED'
  | 'PAT_AS_PASSWORD'
  | 'LOGIN_THROTTLED'
  | 'TOO_MANY_CONNECTIONS'
  | 'INSTANCE_NOT_CHOSEN'
  | 'INSTANCE_NOT_FOUND'
  | 'INSTANCE_NOT_AVAILABLE'
  | 'BACKEND_UNREACHABLE'
  | 'BACKEND_REFUSED'
  | 'INTERNAL';

const SQLSTATE: Record<ProxyErrorKind, string> = {
  SSL_REQUIRED: '28000', // invalid_authorization_specification, as Postgres' own hostssl rejection
  PROTOCOL_VIOLATION: '08P01',
  PACKET_TOO_LARGE: '08P01',
  PRE_AUTH_TIMEOUT: '08P01',
  TOKEN_MALFORMED: '28P01',
  TOKEN_EXPIRED: '28P01',
  TOKEN_SIGNATURE_INVALID: '28P01',
  TOKEN_UNKNOWN_KEY: '28P01',
  TOKEN_WRONG_ISSUER: '28P01',
  TOKEN_WRONG_INSTANCE: '28P01',
  TOKEN_WRONG_USER: '28P01',
  USER_NOT_ALLOWED: '28000', // as Postgres' "role … is not permitted to log in"
  IDENTITY_REVOKED: '28P01',
  PAT_AS_PASSWORD: '28P01',
  LOGIN_THROTTLED: '28000', // invalid_authorization_specification: refused for who is asking, not what
  TOO_MANY_CONNECTIONS: '53300', // too_many_connections, as Postgres' "sorry, too many clients already"
  INSTANCE_NOT_CHOSEN: '08004', // sqlserver_rejected_establishment_of_sqlconnection
  INSTANCE_NOT_FOUND: '3D000', // invalid_catalog_name
  INSTANCE_NOT_AVAILABLE: '57P03', // cannot_connect_now
  BACKEND_UNREACHABLE: '08006',
  BACKEND_REFUSED: '08004',
  INTERNAL: 'XX000',
};

/** A failure the client is told about, then disconnected. */
export class ProxyError extends Error {
  readonly kind: ProxyErrorKind;
  readonly hint: string | undefined;
  /** For the server log only: what was really wrong when the client is told less (before authentication). */
  readonly detail: string | undefined;

  /**
   * @example
   * throw new ProxyError('INSTANCE_NOT_AVAILABLE', `Database instance 'x' is STOPPED.`, {
   *   hint: 'Start it with: pier database start-database-instance x',
   * });
   */
  constructor(
    kind: ProxyErrorKind,
    message: string,
    options: { hint?: string; cause?: unknown; detail?: string } = {},
  ) {
    super(message, { cause: options.cause });
    this.kind = kind;
    this.hint = options.hint;
    this.detail = options.detail;
    this.name = 'ProxyError';
  }
}

/** The backend refused the session (e.g. no such role); its ErrorResponse is relayed, possibly with a hint. */
export class BackendErrorResponse extends Error {
  readonly kind: ProxyErrorKind = 'BACKEND_REFUSED';
  constructor(readonly fields: Map<string, string>) {
    super(fields.get('M') ?? 'the backend refused the connection');
    this.name = 'BackendErrorResponse';
  }

  get sqlstate(): string | undefined {
    return this.fields.get('C');
  }
}

export function sqlstateOf(kind: ProxyErrorKind): string {
  return SQLSTATE[kind];
}

/** The shared error kinds, for code that throws PierError inside the proxy's collaborators. */
const FROM_PIER_KIND: Partial<Record<ErrorKind, ProxyErrorKind>> = {
  RESOURCE_DOES_NOT_EXIST: 'INSTANCE_NOT_FOUND',
  INVALID_STATE: 'INSTANCE_NOT_AVAILABLE',
  TEMPORARILY_UNAVAILABLE: 'INSTANCE_NOT_AVAILABLE',
  UNAUTHENTICATED: 'TOKEN_MALFORMED',
  PERMISSION_DENIED: 'TOKEN_WRONG_INSTANCE',
  REQUEST_TOO_LARGE: 'PACKET_TOO_LARGE',
  MALFORMED_REQUEST: 'PROTOCOL_VIOLATION',
};

/**
 * The ErrorResponse for any failure. Only ProxyError (and PierError) messages
 * reach the client; anything else becomes a generic internal error.
 */
export function errorResponseFor(error: unknown): { kind: ProxyErrorKind; packet: Buffer } {
  if (error instanceof ProxyError) {
    return {
      kind: error.kind,
      packet: ErrorResponse({
        severity: 'FATAL',
        code: SQLSTATE[error.kind],
        message: error.message,
        hint: error.hint,
      }),
    };
  }
  if (error instanceof ProtocolViolation && error.kind !== 'CLOSED') {
    return {
      kind: error.kind,
      packet: ErrorResponse({ severity: 'FATAL', code: SQLSTATE[error.kind], message: error.message }),
    };
  }
  if (error instanceof BackendErrorResponse) {
    return { kind: error.kind, packet: encodeErrorFields(0x45, error.fields) };
  }
  const pierKind =
    (error as { name?: string; kind?: ErrorKind }).name === 'PierError'
      ? (error as { kind: ErrorKind }).kind
      : undefined;
  const kind = (pierKind && FROM_PIER_KIND[pierKind]) || 'INTERNAL';
  const message =
    kind === 'INTERNAL'
      ? 'The Pier proxy hit an internal error; see the server log.'
      : (error as Error).message;
  return { kind, packet: ErrorResponse({ severity: 'FATAL', code: SQLSTATE[kind], message }) };
}
