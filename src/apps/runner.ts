import { randomUUID } from 'node:crypto';
import { chmod, chown, copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ControlContext } from '../control/context.js';
import { isPierError } from '../errors.js';
import { noteFailure } from '../failures.js';
import { deploymentEnvironment } from './deployments.js';
import { baseEnvironment, expandCommand, withPort } from './environment.js';
import { appDir, appLogFile, lastLines, logLine, openLogForProcess, rotateIfLarge } from './logs.js';
import {
  freePort,
  listening,
  processStart,
  RUN_MARKER,
  type RunAs,
  runAsFor,
  sameProcessAlive,
  spawnApp,
  stopGroup,
  unreachableFor,
} from './process.js';
import { appUrl } from './service.js';
import {
  type AppRow,
  type AppStatus,
  type DeploymentRow,
  findDeployment,
  finishDeployment,
  writeAppStatus,
} from './store.js';

/** How long a new deployment has to listen on its port before it is FAILED. */
const LISTEN_DEADLINE_MS = 60_000;
/** Restart backoff after a crash: doubling from the first, at most the last. */
const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 60_000;
/** A process that ran this long without crashing starts the backoff afresh. */
const STEADY_MS = 60_000;

/** What an app's environment depends on besides its deployment: where Pier's API and proxy listen. */
export function endpointsKey(ctx: ControlContext): string {
  return `${ctx.endpoints?.apiUrl} ${ctx.endpoints?.proxyPort}`;
}

/** The process of an app's run, started here or adopted from a Pier that was killed. */
interface Run {
  pid: number;
  startTicks: string | undefined;
  runId: string;
  deployment: DeploymentRow;
  port: number;
  startedAt: number;
  /** The port answered: the deployment is RUNNING. */
  listened: boolean;
  exitCode?: number | null;
  signal?: NodeJS.Signals | null;
  /** Ended by Pier (stop, redeploy), not a crash. */
  stopping?: boolean;
}

/**
 * Runs one app on this node: starts its deployment's command, watches it,
 * restarts it after a crash with backoff, swaps in a new deployment, stops
 * it. `sync` is called on every tick with the app's row; only one step runs
 * at a time. What it observes goes to the app's status (the only writer).
 */
export class AppRunner {
  private run: Run | undefined;
  private busy = false;
  private restarts = 0;
  private notBefore = 0;
  private lastStatus = '';

  constructor(
    private readonly ctx: ControlContext,
    private readonly dataDir: string,
    readonly name: string,
    restarts = 0,
  ) {
    this.restarts = restarts;
  }

  get logFile(): string {
    return appLogFile(this.dataDir, this.name);
  }

  /** Takes over a process a killed Pier left running (found by its marker, and matching the recorded run). */
  async adopt(app: AppRow, deployment: DeploymentRow): Promise<void> {
    const { status } = app;
    if (!status.pid || !status.run_id || !status.port) return;
    this.run = {
      pid: status.pid,
      startTicks: status.pid_start,
      runId: status.run_id,
      deployment,
      port: status.port,
      startedAt: Date.now(),
      listened: status.app_state === 'RUNNING',
    };
    this.restarts = status.restarts ?? 0;
    await logLine(this.logFile, `adopted the running process ${status.pid} after a restart of Pier`).catch(
      () => {},
    );
  }

