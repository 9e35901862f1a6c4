import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { InstanceRoute, PasswordCheck, PasswordVerdict, ProxyDirectory } from './directory.js';
import { ProxyError, type ProxyErrorKind } from './errors.js';
import { AuthenticationCleartextPassword, type PacketReader } from './protocol.js';
import type { Startup } from './startup.js';

/**
 * Authentication: ask for a cleartext password (safe: we are inside TLS),
 * then check it is a database credential for this user. Which instance the
 * token must open is checked after routing, by `checkAudience`.
 */

/** The command users run to get a fresh credential; shown in hints. */
export const GENERATE_CREDENTIAL_COMMAND = 'pier database generate-database-credential --instance-names';
const PASSWORD_MESSAGE = 0x70; // 'p'
const PAT_PREFIX = 'dapi';

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
  failures: AuthFailureLimiter;
  clientAddress: string;
  /** A password that is no token at all may be a role's own Postgres password (checked after routing). */
  allowNativePassword?: boolean;
}

/** What a good password says: the instances its credential opens, or a role's own password to check. */
export interface PasswordResult {
  audience: string[];
  nativePassword?: string;
}

export async function authenticate(
  stream: Duplex,
  reader: PacketReader,
  startup: Startup,
  options: PasswordOptions & { maxPacketBytes: number },
): Promise<PasswordResult> {
  const { failures, clientAddress } = options;
  const delayMs = failures.delayFor(clientAddress);
  if (delayMs > 0) await sleep(delayMs);
  stream.write(AuthenticationCleartextPassword());
  const { type, body } = await reader.readMessage(options.maxPacketBytes);
  return verifyPasswordMessage(type, body, startup, options);
}

/** Checks the client's answer to AuthenticationCleartextPassword: a message of `type` with `body`. */
export async function verifyPasswordMessage(
  type: number,
  body: Buffer,
  startup: Startup,
  options: PasswordOptions,
): Promise<PasswordResult> {
  const { failures, clientAddress } = options;
  if (type !== PASSWORD_MESSAGE) {
    throw new ProxyError('PROTOCOL_VIOLATION', `Expected a password message, got message type ${type}.`);
  }
  const end = body.indexOf(0);
  const password = body.toString('utf8', 0, end < 0 ? body.length : end);
  const hint = `Generate a database credential with: ${GENERATE_CREDENTIAL_COMMAND} <instance>, and use its token as the password.`;
  if (password.startsWith(PAT_PREFIX)) {
    failures.recordFailure(clientAddress);
    throw new ProxyError(
      'PAT_AS_PASSWORD',
      'Personal access tokens cannot be used as Postgres passwords; use a database credential instead.',
      { hint },
    );
  }
  const verdict = await options.passwords.verify(password, startup.user);
  if (!verdict.ok && verdict.reason === 'malformed' && options.allowNativePassword) {
    return { audience: [], nativePassword: password };
  }
  if (!verdict.ok) {
    failures.recordFailure(clientAddress);
    throw new ProxyError(
      VERDICT_KIND[verdict.reason] ?? 'TOKEN_MALFORMED',
      `password authentication failed for user "${startup.user}": ${verdict.message}`,
      { hint },
    );
  }
  failures.recordSuccess(clientAddress);
  return { audience: verdict.audience };
}

/**
 * Native login: the instance must allow it and the password must be the
 * role's own (its SCRAM verifier in the instance decides).
 */
export async function checkNativePassword(
  route: InstanceRoute,
  directory: ProxyDirectory,
  user: string,
  password: string,
  failures: AuthFailureLimiter,
  clientAddress: string,
): Promise<void> {
  const hint = `Generate a database credential with: ${GENERATE_CREDENTIAL_COMMAND} ${route.name}, and use its token as the password.`;
  if (!route.nativeLogin) {
    failures.recordFailure(clientAddress);
    throw new ProxyError(
      'TOKEN_MALFORMED',
      `password authentication failed for user "${user}": the password is not a database credential, and Postgres password login is off on instance '${route.name}'.`,
      { hint },
    );
  }
  if (!(await directory.verifyNativePassword?.(route, user, password))) {
    failures.recordFailure(clientAddress);
    throw new ProxyError('TOKEN_MALFORMED', `password authentication failed for user "${user}"`, {
      hint: `The password is neither a database credential nor ${user}'s Postgres password. ${hint}`,
    });
  }
  failures.recordSuccess(clientAddress);
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

/**
 * Slows down addresses that keep failing authentication: after `threshold`
 * failures each attempt waits 100 ms, doubling up to `maxDelayMs`. Bounded:
 * the oldest addresses are forgotten past `maxEntries`; a quiet minute or a
 * success forgives.
 */
export class AuthFailureLimiter {
  private readonly entries = new Map<string, { failures: number; lastAt: number }>();

  constructor(
    private readonly options: {
      threshold: number;
      maxDelayMs: number;
      maxEntries: number;
      forgetAfterMs: number;
    } = {
      threshold: 5,
      maxDelayMs: 3000,
      maxEntries: 10_000,
      forgetAfterMs: 60_000,
    },
    private readonly now: () => number = Date.now,
  ) {}

  delayFor(address: string): number {
    const entry = this.entries.get(address);
    if (!entry) return 0;
    if (this.now() - entry.lastAt > this.options.forgetAfterMs) {
      this.entries.delete(address);
      return 0;
    }
    const excess = entry.failures - this.options.threshold;
    if (excess < 0) return 0;
    return Math.min(100 * 2 ** Math.min(excess, 16), this.options.maxDelayMs);
  }

  recordFailure(address: string): void {
    const entry = this.entries.get(address);
    const failures =
      entry && this.now() - entry.lastAt <= this.options.forgetAfterMs ? entry.failures + 1 : 1;
    this.entries.delete(address); // re-insert: Map order is our LRU order
    this.entries.set(address, { failures, lastAt: this.now() });
    if (this.entries.size > this.options.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }

  recordSuccess(address: string): void {
    this.entries.delete(address);
  }

  get size(): number {
    return this.entries.size;
  }
}
