import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { type BackendSession, reportParameter } from './backend-session.js';
import { PacketReader, Query } from './protocol.js';

/**
 * Warm backend sessions. Starting a Postgres backend costs more than the
 * whole TLS handshake, so a session whose client left cleanly (Terminate
 * while the backend was idle) is reset with DISCARD ALL and kept for the
 * next client with the same instance, role, database and parameters.
 *
 * A session is pooled only when the reset provably ran in a clean state:
 * DISCARD ALL completed outside a transaction, then a SELECT of a random
 * nonce came back, then ReadyForQuery 'I'. Anything else — an error, an
 * unexpected message, a timeout, data while idle — and it is closed.
 */
export interface WarmPoolOptions {
  /** Idle sessions kept per key. 0 disables pooling. */
  maxIdlePerKey: number;
  idleTimeoutMs: number;
  resetTimeoutMs: number;
}

export const DEFAULT_WARM_POOL: WarmPoolOptions = {
  maxIdlePerKey: 16,
  idleTimeoutMs: 10_000,
  resetTimeoutMs: 2_000,
};

interface IdleSession {
  session: BackendSession;
  timer: NodeJS.Timeout;
  onIdleEvent: () => void;
}

export class WarmPool {
  private readonly idle = new Map<string, IdleSession[]>();
  /** Sessions being reset per key: they count against the idle limit already. */
  private readonly resetting = new Map<string, number>();

  constructor(readonly options: WarmPoolOptions = DEFAULT_WARM_POOL) {}

  get enabled(): boolean {
    return this.options.maxIdlePerKey > 0;
  }

  /** A reset, idle session for `poolKey`, if one is waiting. */
  take(poolKey: string): BackendSession | undefined {
    const list = this.idle.get(poolKey);
    const entry = list?.pop();
    if (!entry) return undefined;
    if (list?.length === 0) this.idle.delete(poolKey);
    this.unwatch(entry);
    return entry.session;
  }

  /** Whether a session for `poolKey` released now would be kept. */
  hasRoom(poolKey: string): boolean {
    const resetting = this.resetting.get(poolKey) ?? 0;
    return this.enabled && (this.idle.get(poolKey)?.length ?? 0) + resetting < this.options.maxIdlePerKey;
  }

  /**
   * Resets the session with `reset` (the connection's: `resetSession` here,
   * or C's on the native path) and keeps it, or closes it if it cannot be
   * proven clean. At most `maxIdlePerKey` per key are kept or being reset.
   */
  async release(
    session: BackendSession,
    reset: (session: BackendSession) => Promise<boolean>,
  ): Promise<void> {
    const key = session.poolKey;
    if (!this.hasRoom(key)) {
      session.socket.destroy();
      return;
    }
    const resetting = this.resetting.get(key) ?? 0;
    this.resetting.set(key, resetting + 1);
    let clean: boolean;
    try {
      clean = await reset(session);
    } finally {
      const left = (this.resetting.get(key) ?? 1) - 1;
      if (left > 0) this.resetting.set(key, left);
      else this.resetting.delete(key);
    }
    if (!clean) {
      session.socket.destroy();
      return;
    }
    this.keep(session);
  }

  /** Keeps a session that is clean (never used, or reset), if there is room. */
  keep(session: BackendSession): void {
    if (!this.hasRoom(session.poolKey) || session.socket.destroyed) {
      session.socket.destroy();
      return;
    }
    session.notices = [];
    const entry: IdleSession = {
      session,
      timer: setTimeout(() => this.evict(entry), this.options.idleTimeoutMs),
      onIdleEvent: () => this.evict(entry),
    };
    entry.timer.unref();
    // An idle backend has nothing to say; if it speaks (shutdown notice) or closes, drop it.
    // The native path watches its sessions itself and calls `forget`.
    if (!session.native) {
      session.socket.on('data', entry.onIdleEvent);
      session.socket.on('close', entry.onIdleEvent);
      session.socket.on('error', entry.onIdleEvent);
      session.socket.resume();
    }
    const current = this.idle.get(session.poolKey) ?? [];
    current.push(entry);
    this.idle.set(session.poolKey, current);
  }