  /** One step toward what the row asks. */
  async sync(app: AppRow): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      await this.step(app);
    } catch (error) {
      noteFailure('apps.supervise', error);
    } finally {
      this.busy = false;
    }
  }

  private async step(app: AppRow): Promise<void> {
    const run = this.run;
    if (run && !run.stopping && !(await sameProcessAlive(run.pid, run.startTicks))) {
      await this.exited(app, run);
      return;
    }
    if (run) await rotateIfLarge(this.logFile).catch((e) => noteFailure('apps.log-rotate', e));
    const target = app.pending_deployment_id ?? app.active_deployment_id;
    if (app.compute === 'STOPPED' || !target) {
      if (run)
        await this.stop(`the app was ${app.compute === 'STOPPED' ? 'stopped' : 'left without a deployment'}`);
      // A first deployment that failed leaves the app without one: its failure stays the message.
      const failure =
        app.compute === 'ACTIVE' && !app.active_deployment_id ? app.status.app_message : undefined;
      await this.report(app, {
        compute_state: app.compute === 'STOPPED' ? 'STOPPED' : 'ACTIVE',
        app_state: 'UNAVAILABLE',
        ...(failure ? { app_message: failure } : {}),
        restarts: 0,
      });
      this.restarts = 0;
      return;
    }
    if (run && run.deployment.deployment_id !== target) {
      await this.stop(`deployment ${target} replaces ${run.deployment.deployment_id}`);
      return;
    }
    if (run) {
      await this.watch(app, run);
      return;
    }
    if (Date.now() < this.notBefore) return;
    const deployment = await findDeployment(this.ctx.store, app.name, target);
    if (!deployment) return;
    await this.start(app, deployment);
  }

  /** A live process: has it begun to listen, or run out of time to? */
  private async watch(app: AppRow, run: Run): Promise<void> {
    if (!run.listened) {
      if (await listening(run.port)) {
        run.listened = true;
        await logLine(this.logFile, `listening on port ${run.port}`);
        const pending = app.pending_deployment_id === run.deployment.deployment_id;
        if (pending)
          await finishDeployment(
            this.ctx.store,
            run.deployment.deployment_id,
            'SUCCEEDED',
            'App started successfully.',
          );
        await this.report(
          app,
          this.running(run, 'App is running.'),
          pending
            ? { activeDeploymentId: run.deployment.deployment_id, clearPending: run.deployment.deployment_id }
            : {},
        );
        return;
      }
      if (Date.now() - run.startedAt > LISTEN_DEADLINE_MS) {
        const message = `The app did not listen on DATABRICKS_APP_PORT (${run.port}) within ${LISTEN_DEADLINE_MS / 1000} s; make it listen on process.env.DATABRICKS_APP_PORT.`;
        await this.stop(message);
        await this.failed(app, run, message);
      }
      return;
    }
    if (this.restarts > 0 && Date.now() - run.startedAt > STEADY_MS) {
      this.restarts = 0;
      await this.report(app, this.running(run, 'App is running.'));
    }
  }

  private running(run: Run, message: string): AppStatus {
    return {
      compute_state: 'ACTIVE',
      app_state: 'RUNNING',
      app_message: message,
      pid: run.pid,
      pid_start: run.startTicks,
      run_id: run.runId,
      deployment_id: run.deployment.deployment_id,
      port: run.port,
      endpoints: endpointsKey(this.ctx),
      restarts: this.restarts,
    };
  }

  private async start(app: AppRow, deployment: DeploymentRow): Promise<void> {
    const dir = appDir(this.dataDir, app.name);
    let runAs: RunAs | undefined;
    try {
      runAs = await runAsFor(deployment.source_code_path);
    } catch {
      // Never run as root for want of knowing the owner: the directory is gone or unreadable.
      const message = `The app's directory ${deployment.source_code_path} cannot be read on this node; deploy again from an existing directory.`;
      await this.failed(app, undefined, message, deployment);
      return;
    }
    const home = await this.prepareDirs(dir, runAs);
    const blocked = runAs && (await unreachableFor(runAs, deployment.source_code_path));
    if (runAs && blocked) {
      const message = `The app runs as ${runAs.name} (${runAs.name === 'nobody' ? 'root owns its directory' : 'the owner of its directory'}), which cannot enter ${blocked}. Move the app to a directory others can enter (e.g. under /srv or /opt), or let them in: chmod o+x ${blocked}.`;
      await logLine(this.logFile, message).catch(() => {});
      await this.failed(app, undefined, message, deployment);
      return;
    }
    let env: Record<string, string>;
    try {
      env = await deploymentEnvironment(this.ctx, app, deployment);
    } catch (error) {
      if (!isPierError(error)) throw error;
      this.backOff();
      return;
    }
    if (env.PGSSLROOTCERT) {
      // Pier's TLS directory is its own; the app gets a copy of the (public) CA certificate.
      const copy = join(dir, 'ca.crt');
      await copyFile(env.PGSSLROOTCERT, copy);
      await chmod(copy, 0o644);
      env.PGSSLROOTCERT = copy;
    }
    const port = await freePort(app.status.port);
    const runId = randomUUID();
    const command = expandCommand(deployment.command, port);
    const log = await openLogForProcess(this.logFile);
    let spawned: Promise<Error | undefined>;
    let child: ReturnType<typeof spawnApp>;
    try {
      await logLine(
        this.logFile,
        `starting deployment ${deployment.deployment_id}: ${JSON.stringify(command)} in ${deployment.source_code_path} on port ${port}${runAs ? ` as ${runAs.name}` : ''}`,
      );
      child = spawnApp({
        command,
        cwd: deployment.source_code_path,
        env: {
          ...baseEnvironment(home),
          ...withPort(env, port, appUrl(this.ctx, port)),
          [RUN_MARKER]: `${this.ctx.config.nodeId}/${app.name}/${runId}`,
        },
        logFd: log.fd,
        runAs,
      });
      // Listened for at once: 'spawn' (or 'error') comes on the next turn of the event loop.
      spawned = new Promise<Error | undefined>((resolve) => {
        child.once('spawn', () => resolve(undefined));
        child.once('error', resolve);
      });
    } finally {
      await log.close();
    }
    const spawnError = await spawned;
    if (spawnError || !child.pid) {
      const message = `Could not start ${JSON.stringify(command[0])} in ${deployment.source_code_path}: ${(spawnError as NodeJS.ErrnoException)?.code ?? 'no process'}. Check command in app.yaml (it is not run in a shell; the program must be on PATH).`;
      await logLine(this.logFile, message);
      await this.failed(app, undefined, message, deployment);
      return;
    }
    const run: Run = {
      pid: child.pid,
      startTicks: await processStart(child.pid),
      runId,
      deployment,
      port,
      startedAt: Date.now(),
      listened: false,
    };
    child.once('exit', (code, signal) => {
      run.exitCode = code;
      run.signal = signal;
    });
    this.run = run;
    const pending = app.pending_deployment_id === deployment.deployment_id;
    await this.report(app, {
      ...this.running(run, pending ? 'App is being deployed.' : 'App is starting.'),
      app_state: pending ? 'DEPLOYING' : app.status.app_state === 'CRASHED' ? 'CRASHED' : 'DEPLOYING',
    });
  }

  /** The app's directory under the data dir, and a home its process may write. */
  private async prepareDirs(dir: string, runAs: RunAs | undefined): Promise<string> {
    await mkdir(join(dir, 'logs'), { recursive: true, mode: 0o700 });
    await chmod(dir, 0o711);
    await chmod(join(this.dataDir, 'apps'), 0o711);
    const home = join(dir, 'home');
    await mkdir(home, { recursive: true, mode: 0o700 });
    if (runAs) await chown(home, runAs.uid, runAs.gid);
    return home;
  }

  /** The process ended on its own: a crash (restart with backoff) or a deployment that never came up. */
  private async exited(app: AppRow, run: Run): Promise<void> {
    this.run = undefined;
    const how =
      run.signal != null
        ? `was killed by ${run.signal}`
        : run.exitCode != null
          ? `exited with code ${run.exitCode}`
          : 'exited';
    await logLine(this.logFile, `process ${run.pid} ${how}`);
    if (!run.listened && app.pending_deployment_id === run.deployment.deployment_id) {
      const tail = await lastLines(this.logFile);
      await this.failed(
        app,
        run,
        `The app ${how} before it listened on its port.${tail ? ` Last output:\n${tail}` : ''}`,
      );
      return;
    }
    const delay = this.backOff();
    await this.report(app, {
      compute_state: 'ACTIVE',
      app_state: 'CRASHED',
      app_message: `App ${how}; restart ${this.restarts} in ${Math.round(delay / 1000)} s. See: pier apps logs ${app.name}`,
      port: run.port,
      restarts: this.restarts,
    });
  }

  /** A new deployment that did not come up: FAILED, and the previous one (if any) runs again. */
  private async failed(
    app: AppRow,
    run: Run | undefined,
    message: string,
    deployment = run?.deployment,
  ): Promise<void> {
    if (!deployment) return;
    this.run = undefined;
    const pending = app.pending_deployment_id === deployment.deployment_id;
    if (pending) await finishDeployment(this.ctx.store, deployment.deployment_id, 'FAILED', message);
    // The previous deployment comes back at once; a running one that cannot start waits longer each time.
    if (pending) this.notBefore = Date.now() + FIRST_BACKOFF_MS;
    else this.backOff();
    await this.report(
      app,
      {
        compute_state: 'ACTIVE',
        app_state: 'CRASHED',
        app_message: pending ? `Deployment ${deployment.deployment_id} failed: ${message}` : message,
        port: run?.port ?? app.status.port,
        restarts: this.restarts,
      },
      pending ? { clearPending: deployment.deployment_id } : {},
    );
  }

  /** One more restart: the wait before it doubles each time, up to MAX_BACKOFF_MS. */
  private backOff(): number {
    this.restarts++;
    const delay = Math.min(FIRST_BACKOFF_MS * 2 ** (this.restarts - 1), MAX_BACKOFF_MS);
    this.notBefore = Date.now() + delay;
    return delay;
  }

  /** Ends the current process (and its children). */
  async stop(why: string): Promise<void> {
    const run = this.run;
    if (!run) return;
    run.stopping = true;
    await logLine(this.logFile, `stopping process ${run.pid}: ${why}`).catch(() => {});
    await stopGroup(run.pid, run.startTicks);
    this.run = undefined;
  }

  /** Writes the status when it changed (the supervisor is its only writer). */
  private async report(
    app: AppRow,
    status: AppStatus,
    deployments: { activeDeploymentId?: string; clearPending?: string } = {},
  ): Promise<void> {
    const text = JSON.stringify(status);
    if (text === this.lastStatus && !deployments.activeDeploymentId && !deployments.clearPending) return;
    await writeAppStatus(this.ctx.store, app.name, status, deployments);
    this.lastStatus = text;
  }
}
