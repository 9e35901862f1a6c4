/**
 * Pier's Postgres proxy: mandatory TLS, database credentials (JWTs) as
 * passwords, routing to instances, query cancellation, then a raw splice.
 * See docs/proxy.md.
 */
export { GENERATE_CREDENTIAL_COMMAND } from './auth.js';
export type { ProxyEvent, ProxyLimits } from './connection.js';
export { DEFAULT_CONNECTION_CAPS } from './connection-caps.js';
export { credentialPasswordCheck } from './credential-check.js';
export type {
  InstanceRoute,
  InstanceState,
  NativePasswordVerdict,
  PasswordCheck,
  PasswordVerdict,
  ProxyDirectory,
  WakingDirectory,
} from './directory.js';
export { staticDirectory } from './directory.js';
export type { ProxyErrorKind } from './errors.js';
export { ProxyError, sqlstateOf } from './errors.js';
export type { LoginThrottleOptions } from './login-throttle.js';
export type { WarmPoolOptions } from './pool.js';
export { DEFAULT_LIMITS, type PierProxy, type ProxyOptions, startProxy } from './server.js';
export { KeyedSlots } from './slots.js';
export { loadTlsMaterial, type TlsMaterial, type TlsSource } from './tls.js';
