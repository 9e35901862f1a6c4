import pg from 'pg';
import type { CredentialCache } from './credential-cache.js';

type ConnectCallback = (
  error: Error | undefined,
  client: pg.PoolClient | undefined,
  done: (release?: unknown) => void,
) => void;

/** Where a pool connects, when the options leave it to the API. */
export type TargetLookup = () => Promise<{ host: string; user: string }>;

/**
 * The class behind {@link createPool}: a `pg.Pool` whose password is its
 * credential cache, which first learns its host and user when they must
 * come from the API, and which stops the cache's timer when it ends. These
 * are methods of a subclass; checkout is node-postgres' own, so it runs as
 * fast as in a plain pool.
 */
export class RefreshingPool extends pg.Pool {
  readonly #credentials: CredentialCache;
  #lookup: TargetLookup | undefined;
  #looking: Promise<void> | undefined;

  constructor(
    config: pg.PoolConfig,
    credentials: (pool: RefreshingPool) => CredentialCache,
    lookup?: TargetLookup,
  ) {
    let cache: CredentialCache | undefined;
    super({ ...config, password: () => cache!.password() });
    cache = credentials(this);
    this.#credentials = cache;
    if (lookup) {
      this.#lookup = lookup;
      // An own property only while the target is unknown, then node-postgres' own method
      // again: checkout stays exactly a plain pool's (no wrapper, no extra branch).
      this.connect = this.#connectOnceTargetKnown as typeof this.connect;
    }
  }

  /** The credential every new connection logs in with. */
  get credentials(): CredentialCache {
    return this.#credentials;
  }

  override end(): Promise<void>;
  override end(callback: () => void): void;
  override end(callback?: () => void): Promise<void> | undefined {
    this.#credentials.close();
    if (callback) {
      super.end(callback);
      return undefined;
    }
    return super.end();
  }

  #connectOnceTargetKnown = (callback?: ConnectCallback): Promise<pg.PoolClient> | undefined => {
    const ready = this.#target();
    if (!callback) return ready.then(() => this.connect());
    ready.then(
      () => this.connect(callback),
      (error: Error) => callback(error, undefined, () => {}),
    );
    return undefined;
  };

  /** Looks the target up once (again after a failure), then puts node-postgres' connect back. */
  #target(): Promise<void> {
    this.#looking ??= this.#lookup!().then(
      (target) => {
        Object.assign(this.options, target);
        this.connect = pg.Pool.prototype.connect;
      },
      (error: unknown) => {
        this.#looking = undefined;
        throw error;
      },
    );
    return this.#looking;
  }
}
