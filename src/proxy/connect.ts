import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type BackendSession, backendPoolKey, reportParameter } from './backend-session.js';
import type { InstanceRoute, ProxyDirectory } from './directory.js';
import { BackendErrorResponse, ProxyError } from './errors.js';
import type { WarmPool } from './pool.js';
import { PacketReader, ProtocolViolation, parseErrorFields, StartupMessage } from './protocol.js';
import type { Startup } from './startup.js';

/**
 * Connects to the instance's Postgres over its private unix socket as the
 * client's role (trust authentication: only Pier can reach the socket) and
 * reads the startup answer up to ReadyForQuery. What the client is then sent
 * (AuthenticationOk, ParameterStatus, the proxy's own BackendKeyData,
 * ReadyForQuery) is built from this session.
 */

/** Postgres names its socket after the port; instances all use 5432 in their own directory. */
const SOCKET_FILE = '.s.PGSQL.5432';

const MAX_BACKEND_MESSAGE = 1 << 20;

async function connectBackend(
  route: InstanceRoute,
  startup: Startup,
  options: { directory: ProxyDirectory; timeoutMs: number },
): Promise<BackendSession> {
  const socketPath = join(route.socketDir, SOCKET_FILE);
  const socket = connect({ path: socketPath });
  const timer = setTimeout(() => socket.destroy(new Error('timeout')), options.timeoutMs);
  const reader = new PacketReader(socket);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.write(StartupMessage({ user: startup.user, database: startup.database, ...startup.parameters }));
    const session: BackendSession = {
      socket,
      socketPath,
      poolKey: backendPoolKey(route, startup),
      processId: 0,
      secretKey: 0,
      parameters: new Map(),
      notices: [],
    };
    for (;;) {
      const { type, body } = await reader.readMessage(MAX_BACKEND_MESSAGE);
      if (type === 0x52 /* Authentication */) {
        const code = body.readInt32BE(0);
        if (code !== 0) {
          throw new ProxyError(
            'BACKEND_REFUSED',
            `Database instance '${route.name}' asked for authentication.`,
            {
              hint: 'Its pg_hba.conf must trust the private socket; see the server log.',
            },
          );
        }
      } else if (type === 0x53 /* ParameterStatus */) {
        const [name, value] = body.toString('utf8').split('\0');
        reportParameter(session, name, value);
      } else if (type === 0x4b /* BackendKeyData */) {
        session.processId = body.readInt32BE(0);
        session.secretKey = body.readInt32BE(4);
      } else if (type === 0x4e /* NoticeResponse */) {
        session.notices.push(Buffer.concat([Buffer.from([type, 0, 0, 0, 0]), body]));
        session.notices.at(-1)?.writeInt32BE(4 + body.length, 1);
      } else if (type === 0x45 /* ErrorResponse */) {
        throw backendError(parseErrorFields(body), route, startup, options.directory);
      } else if (type === 0x5a /* ReadyForQuery */) {
        const rest = reader.detach();
        if (rest.length > 0)
          throw new ProxyError('PROTOCOL_VIOLATION', 'The backend sent data after ReadyForQuery.');
        return session;
      }
    }
  } catch (error) {
    reader.detach();
    socket.destroy();
    if (error instanceof ProxyError || error instanceof BackendErrorResponse) throw error;
    const reason = error instanceof ProtocolViolation ? error.message : (error as NodeJS.ErrnoException).code;
    throw new ProxyError(
      'BACKEND_UNREACHABLE',
      `Database instance '${route.name}' did not accept the connection.`,
      {
        hint: `Check its state with: pier database get-database-instance ${route.name}`,
        cause: new Error(String(reason)),
      },
    );
  } finally {
    clearTimeout(timer);
  }
}

/** The backend's own error, relayed, with a hint where Pier knows the fix. */
function backendError(
  fields: Map<string, string>,
  route: InstanceRoute,
  startup: Startup,
  directory: ProxyDirectory,
): BackendErrorResponse {
  const code = fields.get('C');
  const message = fields.get('M') ?? '';
  if (code === '28000' && /role .* does not exist/.test(message) && !fields.has('H')) {
    fields.set(
      'H',
      directory.createRoleHint?.(route, startup.user) ??
        `Create the role with: pier database create-database-instance-role ${route.name} --json '{"name": "${startup.user}", "identity_type": "USER"}'`,
    );
  } else if (code === '3D000' && !fields.has('H')) {
    fields.set(
      'H',
      `Create the database first, e.g. connect to database "postgres" and run: CREATE DATABASE "${startup.database}"`,
    );
  }
  return new BackendErrorResponse(fields);
}

/**
 * A session for this client: a warm one from the pool when one matches,
 * else a new backend. When Postgres is out of connection slots, idle warm
 * sessions of the same instance are closed and the connect is tried again.
 */
export async function acquireBackend(
  route: InstanceRoute,
  startup: Startup,
  options: { directory: ProxyDirectory; timeoutMs: number; pool: WarmPool },
): Promise<BackendSession> {
  const warm = options.pool.take(backendPoolKey(route, startup));
  if (warm) return warm;
  try {
    return await connectBackend(route, startup, options);
  } catch (error) {
    const outOfSlots = error instanceof BackendErrorResponse && error.sqlstate === '53300';
    if (
      !outOfSlots ||
      options.pool.closeIdle((session) => session.socketPath.startsWith(route.socketDir)) === 0
    ) {
      throw error;
    }
    await sleep(50); // the closed backends' slots free once their processes exit
    return connectBackend(route, startup, options);
  }
}
