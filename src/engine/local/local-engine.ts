import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { lstat, mkdir, readdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { BackupStorage } from '../../backups/storage.js';
import { PierError } from '../../errors.js';
import type {
  BaseBackupResult,
  Engine,
  EngineInstance,
  EngineObservation,
  EngineReach,
  ReplicationObservation,
  RestoreSource,
} from '../engine.js';
import { makeStandbyDataDir, takeBaseBackup } from './base-backup.js';
import { copyForBranch, dataDirBytes, localFirstRestoreCommand } from './branch.js';
import { capacitySettings, computeUnitSettings } from './capacity.js';
import { cloneDataDir } from './clone.js';
import {
  observeCluster,
  SOCKET_PORT,
  shutDownCleanly,
  startCluster,
  stopCluster,
  writeClusterSettings,
} from './cluster.js';
import { installPierExtensions } from './extensions.js';
import {
  ensureReplicationRoleAndSlots,
  HBA,
  nodeSlotName,
  replicationSettings,
  standbyPosition,
  streamingNodes,
  withNode,
  writeSynchronousNames,
} from './replication.js';
import { recoverToTarget } from './restore.js';
import { handToPostgres, type PostgresRuntime } from './runtime.js';
import { prepareTemplate } from './template.js';

/** Ready-made clones of the template wait in `instances/.spare-<id>`. */
const SPARE_PREFIX = '.spare-';

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
/** An instance's storage: `instances/<uid>`. */
const INSTANCE_ENTRY = new RegExp(`^${UUID}$`);
/** One node's storage: `instances/<uid>` (node 0) or `instances/<uid>.node-N`. */
const NODE_ENTRY = new RegExp(`^(${UUID})(\\.node-[0-9])?$`);
/** A copy in flight, made only by Pier: `<uid>.partial`, `<uid>.node-1.partial` or `.spare-<id>.partial`. */
const PARTIAL_ENTRY = new RegExp(`^(\\.spare-)?${UUID}(\\.node-[0-9])?\\.partial$`);
/** Node numbers an instance may use: a primary and up to two secondaries. */
const NODES = [0, 1, 2];

/**
 * The instance uids whose storage is in `instancesDir`: only names Pier
 * makes. Anything else there is not Pier's, and Pier leaves it alone.
 */
export async function listInstanceStorage(instancesDir: string): Promise<string[]> {
  const entries = await readdir(instancesDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  // After a failover and a smaller node_count, an instance may live on in `<uid>.node-1` alone.
  const uids = entries.flatMap((entry) => NODE_ENTRY.exec(entry)?.[1] ?? []);
  return [...new Set(uids)].sort();
}

/** A copy in flight may run a server (a restore's recovery outlives a killed Pier): stop it, then remove it. */
async function removePartial(dir: string): Promise<void> {
  await stopCluster(dir, { timeoutMs: 10_000 });
  await rm(dir, { recursive: true, force: true });
}

export interface LocalEngineLayout {
  /** `<data-dir>/instances`: one Postgres data directory per instance uid. */
  instancesDir: string;
  /** `<data-dir>/quarantine`: storage no instance owns, moved aside for a person to look at. */
  quarantineDir: string;
  /** `<data-dir>/run`: private unix-socket directories. */
  runDir: string;
  /** `<data-dir>/template`: the prepared cluster every instance is cloned from. */
  templateDir: string;
  logsDir: string;
}

/**
 * Runs each instance as a Postgres server process on this host. An instance
 * is created by copying a prepared template cluster (no initdb on the create
 * path), so create → AVAILABLE is a file copy plus a server start.
 */
/** The local engine's reach: the host (and its boot) and the directory of its instances' sockets. */
interface LocalReach extends EngineReach {
  kind: 'local';
  host: string;
  runDir: string;
}

/**
 * This host as it is now: its name and, on Linux, this boot's id and this
 * process's pid namespace, so an address published before a reboot (whose
 * servers are gone) never matches, and a pid names the same process to
 * every process with the same host.
 */
function thisHost(): string {
  const parts = [hostname()];
  try {
    parts.push(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
    parts.push(readlinkSync('/proc/self/ns/pid'));
  } catch {
    // Not Linux: the name alone.
  }
  return parts.join('/');
}

function socketConnection(socketDir: string, database: string, applicationName?: string): pg.ClientConfig {
  return {
    host: socketDir,
    port: SOCKET_PORT,
    user: 'postgres',
    database,
    ...(applicationName ? { application_name: applicationName } : {}),
  };
}

export class LocalEngine implements Engine {
  private readonly host = thisHost();
  /** The background refill of spare clones, if one runs… */
  private refilling?: Promise<void>;
  /** …and the one copy it is making right now. */
  private copying?: Promise<void>;
  private closed = false;

  private constructor(
    private readonly runtime: PostgresRuntime,
    private readonly layout: LocalEngineLayout,
    private readonly spareTarget: number,
    private readonly log: (message: string) => void,
    readonly backups: BackupStorage,
  ) {}

  get pgMajorVersion(): number {
    return this.runtime.majorVersion;
  }

  /**
   * @param options.spares how many ready-made clones of the template to keep,
   *   so a create only renames one into place (refilled in the background).
   */
  static async open(
    runtime: PostgresRuntime,
    layout: LocalEngineLayout,
    options: { backups: BackupStorage; spares?: number; log?: (message: string) => void },
  ): Promise<LocalEngine> {
    for (const dir of [layout.instancesDir, layout.runDir, layout.logsDir]) {
      await mkdir(dir, { recursive: true });
      await handToPostgres(runtime, dir, 0o755);
    }
    await installPierExtensions(runtime);
    await prepareTemplate(
      runtime,
      layout.templateDir,
      join(layout.runDir, 'template'),
      join(layout.logsDir, 'template.log'),
    );
    // A copy interrupted by a crash is never an instance, and its name says Pier made it: drop it.
    for (const entry of await readdir(layout.instancesDir)) {
      if (PARTIAL_ENTRY.test(entry)) await removePartial(join(layout.instancesDir, entry));
    }
    const engine = new LocalEngine(
      runtime,
      layout,
      options.spares ?? 2,
      options.log ?? (() => {}),
      options.backups,
    );
    engine.refillSpares();
    return engine;
  }

  /** Stops refilling spares and waits for a copy in flight. */
  async close(): Promise<void> {
    this.closed = true;
    await this.refilling;
  }

  private async spares(): Promise<string[]> {
    const entries = await readdir(this.layout.instancesDir);
    return entries.filter((entry) => entry.startsWith(SPARE_PREFIX) && !PARTIAL_ENTRY.test(entry));
  }

  /** Tops the spare clones up to the target, one copy at a time, in the background. */
  private refillSpares(): void {
    if (this.refilling || this.closed) return;
    this.refilling = (async () => {
      try {
        while (!this.closed && (await this.spares()).length < this.spareTarget) {
          const spare = join(this.layout.instancesDir, `${SPARE_PREFIX}${randomUUID()}`);
          this.copying = cloneDataDir(this.layout.templateDir, `${spare}.partial`).then(() =>
            rename(`${spare}.partial`, spare),
          );
          await this.copying;
        }
      } catch (error) {
        this.log(`refilling spare instance clones failed: ${(error as Error).message}`);
      } finally {
        this.refilling = undefined;
        this.copying = undefined;
      }
    })();
  }

  /** Node 0 keeps the instance's original place (`instances/<uid>`); secondaries sit beside it. */
  private dataDir(uid: string, node = 0): string {
    return join(this.layout.instancesDir, node === 0 ? uid : `${uid}.node-${node}`);
  }

  /**
   * Reaches the instance's primary: `run/<uid>`, a link to the primary
   * node's socket directory (or, for an instance started before nodes had
   * their own, node 0's socket directory itself).
   */
  socketDir(uid: string): string {
    return join(this.layout.runDir, uid);
  }

  nodeSocketDir(uid: string, node: number): string {
    return join(this.layout.runDir, `${uid}.node-${node}`);
  }

  private logFile(uid: string, node = 0): string {
    return join(this.layout.logsDir, node === 0 ? `instance-${uid}.log` : `instance-${uid}.node-${node}.log`);
  }

  async observe(uid: string, node = 0): Promise<EngineObservation> {
    const provisioned = existsSync(join(this.dataDir(uid, node), 'PG_VERSION'));
    if (!provisioned) return { provisioned, running: false, ready: false };
    const cluster = await observeCluster(this.dataDir(uid, node));
    if (cluster.running) return { provisioned, running: true, ready: cluster.ready };
    return {
      provisioned,
      running: false,
      ready: false,
      shutDownCleanly: await shutDownCleanly(this.dataDir(uid, node)),
    };
  }

  async provision(instance: EngineInstance): Promise<{ sourceLsn?: string } | undefined> {
    const target = this.dataDir(instance.uid);
    if (existsSync(join(target, 'PG_VERSION'))) return undefined;
    if (instance.sourceUid) return this.provisionBranch(instance, instance.sourceUid, target);
    if (instance.standbyOf) return this.provisionStandby(instance, instance.standbyOf, target);
    // A spare clone becomes the instance by one rename; without one, clone now.
    // A copy already in flight finishes sooner than a second one started beside it.
    if ((await this.spares()).length === 0 && this.copying) await this.copying.catch(() => {});
    const [spare] = await this.spares();
    let claimed = false;
    if (spare) {
      claimed = await rename(join(this.layout.instancesDir, spare), target).then(
        () => true,
        () => false, // another provision took it first
      );
    }
    if (!claimed) {
      const partial = `${target}.partial`;
      await removePartial(partial);
      // The rename makes the clone appear whole or not at all.
      await cloneDataDir(this.layout.templateDir, partial);
      await rename(partial, target);
    }
    this.refillSpares();
    return undefined;
  }

  /** A branch: a copy of the source's data, whole (stopped) or as a base backup (running). */
  private async provisionBranch(
    instance: EngineInstance,
    sourceUid: string,
    target: string,
  ): Promise<{ sourceLsn?: string }> {
    const source = this.dataDir(sourceUid);
    if (!existsSync(join(source, 'PG_VERSION'))) {
      throw new PierError('INVALID_STATE', 'The parent branch has no data yet: try again once it is ready.');
    }
    const partial = `${target}.partial`;
    await removePartial(partial);
    let sourceLsn: string | undefined;
    if ((await observeCluster(source)).running) {
      const stopLsn = await copyForBranch(
        this.runtime,
        { dataDir: source, connection: this.superuserConnection(sourceUid, 'postgres') },
        partial,
      );
      // Recovered to the copy's end and promoted here, so the branch's first start is a plain one.
      await this.backups.prepareArchive(instance.uid);
      await recoverToTarget(this.runtime, {
        paths: {
          dataDir: partial,
          socketDir: `${this.socketDir(instance.uid)}.restore`,
          logFile: this.logFile(instance.uid),
        },
        source: { parentUid: sourceUid, backupId: '', target: { lsn: stopLsn } },
        restoreCommand: localFirstRestoreCommand(this.backups.restoreCommand(sourceUid)),
        settings: this.settings(instance),
      });
      await rm(`${this.socketDir(instance.uid)}.restore`, { recursive: true, force: true });
      sourceLsn = stopLsn;
    } else {
      await cloneDataDir(source, partial); // stopped: consistent on disk as it is
    }
    await this.backups.prepareArchive(instance.uid);
    await rename(partial, target);
    return sourceLsn ? { sourceLsn } : {};
  }

  /** A hot standby of a running primary: a base backup with standby.signal, streaming over the socket. */
  private async provisionStandby(
    instance: EngineInstance,
    primaryUid: string,
    target: string,
  ): Promise<undefined> {
    if (!(await observeCluster(this.dataDir(primaryUid))).ready) {
      throw new PierError(
        'INVALID_STATE',
        'The read-write endpoint is not running: a read-only endpoint starts from it.',
      );
    }
    const partial = `${target}.partial`;
    await removePartial(partial);
    await makeStandbyDataDir(
      this.runtime,
      this.superuserConnection(primaryUid, 'postgres'),
      this.dataDir(primaryUid),
      partial,
      { primaryConninfo: this.standbyConninfo(instance, primaryUid) },
    );
    await this.backups.prepareArchive(instance.uid);
    await rename(partial, target);
    return undefined;
  }

  private standbyConninfo(instance: EngineInstance, primaryUid: string): string {
    return `host=${this.socketDir(primaryUid)} port=${SOCKET_PORT} user=postgres application_name=${instance.name}`;
  }

  async storageBytes(uid: string): Promise<{ logical: number; onDisk: number }> {
    return dataDirBytes(this.dataDir(uid));
  }

  async configure(instance: EngineInstance): Promise<void> {
    await this.backups.prepareArchive(instance.uid);
    const node = instance.node ?? 0;
    await this.writeNodeSettings(instance, this.dataDir(instance.uid, node), node);
  }

  private async writeNodeSettings(instance: EngineInstance, dataDir: string, node: number): Promise<void> {
    await writeClusterSettings(this.runtime, dataDir, {
      ...replicationSettings(this.socketDir(instance.uid), node),
      // A read-only endpoint's standby streams from another instance's primary (its
      // primary_conninfo here), which keeps no slot for it: it reads what it missed from the archive.
      ...this.settings(instance),
      ...(instance.standbyOf ? { primary_slot_name: '' } : {}),
    });
    await writeFile(join(dataDir, 'pg_hba.conf'), HBA);
    await handToPostgres(this.runtime, join(dataDir, 'pg_hba.conf'), 0o600);
  }

  /** Capacity, name and the WAL archive, always on (a restart applies `archive_mode`). */
  private settings(instance: EngineInstance): Record<string, string | number> {
    return {
      ...(instance.computeUnits
        ? computeUnitSettings(instance.computeUnits)
        : capacitySettings(instance.capacity)),
      cluster_name: instance.name,
      // A standby streams from its primary, and reads from the primary's archive what it missed while stopped.
      ...(instance.standbyOf
        ? {
            primary_conninfo: this.standbyConninfo(instance, instance.standbyOf),
            restore_command: localFirstRestoreCommand(this.backups.restoreCommand(instance.standbyOf)),
          }
        : {}),
      archive_mode: 'on',
      archive_command: this.backups.archiveCommand(instance.uid),
      // A quiet instance's last commits reach the archive within a minute even if no segment fills.
      archive_timeout: 60,
    };
  }

  async takeBaseBackup(uid: string, id: string): Promise<BaseBackupResult> {
    const staging = await this.backups.stageBaseBackup(uid, id);
    const backup = await takeBaseBackup(
      this.runtime,
      this.superuserConnection(uid, 'postgres'),
      // The primary's data directory: after a failover another node's.
      this.dataDir(uid, await this.linkedPrimary(uid)),
      staging,
      {
        label: `pier ${id}`,
        waitForArchive: true,
      },
    );
    await this.backups.commitBaseBackup(uid, id);
    return backup;
  }

  async currentWalLsn(uid: string): Promise<string> {
    const { rows } = await this.superuserQuery<{ lsn: string }>(
      uid,
      'SELECT pg_current_wal_lsn()::text AS lsn',
    );
    return rows[0].lsn;
  }

  async sealWal(uid: string): Promise<void> {
    // A transaction with an xid writes a commit record: a time target before it has a commit after it to stop at.
    await this.superuserQuery(uid, 'SELECT pg_current_xact_id()');
    const { rows } = await this.superuserQuery<{ file: string }>(
      uid,
      'SELECT pg_walfile_name(pg_switch_wal()) AS file',
    );
    const deadline = Date.now() + 60_000;
    while (!(await this.backups.hasWal(uid, rows[0].file))) {
      if (Date.now() > deadline)
        throw new PierError(
          'INTERNAL_ERROR',
          `WAL file ${rows[0].file} was not archived within 60 s: see the instance's server log`,
        );
      await sleep(10);
    }
  }

  async restore(instance: EngineInstance, source: RestoreSource): Promise<{ effectiveLsn: string }> {
    const target = this.dataDir(instance.uid);
    const partial = `${target}.partial`;
    await removePartial(partial);
    const backupDir = await this.backups.baseBackupDir(source.parentUid, source.backupId);
    await cloneDataDir(backupDir, partial);
    await this.backups.prepareArchive(instance.uid);
    const effectiveLsn = await recoverToTarget(this.runtime, {
      paths: {
        dataDir: partial,
        socketDir: `${this.socketDir(instance.uid)}.restore`,
        logFile: this.logFile(instance.uid),
      },
      source,
      restoreCommand: this.backups.restoreCommand(source.parentUid),
      settings: this.settings(instance),
    });
    await rm(`${this.socketDir(instance.uid)}.restore`, { recursive: true, force: true });
    // The rename makes the child appear whole or not at all.
    await rename(partial, target);
    return { effectiveLsn };
  }

  private async superuserQuery<R extends pg.QueryResultRow>(
    uid: string,
    sql: string,
  ): Promise<pg.QueryResult<R>> {
    const client = new pg.Client(this.superuserConnection(uid, 'postgres'));
    await client.connect();
    try {
      return await client.query<R>(sql);
    } finally {
      await client.end();
    }
  }

  async start(instance: EngineInstance): Promise<void> {
    const node = instance.node ?? 0;
    const dataDir = this.dataDir(instance.uid, node);
    const primary = (instance.primary ?? node) === node;
    if (!(await observeCluster(dataDir)).running) {
      // A primary starts with commits waiting for no secondary; the reconciler adds them once they stream.
      if (primary) await writeSynchronousNames(this.runtime, dataDir, []);
      await startCluster(this.runtime, {
        dataDir,
        socketDir: this.nodeSocketDir(instance.uid, node),
        logFile: this.logFile(instance.uid, node),
      });
    }
    if (primary) await this.pointPrimary(instance.uid, node);
  }

  /**
   * Points `run/<uid>` at `node`'s socket directory, atomically (a new link
   * renamed over the old one). A server already listening in `run/<uid>`
   * itself (started before nodes had their own directories) keeps it.
   */
  private async pointPrimary(uid: string, node: number): Promise<void> {
    const link = this.socketDir(uid);
    const info = await lstat(link).catch(() => undefined);
    if (info?.isDirectory()) {
      if (node === 0 && (await observeCluster(this.dataDir(uid, 0))).running) {
        const adopted = existsSync(join(link, '.s.PGSQL.5432'));
        if (adopted) return;
      }
      await rm(link, { recursive: true, force: true });
    }
    const partial = `${link}.link-${randomUUID()}`;
    await symlink(`${uid}.node-${node}`, partial);
    await rename(partial, link);
  }

  /** Without `node`, stops every node, the primary first (its secondaries receive all its WAL as it stops). */
  async stop(uid: string, node?: number): Promise<void> {
    if (node !== undefined) return stopCluster(this.dataDir(uid, node));
    await this.finishWalSegment(uid);
    const primary = await this.linkedPrimary(uid);
    for (const each of [primary, ...NODES.filter((n) => n !== primary)]) {
      await stopCluster(this.dataDir(uid, each));
    }
  }

  /** The node `run/<uid>` points at (0 when it is a directory or missing). */
  private async linkedPrimary(uid: string): Promise<number> {
    const target = await readlink(this.socketDir(uid)).catch(() => '');
    const match = /\.node-([0-9])$/.exec(target);
    return match ? Number(match[1]) : 0;
  }

  /**
   * Before a stop: ends the current WAL segment, so the archiver's last pass
   * at shutdown archives every commit (the archive of a stopped or deleted
   * instance then reaches its last transaction, not its last full segment).
   */
  private async finishWalSegment(uid: string): Promise<void> {
    if (!(await observeCluster(this.dataDir(uid, await this.linkedPrimary(uid)))).ready) return;
    await this.superuserQuery(uid, 'SELECT pg_switch_wal()').catch((error: Error) => {
      // A server that cannot take the query is stopped anyway; its last partial segment stays unarchived.
      this.log(`instance ${uid}: switching WAL before the stop failed: ${error.message}`);
    });
  }

  async destroy(uid: string): Promise<void> {
    await this.finishWalSegment(uid);
    for (const node of NODES) {
      await stopCluster(this.dataDir(uid, node));
      await rm(this.dataDir(uid, node), { recursive: true, force: true });
      await removePartial(`${this.dataDir(uid, node)}.partial`);
      await rm(this.nodeSocketDir(uid, node), { recursive: true, force: true });
      await rm(this.logFile(uid, node), { force: true });
    }
    await rm(`${this.socketDir(uid)}.restore`, { recursive: true, force: true });
    await rm(this.socketDir(uid), { recursive: true, force: true });
  }

  async provisionSecondary(instance: EngineInstance & { node: number; primary: number }): Promise<void> {
    const { uid, node, primary } = instance;
    const target = this.dataDir(uid, node);
    await stopCluster(target);
    const partial = `${target}.partial`;
    await rm(partial, { recursive: true, force: true });
    await withNode(this.nodeSocketDir(uid, primary), (client) =>
      ensureReplicationRoleAndSlots(client, [node]),
    );
    await makeStandbyDataDir(
      this.runtime,
      { host: this.nodeSocketDir(uid, primary), port: SOCKET_PORT, user: 'postgres', database: 'postgres' },
      this.dataDir(uid, primary),
      partial,
      { slotName: nodeSlotName(node) },
    );
    await this.writeNodeSettings(instance, partial, node);
    await writeSynchronousNames(this.runtime, partial, []);
    // The old data (a fenced primary's) goes only once the new copy is whole, and its
    // unarchived WAL first.
    await this.archiveLeftoverWal(uid, target);
    await rm(target, { recursive: true, force: true });
    await rename(partial, target);
  }

  async removeSecondary(uid: string, node: number, primary: number): Promise<void> {
    await stopCluster(this.dataDir(uid, node));
    await this.archiveLeftoverWal(uid, this.dataDir(uid, node));
    await rm(this.dataDir(uid, node), { recursive: true, force: true });
    await rm(this.nodeSocketDir(uid, node), { recursive: true, force: true });
    if ((await observeCluster(this.dataDir(uid, primary))).ready) {
      await withNode(this.nodeSocketDir(uid, primary), (client) =>
        client.query(
          'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1',
          [nodeSlotName(node)],
        ),
      );
    }
  }

  /**
   * Archives the WAL files a stopped node's archiver had not yet archived
   * (`archive_status/*.ready`): a primary killed while its archiver lagged
   * behind. Its secondaries received those segments but, as standbys, never
   * archive them, so without this a failover would leave a hole in the
   * archive and no child could be restored across it. A file that cannot be
   * archived is logged and skipped: the node's re-cloning must go on.
   */
  private async archiveLeftoverWal(uid: string, dataDir: string): Promise<void> {
    const status = join(dataDir, 'pg_wal', 'archive_status');
    const ready = (await readdir(status).catch(() => [] as string[]))
      .filter((name) => name.endsWith('.ready'))
      .map((name) => name.slice(0, -'.ready'.length))
      .sort();
    for (const file of ready) {
      await this.backups
        .archiveWal(uid, join(dataDir, 'pg_wal', file), file)
        .then(() => this.log(`instance ${uid}: archived ${file}, left unarchived by a stopped node`))
        .catch((error: Error) =>
          this.log(`instance ${uid}: could not archive ${file} left by a stopped node: ${error.message}`),
        );
    }
  }

  async ensureSlots(uid: string, primary: number, nodes: number[]): Promise<void> {
    await withNode(this.nodeSocketDir(uid, primary), (client) =>
      ensureReplicationRoleAndSlots(client, nodes),
    );
  }

  async observeReplication(
    uid: string,
    primary: number,
    secondaries: number[],
  ): Promise<ReplicationObservation> {
    const observation: ReplicationObservation = {
      streaming: [],
      receivedLsn: {},
      standbys: [],
      replayLagMs: {},
    };
    if ((await observeCluster(this.dataDir(uid, primary))).ready) {
      const streaming = await withNode(this.nodeSocketDir(uid, primary), streamingNodes).catch(() => ({
        nodes: [],
        replayLagMs: {},
      }));
      observation.streaming = streaming.nodes.filter((node) => secondaries.includes(node));
      observation.replayLagMs = streaming.replayLagMs;
    }
    for (const node of secondaries) {
      if (!(await observeCluster(this.dataDir(uid, node))).ready) continue;
      const lsn = await withNode(this.nodeSocketDir(uid, node), standbyPosition).catch(() => undefined);
      if (lsn === undefined || lsn === null) continue;
      observation.standbys.push(node);
      observation.receivedLsn[node] = lsn;
    }
    return observation;
  }

  async setSynchronous(uid: string, primary: number, nodes: number[]): Promise<string> {
    await writeSynchronousNames(this.runtime, this.dataDir(uid, primary), nodes);
    return withNode(this.nodeSocketDir(uid, primary), async (client) => {
      await client.query('SELECT pg_reload_conf()');
      const { rows } = await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
      return rows[0].lsn;
    });
  }

  async fence(uid: string, node: number): Promise<void> {
    const dataDir = this.dataDir(uid, node);
    // First the mark, then the stop: whatever starts this directory again starts a read-only standby.
    if (existsSync(join(dataDir, 'PG_VERSION'))) {
      await writeFile(join(dataDir, 'standby.signal'), '');
      await handToPostgres(this.runtime, join(dataDir, 'standby.signal'), 0o600);
    }
    await stopCluster(dataDir, { timeoutMs: 10_000 });
  }

  async unfence(uid: string, node: number): Promise<void> {
    await rm(join(this.dataDir(uid, node), 'standby.signal'), { force: true });
  }

  async promote(uid: string, node: number): Promise<void> {
    const dataDir = this.dataDir(uid, node);
    await writeSynchronousNames(this.runtime, dataDir, []);
    await withNode(this.nodeSocketDir(uid, node), async (client) => {
      await client.query('SELECT pg_reload_conf()');
      const { rows } = await client.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
      if (rows[0].standby) {
        const promoted = await client.query<{ done: boolean }>('SELECT pg_promote(true, 60) AS done');
        if (!promoted.rows[0].done) throw new Error(`node ${node} did not finish promotion within 60 s`);
      }
    });
    await this.pointPrimary(uid, node);
  }

  superuserConnection(uid: string, database: string, applicationName?: string): pg.ClientConfig {
    return socketConnection(this.socketDir(uid), database, applicationName);
  }

  /** Instances are reachable from this host (its boot), through the unix sockets under runDir. */
  reach(): LocalReach {
    return { kind: 'local', host: this.host, runDir: this.layout.runDir };
  }

  reachableConnection(
    reach: EngineReach,
    uid: string,
    database: string,
    applicationName?: string,
  ): pg.ClientConfig | undefined {
    if (reach.kind !== 'local' || reach.host !== this.host || typeof reach.runDir !== 'string')
      return undefined;
    const dir = join(reach.runDir, uid);
    if (!existsSync(join(dir, `.s.PGSQL.${SOCKET_PORT}`))) return undefined;
    return socketConnection(dir, database, applicationName);
  }

  async ensureLoginRole(uid: string, role: string, options: { superuser: boolean }): Promise<void> {
    const client = new pg.Client(this.superuserConnection(uid, 'postgres'));
    await client.connect();
    try {
      const quoted = client.escapeIdentifier(role);
      const { rowCount } = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
      // The creator logs in with database credentials only: a password it sets itself never validates.
      if (!rowCount) await client.query(`CREATE ROLE ${quoted} LOGIN VALID UNTIL '-infinity'`);
      if (options.superuser) {
        await client.query(`GRANT databricks_superuser TO ${quoted}`);
        // Postgres never inherits role attributes through membership: give them directly too.
        await client.query(`ALTER ROLE ${quoted} CREATEDB CREATEROLE BYPASSRLS`);
      }
    } finally {
      await client.end();
    }
  }

  async listInstances(): Promise<string[]> {
    return listInstanceStorage(this.layout.instancesDir);
  }

  async quarantine(uid: string): Promise<string> {
    if (!INSTANCE_ENTRY.test(uid)) throw new Error(`not an instance uid: ${uid}`);
    await mkdir(this.layout.quarantineDir, { recursive: true, mode: 0o700 });
    const target = join(
      this.layout.quarantineDir,
      `${uid}-${new Date().toISOString().replace(/[:.]/g, '-')}`,
    );
    for (const node of NODES) {
      await stopCluster(this.dataDir(uid, node));
      if (!existsSync(this.dataDir(uid, node))) continue;
      await rename(this.dataDir(uid, node), node === 0 ? target : `${target}.node-${node}`);
      await rm(this.nodeSocketDir(uid, node), { recursive: true, force: true });
    }
    await rm(this.socketDir(uid), { recursive: true, force: true });
    return target;
  }
}
