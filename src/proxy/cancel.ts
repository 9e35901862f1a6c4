import { randomInt } from 'node:crypto';
import { connect } from 'node:net';
import { CancelRequest } from './protocol.js';

/**
 * Query cancellation. Clients never see a backend's real BackendKeyData:
 * the proxy hands each session its own random key and remembers which
 * backend it stands for, so a CancelRequest (which arrives on a new
 * connection, before any authentication) reaches the right backend, and a
 * key guessed or kept from an earlier session reaches nothing.
 */

export interface BackendKey {
  socketPath: string;
  processId: number;
  secretKey: number;
}

export interface CancelKey {
  processId: number;
  secretKey: number;
}

export class CancelMap {
  private readonly sessions = new Map<string, BackendKey>();

  /** Issues the key a new client session is given in place of `backend`'s. */
  register(backend: BackendKey): CancelKey {
    for (;;) {
      const key = { processId: randomInt(1, 2 ** 31 - 1), secretKey: randomInt(-(2 ** 31), 2 ** 31 - 1) };
      const id = keyId(key);
      if (this.sessions.has(id)) continue;
      this.sessions.set(id, backend);
      return key;
    }
  }

  unregister(key: CancelKey): void {
    this.sessions.delete(keyId(key));
  }

  /**
   * Forwards a CancelRequest to the backend the key stands for. Unknown keys
   * are ignored silently, as Postgres does: the requester learns nothing.
   */
  async forward(key: CancelKey): Promise<void> {
    const backend = this.sessions.get(keyId(key));
    if (!backend) return;
    await new Promise<void>((resolve) => {
      const socket = connect({ path: backend.socketPath });
      const timer = setTimeout(() => socket.destroy(), 5000);
      timer.unref();
      socket.once('connect', () => socket.end(CancelRequest(backend.processId, backend.secretKey)));
      socket.on('error', () => {});
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.resume();
    });
  }

  get size(): number {
    return this.sessions.size;
  }
}

function keyId(key: CancelKey): string {
  return `${key.processId}:${key.secretKey}`;
}
