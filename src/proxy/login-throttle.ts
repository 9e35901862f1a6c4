import { clientKey } from './connection-caps.js';
import { ProxyError } from './errors.js';
import { KeyedSlots } from './slots.js';

/**
 * Failed logins, counted per client address (an IPv6 client by its /64:
 * `clientKey`) across all its connections.
 * An address with `maxFailures` failures in the last `forgetAfterMs` is
 * refused, with the time to wait, until its last failure is that old. So
 * that parallel connections cannot all guess before the first failure is
 * counted, passwords from one address are checked at most `maxFailures −
 * failures so far` at a time (one at a time just below the limit); the rest
 * wait in line. Bounded: at most `maxEntries` addresses with failures are
 * remembered (the least recently failing ones are dropped first).
 */
export interface LoginThrottleOptions {
  maxFailures: number;
  forgetAfterMs: number;
  maxEntries: number;
}

const DEFAULT_LOGIN_THROTTLE: LoginThrottleOptions = {
  maxFailures: 10,
  forgetAfterMs: 60_000,
  maxEntries: 10_000,
};

/** One password check in progress: exactly one of its methods ends it. */
export interface LoginAttempt {
  succeeded(): void;
  failed(): void;
}

export class LoginThrottle {
  private readonly failures = new Map<string, { count: number; lastAt: number }>();
  private readonly checking = new KeyedSlots();
  readonly options: LoginThrottleOptions;

  constructor(
    options: Partial<LoginThrottleOptions> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.options = { ...DEFAULT_LOGIN_THROTTLE, ...options };
  }

  /** Throws the refusal for an address over the limit; cheap, so it runs before a password is asked for. */
  refuseIfThrottled(clientAddress: string): void {
    const address = clientKey(clientAddress);
    const entry = this.recent(address);
    if (!entry || entry.count < this.options.maxFailures) return;
    const waitSeconds = Math.max(
      1,
      Math.ceil((entry.lastAt + this.options.forgetAfterMs - this.now()) / 1000),
    );
    throw new ProxyError(
      'LOGIN_THROTTLED',
      `Too many failed logins from ${address}: ${entry.count} in the last ${Math.round(this.options.forgetAfterMs / 1000)} s. Try again in ${waitSeconds} s.`,
      {
        hint: "Check the user name and the password before retrying: the password is a database credential (pier database generate-database-credential) or, where the instance allows it, the role's Postgres password.",
      },
    );
  }

  /**
   * Waits for this address's turn to have a password checked (refused if it
   * went over the limit meanwhile). `signal` gives up the place in line when
   * the connection ends.
   */
  async begin(clientAddress: string, signal?: AbortSignal): Promise<LoginAttempt> {
    const address = clientKey(clientAddress);
    this.refuseIfThrottled(address);
    const width = () => this.options.maxFailures - (this.recent(address)?.count ?? 0);
    const release = await this.checking.acquire(address, width, signal);
    try {
      this.refuseIfThrottled(address);
    } catch (error) {
      release();
      throw error;
    }
    let ended = false;
    return {
      succeeded: () => {
        if (ended) return;
        ended = true;
        release();
      },
      failed: () => {
        if (ended) return;
        ended = true;
        this.recordFailure(address); // before release: who is next in line sees it
        release();
      },
    };
  }

  /** Addresses with failures remembered, plus those with a check in progress. */
  get size(): number {
    return this.failures.size + this.checking.size;
  }

  private recent(address: string): { count: number; lastAt: number } | undefined {
    const entry = this.failures.get(address);
    if (entry && this.now() - entry.lastAt > this.options.forgetAfterMs) {
      this.failures.delete(address);
      return undefined;
    }
    return entry;
  }

  private recordFailure(address: string): void {
    const count = (this.recent(address)?.count ?? 0) + 1;
    this.failures.delete(address); // re-inserted last: Map order is the eviction order
    this.failures.set(address, { count, lastAt: this.now() });
    if (this.failures.size > this.options.maxEntries) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
  }
}
