import type { Credential, CredentialSource } from './credential-source.js';

/**
 * A credential this close to expiry (a tenth of its lifetime, at most a
 * second) no longer opens sessions: a login must finish before it lapses.
 */
const LOGIN_MARGIN_MS = 1_000;

/** Reported (as the pool's `credentialError` event) each time a refresh fails. */
export interface CredentialRefreshError {
  error: Error;
  /** 1 for the first failure since the last success. */
  attempt: number;
  /** When the next attempt starts, in milliseconds from now. */
  retryInMs: number;
  /** When the credential in use stops opening sessions (epoch ms); undefined when there is none. */
  currentExpiresAt?: number;
}

export interface CredentialCacheOptions {
  source: CredentialSource;
  /** Refresh this long before expiry, or halfway through a shorter lifetime. */
  refreshBeforeMs: number;
  retry: { initialDelayMs: number; maxDelayMs: number };
  onRefresh(credential: Credential): void;
  onError(report: CredentialRefreshError): void;
}

/**
 * One credential shared by every connection of a pool. New sessions read it
 * without waiting; a timer replaces it ahead of expiry; at most one request
 * to the source runs at a time, however many connections ask. A failed
 * refresh is retried with exponential backoff (with jitter) while the
 * current credential keeps serving logins, so an API outage shorter than
 * the remaining lifetime is invisible to queries.
 *
 * @example
 * const cache = new CredentialCache({ source, refreshBeforeMs: 600_000,
 *   retry: { initialDelayMs: 1000, maxDelayMs: 30_000 }, onRefresh() {}, onError: console.warn });
 * const password = await cache.password();
 */
export class CredentialCache {
  #current: Credential | undefined;
  /** When #current stops being handed to new logins (epoch ms). */
  #usableUntil = 0;
  #pending: Promise<Credential> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #closed = false;
  /** Credentials obtained so far. */
  refreshes = 0;

  constructor(private readonly options: CredentialCacheOptions) {}

  /** The credential in use, if any. */
  get current(): Credential | undefined {
    return this.#current;
  }

  /**
   * The password for a new session: the cached credential while it is good
   * for a login, else a fresh one (waiting for the refresh in flight, if any).
   */
  password(): Promise<string> | string {
    if (this.#usableUntil > Date.now()) return this.#current!.token;
    return this.refresh().then((credential) => credential.token);
  }

  /** Gets a new credential now; concurrent calls share one request. */
  refresh(): Promise<Credential> {
    this.#pending ??= this.#fetch();
    return this.#pending;
  }

  /** Stops background refreshing (the pool is ending). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  async #fetch(): Promise<Credential> {
    clearTimeout(this.#timer);
    try {
      const credential = await this.options.source.fetchCredential();
      const lifetime = credential.expiresAt - Date.now();
      this.#current = credential;
      this.#usableUntil = credential.expiresAt - Math.min(LOGIN_MARGIN_MS, lifetime / 10);
      this.#failures = 0;
      this.refreshes++;
      this.#schedule(this.#refreshDelay(credential));
      this.options.onRefresh(credential);
      return credential;
    } catch (cause) {
      const error = cause instanceof Error ? cause : new Error(String(cause));
      this.#failures++;
      const retryInMs = this.#retryDelay();
      this.#schedule(retryInMs);
      this.options.onError({
        error,
        attempt: this.#failures,
        retryInMs,
        currentExpiresAt: this.#current?.expiresAt,
      });
      throw error;
    } finally {
      this.#pending = undefined;
    }
  }

  #refreshDelay(credential: Credential): number {
    const now = Date.now();
    const lifetime = credential.expiresAt - now;
    return Math.max(0, lifetime - Math.min(this.options.refreshBeforeMs, lifetime / 2));
  }

  #retryDelay(): number {
    const { initialDelayMs, maxDelayMs } = this.options.retry;
    const backoff = Math.min(maxDelayMs, initialDelayMs * 2 ** (this.#failures - 1));
    // Jitter spreads the retries of many pools that lost the API at the same moment.
    return Math.round(backoff * (0.5 + Math.random() / 2));
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      // A failure is already reported through onError; the timer has no one to throw to.
      this.refresh().catch(() => {});
    }, delayMs);
    // Background refreshing never keeps a process alive on its own.
    this.#timer.unref();
  }
}
