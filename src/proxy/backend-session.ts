import type { Socket } from 'node:net';
import type { InstanceRoute } from './directory.js';
import { ParameterStatus } from './protocol.js';
import type { Startup } from './startup.js';

/**
 * One authenticated session with an instance's Postgres, as the proxy holds
 * it: while a client uses it, and while it waits warm in the pool. Both the
 * connect (connect.ts) and the pool (pool.ts) work on it; it depends on neither.
 */
export interface BackendSession {
  socket: Socket;
  socketPath: string;
  /** Sessions are interchangeable only when this matches: instance, role, database, parameters. */
  poolKey: string;
  processId: number;
  secretKey: number;
  /** The backend's reported parameters, kept current across resets (change them with `reportParameter`). */
  parameters: Map<string, string>;
  /** Their ParameterStatus messages, built once per change: every client of the session is sent them. */
  parameterStatus?: Buffer;
  /**
   * Once the native path has spliced it: C's handle for the session, which C
   * reads from then on (Node's socket stays stopped; destroying it closes both).
   */
  native?: unknown;
  /** NoticeResponse messages the backend sent while starting, relayed to the first client. */
  notices: Buffer[];
}

/** The key under which warm sessions for this route and startup wait. */
export function backendPoolKey(route: InstanceRoute, startup: Startup): string {
  const parameters = Object.entries(startup.parameters).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([route.socketDir, startup.user, startup.database, parameters]);
}

/** Records a ParameterStatus the backend sent. */
export function reportParameter(session: BackendSession, name: string, value: string): void {
  session.parameters.set(name, value);
  session.parameterStatus = undefined;
}

/** The session's ParameterStatus messages, as each client is sent them. */
export function parameterStatusMessages(session: BackendSession): Buffer {
  session.parameterStatus ??= Buffer.concat(
    [...session.parameters].map(([name, value]) => ParameterStatus(name, value)),
  );
  return session.parameterStatus;
}
