/**
 * What the proxy needs to know from the control plane, as two small
 * interfaces. The proxy never imports the store: the control plane's
 * implementation (src/server/instance-directory.ts) answers from a cached
 * routing table, rebuilt whenever the reconciler acts and every 2 s; tests
 * answer from a Map. Calls are synchronous because they run on every connection and
 * must not wait on the store.
 */

/** Instance states as the Databricks API names them. Only AVAILABLE accepts connections. */
export type InstanceState =
  | 'AVAILABLE'
  | 'STARTING'
  | 'STOPPED'
  | 'STOPPING'
  | 'UPDATING'
  | 'DELETING'
  | 'FAILING'
  | string;

export interface InstanceRoute {
  name: string;
  uid: string;
  state: InstanceState;
  /** `read_write_dns`: the name clients connect to and send as TLS SNI. */
  dnsName: string;
  /** This instance's own loopback address (e.g. 127.1.0.7), if it has one. */
  address?: string;
  /** Private directory holding the instance's `.s.PGSQL.5432` socket. */
  socketDir: string;
  /** `enable_pg_native_login`: roles with a Postgres password may log in with it. */
  nativeLogin?: boolean;
  /**
   * Set on an instance's read-only route (`read_only_dns`): the socket
   * directories of its streaming secondaries. Each new connection goes to
   * the next one in turn; none streaming, the connection is refused.
   */
  secondarySocketDirs?: string[];
  /** Stopped only because it was idle (scale to zero): a client connection wakes it (`ProxyDirectory.wake`). */
  wakeOnConnect?: boolean;
}

export interface ProxyDirectory {
  byName(name: string): InstanceRoute | undefined;
  byUid(uid: string): InstanceRoute | undefined;
  /** Case-insensitive match on `dnsName`. */
  byDnsName(host: string): InstanceRoute | undefined;
  byAddress(ip: string): InstanceRoute | undefined;
  /**
   * Optional: the command that creates `role` on `instance`, shown as a hint
   * when the backend says the role does not exist (e.g. the Databricks
   * `create-database-instance-role` call). Without it a generic hint is given.
   */
  createRoleHint?(instance: InstanceRoute, role: string): string;
  /**
   * Optional: whether `password` is `user`'s own Postgres password on the
   * instance (native login, for instances with `nativeLogin`). Runs before
   * the client is authenticated, so it must be bounded in time and in how
   * many run at once; 'too_costly' is a verifier it refused to compute.
   * Whatever it answers or throws, the client is told the same.
   */
  verifyNativePassword?(
    instance: InstanceRoute,
    user: string,
    password: string,
  ): Promise<NativePasswordVerdict>;
  /** Scale to zero (see WakingDirectory); without it, only AVAILABLE instances are routed. */
  waking?: WakingDirectory;
}

/**
 * Optional parts of a directory for instances that scale to zero: the proxy
 * says when a client session starts and ends (the control plane suspends an
 * instance no client has used for its timeout), and asks to wake a
 * suspended instance, holding the client until it is AVAILABLE.
 */
export interface WakingDirectory {
  /**
   * Starts a suspended instance and resolves with its route once it accepts
   * connections; rejects (a ProxyError the client is shown) if it cannot.
   */
  wake(route: InstanceRoute, signal: AbortSignal): Promise<InstanceRoute>;
  sessionStarted(route: InstanceRoute): void;
  sessionEnded(route: InstanceRoute): void;
}

export type NativePasswordVerdict = 'match' | 'mismatch' | 'too_costly';

export type PasswordVerdict =
  | { ok: true /** Instance uids the credential opens. */; audience: string[] }
  | {
      ok: false;
      /** Which check failed; decides the SQLSTATE and log label. */
      reason:
        | 'malformed'
        | 'expired'
        | 'bad_signature'
        | 'unknown_kid'
        | 'wrong_issuer'
        | 'wrong_user'
        | 'not_yet_valid'
        /** The user name is one Postgres or Pier reserves, or too long for a role. */
        | 'user_not_allowed'
        /** The credential's identity was deleted or deactivated, or the credential names none. */
        | 'identity_revoked';
      /** Shown to the client as is: say what failed and what to do. */
      message: string;
    };

/**
 * Checks a password presented for `user`: signature, expiry, issuer, and that
 * the token's subject is `user`. The audience is checked by the proxy once it
 * knows which instance the client wants.
 */
export interface PasswordCheck {
  verify(password: string, user: string): Promise<PasswordVerdict>;
}

/**
 * A directory over a fixed list, for tests and single-instance setups.
 *
 * @example
 * const directory = staticDirectory([{ name: 'db1', uid, state: 'AVAILABLE', dnsName: 'db1.pier.localhost', socketDir }]);
 */
export function staticDirectory(routes: InstanceRoute[]): ProxyDirectory & { routes: InstanceRoute[] } {
  return {
    routes,
    byName: (name) => routes.find((route) => route.name === name),
    byUid: (uid) => routes.find((route) => route.uid === uid),
    byDnsName: (host) => routes.find((route) => route.dnsName.toLowerCase() === host.toLowerCase()),
    byAddress: (ip) => routes.find((route) => route.address === ip),
  };
}
