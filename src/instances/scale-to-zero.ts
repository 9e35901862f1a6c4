import { setTimeout as sleep } from 'node:timers/promises';
import type { ControlContext } from '../control/context.js';
import { noteFailure } from '../failures.js';
import { type InstanceRoute, ProxyError, type WakingDirectory } from '../proxy/index.js';
import { findInstanceByUid, updateInstanceSpec } from './store.js';

/** How often idle instances are looked at. */
const CHECK_INTERVAL_MS = 500;
/** A wake that takes longer than this fails the client's connection (it may retry). */
const WAKE_TIMEOUT_MS = 60_000;

/** What the scale-to-zero loop reads of the routing table. */
export interface IdleRoutes {
  byUid(uid: string): InstanceRoute | undefined;
  /** Instances that stop after this many idle seconds, by uid. */
  suspendTimeouts(): Map<string, number>;
}

/**
 * Scale to zero for instances with `suspend_timeout_seconds` (Lakebase
 * Autoscaling endpoints): the proxy counts each instance's client sessions;
 * one with none for its timeout is suspended (its server stopped, `stopped`
 * and `suspended` in its spec, so the reconciler stops it and a restart of
 * Pier keeps it stopped); the next client connection wakes it: the spec is
 * set running again and the client waits until the reconciler reports it
 * AVAILABLE.
 */
export class ScaleToZero implements WakingDirectory {
  private readonly sessions = new Map<string, number>();
  private readonly lastActive = new Map<string, number>();
  private readonly wakes = new Map<string, Promise<void>>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly ctx: ControlContext,
    private readonly routes: IdleRoutes,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.suspendIdle(), CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  sessionStarted(route: InstanceRoute): void {
    this.sessions.set(route.uid, (this.sessions.get(route.uid) ?? 0) + 1);
    this.lastActive.set(route.uid, Date.now());
  }

  sessionEnded(route: InstanceRoute): void {
    const left = (this.sessions.get(route.uid) ?? 1) - 1;
    if (left > 0) this.sessions.set(route.uid, left);
    else this.sessions.delete(route.uid);
    this.lastActive.set(route.uid, Date.now());
  }

  /** When a client last used the instance through the proxy (undefined: not since Pier started). */
  lastActiveTime(uid: string): Date | undefined {
    const at = this.lastActive.get(uid);
    return at === undefined ? undefined : new Date(at);
  }

  woken(uid: string): void {
    // Forgotten, the last use counts from the first time the instance is seen running again.
    this.lastActive.delete(uid);
  }

  async wake(route: InstanceRoute, signal: AbortSignal): Promise<InstanceRoute> {
    this.lastActive.set(route.uid, Date.now());
    let waking = this.wakes.get(route.uid);
    if (!waking) {
      // Clients connecting at once share one wake.
      waking = this.resume(route.uid).finally(() => this.wakes.delete(route.uid));
      this.wakes.set(route.uid, waking);
    }
    await waking;
    const deadline = Date.now() + WAKE_TIMEOUT_MS;
    for (;;) {
      const current = this.routes.byUid(route.uid);
      if (!current) throw new ProxyError('INSTANCE_NOT_FOUND', `Endpoint '${route.name}' no longer exists.`);
      if (current.state === 'AVAILABLE') return current;
      if (signal.aborted || Date.now() > deadline) {
        throw new ProxyError('INSTANCE_NOT_AVAILABLE', `Endpoint '${route.name}' did not wake up in time.`, {
          hint: 'Connect again in a moment.',
        });
      }
      await sleep(2);
    }
  }

  private async resume(uid: string): Promise<void> {
    await resumeSuspended(this.ctx, uid);
  }

  /** Suspends every instance idle past its timeout. */
  private async suspendIdle(): Promise<void> {
    const now = Date.now();
    for (const [uid, timeoutSeconds] of this.routes.suspendTimeouts()) {
      const route = this.routes.byUid(uid);
      if (route?.state !== 'AVAILABLE' || this.sessions.get(uid) || this.wakes.has(uid)) continue;
      const since = this.lastActive.get(uid);
      if (since === undefined) {
        this.lastActive.set(uid, now); // first seen running: the timeout counts from now
        continue;
      }
      if (now - since < timeoutSeconds * 1000) continue;
      await this.suspend(uid).catch((error) => noteFailure('scale-to-zero.suspend', error));
    }
  }

  private async suspend(uid: string): Promise<void> {
    const row = await this.ctx.store.transaction(async (tx) => {
      await tx.query('SELECT 1 FROM instances WHERE uid = $1 FOR UPDATE', [uid]);
      const current = await findInstanceByUid(tx, uid);
      if (!current || current.spec.stopped || current.spec.deleted || !current.spec.suspend_timeout_seconds)
        return undefined;
      return updateInstanceSpec(tx, uid, { ...current.spec, stopped: true, suspended: true });
    });
    if (row) this.ctx.reconciler.kick(uid);
  }
}

/** Sets a suspended instance running again (the reconciler starts it); false if it was not suspended. */
export async function resumeSuspended(ctx: ControlContext, uid: string): Promise<boolean> {
  const resumed = await ctx.store.transaction(async (tx) => {
    await tx.query('SELECT 1 FROM instances WHERE uid = $1 FOR UPDATE', [uid]);
    const current = await findInstanceByUid(tx, uid);
    if (!current?.spec.suspended || current.spec.deleted) return false;
    await updateInstanceSpec(tx, uid, { ...current.spec, stopped: false, suspended: false });
    return true;
  });
  if (resumed) ctx.reconciler.kick(uid);
  return resumed;
}
