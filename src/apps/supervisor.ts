import { rm } from 'node:fs/promises';
import { noteFailure } from '../failures.js';
import type { ComponentFactory } from '../server/pier.js';
import { appDir } from './logs.js';
import { findMarkedProcesses, signalGroup, stopGroup } from './process.js';
import { AppRunner, endpointsKey } from './runner.js';
import { type AppRow, findDeployment, listNodeApps } from './store.js';

/** How often the supervisor looks at the apps of its node. */
const TICK_MS = 500;

/**
 * `pier up`'s app supervisor: runs the deployed apps of this node, one
 * AppRunner each. On start it looks in /proc for the processes a Pier that
 * was killed left running: the run each app recorded is adopted, anything
 * else of this node is ended, so an app never runs twice. Closing for
 * `pier down` stops every app; otherwise (the process is going away without
 * a stop, as after an update) they keep running for the next Pier.
 */
export const appSupervisor: ComponentFactory = async (ctx, options) => {
  const nodeId = ctx.config.nodeId;
  const runners = new Map<string, AppRunner>();
  let closed = false;
  let ticking = false;
  let adopted = false;

  const runnerFor = (app: AppRow) => {
    let runner = runners.get(app.name);
    if (!runner) {
      runner = new AppRunner(ctx, options.dataDir, app.name, app.status.restarts ?? 0);
      runners.set(app.name, runner);
    }
    return runner;
  };

  /** Adopts each app's recorded run if it is still alive; ends every other marked process of this node. */
  const adoptLeftovers = async (apps: AppRow[]) => {
    const found = await findMarkedProcesses(`${nodeId}/`);
    const keep = new Set<number>();
    for (const app of apps) {
      const { pid, run_id: runId, deployment_id: deploymentId } = app.status;
      const leader = found.find(
        (p) => p.pid === pid && p.pgid === pid && p.marker === `${nodeId}/${app.name}/${runId}`,
      );
      // A run given another API URL or proxy port (Pier came back on other ports) is replaced.
      const wanted =
        app.compute === 'ACTIVE' &&
        deploymentId === (app.pending_deployment_id ?? app.active_deployment_id) &&
        app.status.endpoints === endpointsKey(ctx);
      const deployment =
        leader && wanted && deploymentId
          ? await findDeployment(ctx.store, app.name, deploymentId)
          : undefined;
      if (leader && deployment) {
        await runnerFor(app).adopt(app, deployment);
        keep.add(leader.pgid);
      }
    }
    for (const pgid of new Set(found.map((p) => p.pgid))) if (!keep.has(pgid)) signalGroup(pgid, 'SIGKILL');
  };

  const tick = async () => {
    if (ticking || closed || !ctx.endpoints) return;
    ticking = true;
    try {
      const apps = await listNodeApps(ctx.store, nodeId);
      if (!adopted) {
        await adoptLeftovers(apps);
        adopted = true;
      }
      const names = new Set(apps.map((app) => app.name));
      for (const [name, runner] of runners) {
        if (names.has(name)) continue;
        // The app was deleted.
        runners.delete(name);
        await runner.stop('the app was deleted');
        await rm(appDir(options.dataDir, name), { recursive: true, force: true });
      }
      await Promise.all(apps.map((app) => runnerFor(app).sync(app)));
    } catch (error) {
      noteFailure('apps.tick', error);
    } finally {
      ticking = false;
    }
  };

  const timer = setInterval(() => void tick(), TICK_MS);
  void tick();
  return {
    close: async ({ stopInstances }) => {
      closed = true;
      clearInterval(timer);
      while (ticking) await new Promise((resolve) => setTimeout(resolve, 20));
      if (stopInstances) {
        await Promise.all([...runners.values()].map((runner) => runner.stop('Pier is stopping')));
        // Anything of this node still marked (a run being started as Pier stopped) goes too.
        for (const process of await findMarkedProcesses(`${nodeId}/`))
          await stopGroup(process.pgid, undefined, 1000);
      }
      runners.clear();
    },
  };
};
