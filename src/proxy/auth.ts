import { setTimeout as sleep } from 'node:timers/promises';
import type { InstanceRoute, PasswordCheck, PasswordVerdict, ProxyDirectory } from './directory.js';
import { ProxyError, type ProxyErrorKind } from './errors.js';
import type { LoginThrottle } from './login-throttle.js';
import { routeConnection } from './route.js';
import type { Startup } from './startup.js';

/**
 * Authentication: ask for a cleartext password (safe: we are inside TLS),
 * then check it is a database credential for this user, or, where the
 * instance allows it, the role's own Postgres password. Until one of them
 * holds, the client learns nothing about instances: an unknown instance, a
 * stopped one and a wrong password give the same answer. Which instance a
 * token must open is checked after authentication, by `checkAudience`.
 */

/** The command users run to get a fresh credential; shown in hints. */
export const GENERATE_CREDENTIAL_COMMAND = 'pier database generate-database-credential --instance-names';
const PASSWORD_MESSAGE = 0x70; // 'p'
const PAT_PREFIX = 'dapi';
/** A refused Postgres password is answered no sooner than this after its check began. */
export const NATIVE_REFUSAL_MS = 200;
const CREDENTIAL_HINT = `Generate a database credential with: ${GENERATE_CREDENTIAL_COMMAND} <instance>, and use its token as the password.`;

const VERDICT_KIND: Record<Exclude<PasswordVerdict, { ok: true }>['reason'], ProxyErrorKind> = {
  malformed: 'TOKEN_MALFORMED',
  expired: 'TOKEN_EXPIRED',
  bad_signature: 'TOKEN_SIGNATURE_INVALID',
  unknown_kid: 'TOKEN_UNKNOWN_KEY',
  wrong_issuer: 'TOKEN_WRONG_ISSUER',
  not_yet_valid: 'TOKEN_EXPIRED',
  wrong_user: 'TOKEN_WRONG_USER',
  user_not_allowed: 'USER_NOT_ALLOWED',
  identity_revoked: 'IDENTITY_REVOKED',
};

export interface PasswordOptions {
  passwords: PasswordCheck;
  throttle: LoginThrottle;
  clientAddress: string;
  /** Set: a password that is no token may be a role's own Postgres password on the instance the client names. */
  nativeLogin?: {
    directory: ProxyDirectory;
    servername: string | undefined;
    localAddress: string | undefined;
  };
  /** Aborts when the connection ends: its place in the throttle's line is given up. */
  signal?: AbortSignal;
}

/** Who the client proved to be: a credential's audience, or (native login) the instance whose role password it knew. */
export interface Credential {
  audience: string[];
  nativeRoute?: InstanceRoute;
}

/**
 * Checks the client's answer to AuthenticationCleartextPassword (a message of
 * `type` with `body`), in its turn: each check counts for or against the
 * client's address.
 */
export async function verifyPasswordMessage(
  type: number,
  body: Buffer,
  startup: Startup,
  options: PasswordOptions,
): Promise<Credential> {
  if (type !== PASSWORD_MESSAGE) {
    throw new ProxyError('PROTOCOL_VIOLATION', `Expected a password message, got message type ${type}.`);
  }
  const end = body.indexOf(0);
  const password = body.toString('utf8', 0, end < 0 ? body.length : end);
  const attempt = await options.throttle.begin(options.clientAddress, options.signal);
  try {
    const credential = await checkPassword(password, startup, options);
    attempt.succeeded();
    return credential;
  } catch (error) {
    attempt.failed();
    throw error;
  }
}

async function checkPassword(
  password: string,
  startup: Startup,
  options: PasswordOptions,
): Promise<Credential> {
  if (password.startsWith(PAT_PREFIX)) {
    throw new ProxyError(
      'PAT_AS_PASSWORD',
      'Personal access tokens cannot be used as Postgres passwords; use a database credential instead.',
      { hint: CREDENTIAL_HINT },
    );
  }
  const verdict = await options.passwords.verify(password, startup.user);
  if (verdict.ok) return { audience: verdict.audience };
  if (verdict.reason === 'malformed' && options.nativeLogin) {
    return { audience: [], nativeRoute: await checkNativePassword(password, startup, options.nativeLogin) };
  }
  throw new ProxyError(
    VERDICT_KIND[verdict.reason] ?? 'TOKEN_MALFORMED',
    `password authentication failed for user "${startup.user}": ${verdict.message}`,
    { hint: CREDENTIAL_HINT },
  );
}

/**
 * Native login: the instance the client names must exist, be AVAILABLE and
 * allow Postgres passwords, and the password must match the role's verifier
 * there. The cheap checks come first; every failure, whatever its cause, is
 * the same refusal, sent no sooner than `NATIVE_REFUSAL_MS`, with the cause
 * kept for the server log.
 */
async function checkNativePassword(
  password: string,
  startup: Startup,
  where: NonNullable<PasswordOptions['nativeLogin']>,
): Promise<InstanceRoute> {
  const started = Date.now();
  try {
    return await nativePasswordHolds(password, startup, where);
  } catch (error) {
    // As Postgres' auth_delay: a refusal takes as long whether or not there was an instance to ask.
    await sleep(Math.max(0, NATIVE_REFUSAL_MS - (Date.now() - started)));
    throw error;
  }
}

async function nativePasswordHolds(
  password: string,
  startup: Startup,
  where: NonNullable<PasswordOptions['nativeLogin']>,
): Promise<InstanceRoute> {
  const refuse = (detail: string, cause?: unknown) =>
    new ProxyError('TOKEN_MALFORMED', `password authentication failed for user "${startup.user}"`, {
      hint: `The password is neither a database credential nor a Postgres password the instance accepts. ${CREDENTIAL_HINT}`,
      detail,
      cause,
    });
  let route: InstanceRoute;
  try {
    route = routeConnection(where.directory, { ...where, startup, audience: [] });
  } catch (error) {
    throw refuse(`native login: ${(error as Error).message}`, error);
  }
  if (!route.nativeLogin) throw refuse(`native login is off on instance '${route.name}'`);
  let verdict: string;
  try {
    verdict = (await where.directory.verifyNativePassword?.(route, startup.user, password)) ?? 'mismatch';
  } catch (error) {
    throw refuse(`native login on '${route.name}' failed: ${(error as Error).message}`, error);
  }
  if (verdict === 'match') return route;
  throw refuse(
    verdict === 'too_costly'
      ? `the SCRAM verifier of "${startup.user}" on '${route.name}' asks for more iterations than Pier computes`
      : `wrong Postgres password for "${startup.user}" on '${route.name}'`,
  );
}

/** The token must name the instance the connection was routed to. */
export function checkAudience(route: InstanceRoute, audience: string[], user: string): void {
  if (audience.includes(route.uid)) return;
  throw new ProxyError(
    'TOKEN_WRONG_INSTANCE',
    `password authentication failed for user "${user}": the database credential is not valid for instance '${route.name}'.`,
    { hint: `Generate one for it with: ${GENERATE_CREDENTIAL_COMMAND} ${route.name}` },
  );
}