  /** Closes idle sessions (all, or those `filter` selects), e.g. before dropping a database or role. */
  closeIdle(filter: (session: BackendSession) => boolean = () => true): number {
    let closed = 0;
    for (const list of [...this.idle.values()]) {
      for (const entry of [...list]) {
        if (filter(entry.session)) {
          this.evict(entry);
          closed++;
        }
      }
    }
    return closed;
  }

  /** Drops a session that spoke or closed while idle (the native path's watch). */
  forget(session: BackendSession): void {
    const entry = this.idle.get(session.poolKey)?.find((candidate) => candidate.session === session);
    if (entry) this.evict(entry);
    else session.socket.destroy();
  }

  get idleCount(): number {
    let count = 0;
    for (const list of this.idle.values()) count += list.length;
    return count;
  }

  private evict(entry: IdleSession): void {
    const list = this.idle.get(entry.session.poolKey);
    const index = list?.indexOf(entry) ?? -1;
    if (list && index >= 0) {
      list.splice(index, 1);
      if (list.length === 0) this.idle.delete(entry.session.poolKey);
    }
    this.unwatch(entry);
    entry.session.socket.destroy();
  }

  private unwatch(entry: IdleSession): void {
    clearTimeout(entry.timer);
    if (entry.session.native) return;
    entry.session.socket.pause();
    entry.session.socket.off('data', entry.onIdleEvent);
    entry.session.socket.off('close', entry.onIdleEvent);
    entry.session.socket.off('error', entry.onIdleEvent);
  }
}

const COMMAND_COMPLETE = 0x43;
const DATA_ROW = 0x44;
const ROW_DESCRIPTION = 0x54;
const READY_FOR_QUERY = 0x5a;
const PARAMETER_STATUS = 0x53;

/**
 * The reset on a Node socket: DISCARD ALL, then the clean-state check. True
 * when the session provably ended clean; it is then ready for the next
 * client. `socket`: where the session's bytes flow, its Node socket unless
 * the native path holds it (native-backend.ts `heldBackendChannel`).
 */
export async function resetSession(
  session: BackendSession,
  timeoutMs: number,
  socket: Duplex = session.socket,
): Promise<boolean> {
  const nonce = `pier-reset-${randomBytes(12).toString('hex')}`;
  if (socket.destroyed) return false;
  const reader = new PacketReader(socket);
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  try {
    socket.write(Buffer.concat([Query('DISCARD ALL'), Query(`SELECT '${nonce}'`)]));
    socket.resume();
    // The last messages seen, newest last: the clean ending is fixed.
    const recent: string[] = [];
    let budget = 64 << 20; // stale output of the previous client may precede ours; bounded
    for (;;) {
      const { type, body } = await reader.readMessage(16 << 20);
      budget -= body.length + 5;
      if (budget < 0) return false;
      if (type === PARAMETER_STATUS) {
        const [name, value] = body.toString('utf8').split('\0');
        reportParameter(session, name, value);
        continue;
      }
      let label = String.fromCharCode(type);
      if (type === COMMAND_COMPLETE) label = `C:${body.toString('utf8', 0, body.length - 1)}`;
      else if (type === READY_FOR_QUERY) label = `Z:${String.fromCharCode(body[0])}`;
      else if (type === DATA_ROW) label = body.includes(nonce) ? 'D:nonce' : 'D';
      else if (type === ROW_DESCRIPTION) label = 'T';
      recent.push(label);
      if (recent.length > 6) recent.shift();
      if (label === 'Z:I' && recent.join(',') === 'C:DISCARD ALL,Z:I,T,D:nonce,C:SELECT 1,Z:I') {
        return reader.detach().length === 0;
      }
    }
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    reader.detach();
  }
}
