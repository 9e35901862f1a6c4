import { setTimeout as sleep } from 'node:timers/promises';
import { type Command, Option } from 'commander';
import { PierError } from '../errors.js';
import { DAILY_REVENUE_KEY } from '../lakehouse/demo.js';
import { call } from './api-client.js';
import { credentials, listAll, segment } from './catalog.js';
import type { Credentials } from './config.js';
import { parseDuration, parseJsonFlag } from './database.js';
import { DEMO_TABLE } from './demo.js';
import { printJson, progress } from './output.js';

type SyncedTable = {
  name: string;
  data_synchronization_status?: {
    detailed_state?: string;
    message?: string;
    pipeline_id?: string;
    provisioning_status?: {
      initial_pipeline_sync_progress?: { synced_row_count?: number; total_row_count?: number };
    };
  };
};

const tablePath = (name: string) => `/api/2.0/database/synced_tables/${segment(name)}`;
const POLICIES = ['SNAPSHOT', 'TRIGGERED', 'CONTINUOUS'];

/**
 * Polls a synced table until `done` says so, printing its state and, while
 * a snapshot runs, rows copied / total and rows/s (on a TTY only).
 */
async function waitFor(
  creds: Credentials,
  name: string,
  done: (table: SyncedTable) => Promise<boolean>,
  timeoutMs: number,
  options: { failOnFailedState: boolean },
): Promise<SyncedTable> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  let previous: { rows: number; at: number } | undefined;
  for (;;) {
    const table = await call<SyncedTable>(creds, 'GET', tablePath(name));
    const status = table.data_synchronization_status ?? {};
    const copied = status.provisioning_status?.initial_pipeline_sync_progress;
    let line = `${name}: ${status.detailed_state ?? 'UNKNOWN'}`;
    if (copied?.synced_row_count !== undefined) {
      const now = Date.now();
      const rate =
        previous && now > previous.at
          ? ((copied.synced_row_count - previous.rows) * 1000) / (now - previous.at)
          : 0;
      previous = { rows: copied.synced_row_count, at: now };
      line += ` — ${copied.synced_row_count}${copied.total_row_count ? ` / ${copied.total_row_count}` : ''} rows copied${rate > 0 ? `, ${Math.round(rate)} rows/s` : ''}`;
    }
    if (line !== last) progress(line);
    last = line;
    if (await done(table)) return table;
    if (options.failOnFailedState && /FAILED$/.test(status.detailed_state ?? '')) {
      throw new PierError('INVALID_STATE', `Synced table ${name} failed: ${status.message ?? 'no message'}`);
    }
    if (Date.now() > deadline) {
      throw new PierError('INVALID_STATE', `Synced table ${name} did not finish syncing in time.`);
    }
    await sleep(250);
  }
}

const online = async (table: SyncedTable) =>
  /^SYNCED_TABLE_ONLINE(_CONTINUOUS_UPDATE|_NO_PENDING_UPDATE)?$/.test(
    table.data_synchronization_status?.detailed_state ?? '',
  );

/** `VERB NAME [--json] [--database-instance-name] [--logical-database-name]`, as the Databricks CLI's create verbs. */
function createVerb(
  database: Command,
  verb: string,
  description: string,
  jsonHelp: string,
  path: string,
): void {
  database
    .command(`${verb} <NAME>`)
    .description(description)
    .option('--json <json>', jsonHelp)
    .option(
      '--database-instance-name <name>',
      'The instance (when NAME is not in a database catalog or schema).',
    )
    .option(
      '--logical-database-name <name>',
      'The Postgres database (when NAME is not in a database catalog or schema).',
    )
    .action(async (name: string, options: Record<string, string | undefined>, command: Command) => {
      const body: Record<string, unknown> = { ...parseJsonFlag(options.json), name };
      if (options.databaseInstanceName) body.database_instance_name = options.databaseInstanceName;
      if (options.logicalDatabaseName) body.logical_database_name = options.logicalDatabaseName;
      printJson(await call(credentials(command), 'POST', path, { body }));
    });
}

/** The synced-table verbs of `pier database`, as the Databricks CLI names them, plus the seed's shorthands. */
export function registerSyncedTableCommands(program: Command): void {
  const database =
    program.commands.find((c) => c.name() === 'database') ??
    program.command('database').description('Database instances (Lakebase Provisioned).');

  createVerb(
    database,
    'create-synced-database-table',
    'Create a synced table: a Postgres copy of a Delta table, kept up to date (spec in --json).',
    'The SyncedDatabaseTable as JSON, or @file.',
    '/api/2.0/database/synced_tables',
  );
  createVerb(
    database,
    'create-database-table',
    'Register an existing Postgres table of an instance in the catalog (nothing is created in Postgres).',
    'The DatabaseTable as JSON, or @file.',
    '/api/2.0/database/tables',
  );

  database
    .command('get-database-table <NAME>')
    .description('Get a registered database table.')
    .action(async (name: string, _o: unknown, command: Command) => {
      printJson(await call(credentials(command), 'GET', `/api/2.0/database/tables/${segment(name)}`));
    });

  database
    .command('delete-database-table <NAME>')
    .description('Unregister a database table; the Postgres table and its rows are kept.')
    .action(async (name: string, _o: unknown, command: Command) => {
      await call(credentials(command), 'DELETE', `/api/2.0/database/tables/${segment(name)}`);
    });

  database
    .command('get-synced-database-table <NAME>')
    .description('Get a synced table and its synchronization status.')
    .action(async (name: string, _o: unknown, command: Command) => {
      printJson(await call(credentials(command), 'GET', tablePath(name)));
    });

  database
    .command('list-synced-database-tables <INSTANCE_NAME>')
    .description('List the synced tables of an instance (every page).')
    .addOption(new Option('--page-size <n>', 'Upper bound for items returned per request.').argParser(Number))
    .action(async (instance: string, options: { pageSize?: number }, command: Command) => {
      await listAll(
        credentials(command),
        `/api/2.0/database/instances/${segment(instance)}/synced_tables`,
        'synced_tables',
        { page_size: options.pageSize },
      );
    });

  database
    .command('update-synced-database-table <NAME> <UPDATE_MASK>')
    .description('Update a synced table (UPDATE_MASK: spec.scheduling_policy), the new values in --json.')
    .option('--json <json>', 'The SyncedDatabaseTable fields to change, as JSON or @file.')
    .action(async (name: string, mask: string, options: { json?: string }, command: Command) => {
      printJson(
        await call(credentials(command), 'PATCH', tablePath(name), {
          query: { update_mask: mask },
          body: { ...parseJsonFlag(options.json), name },
        }),
      );
    });

  database
    .command('delete-synced-database-table <NAME>')
    .description('Delete a synced table; its Postgres table is kept unless --purge-data.')
    .option('--purge-data', 'Drop the Postgres table too.')
    .action(async (name: string, options: { purgeData?: boolean }, command: Command) => {
      await call(credentials(command), 'DELETE', tablePath(name), {
        query: options.purgeData ? { purge_data: true } : {},
      });
    });

  database
    .command('create-synced-table')
    .description(
      "Sync a Delta table into an instance; a bare --target-table lands in the instance's registered schema. Waits for the first sync unless --no-wait.",
    )
    .requiredOption('--instance-name <name>', 'The database instance.')
    .requiredOption('--source-table <catalog.schema.table>', 'The Delta table to sync.')
    .requiredOption('--target-table <name>', 'A table name, or <catalog>.<schema>.<table>.')
    .requiredOption('--scheduling-policy <policy>', `One of ${POLICIES.join(', ')}.`)
    .option('--primary-key <columns>', "Comma-separated key columns (default: the demo table's key).")
    .option('--timeseries-key <column>', 'Which row wins when the source holds a key twice.')
    .option('--database <name>', 'The Postgres database, when the target is not in a registered schema.')
    .option('--no-wait', 'Do not wait for the first sync.')
    .option('--timeout <duration>', 'Maximum time for the first sync.', '20m0s')
    .action(async (options: Record<string, string | boolean | undefined>, command: Command) => {
      const policy = String(options.schedulingPolicy).toUpperCase();
      if (!POLICIES.includes(policy)) {
        throw new PierError(
          'INVALID_PARAMETER_VALUE',
          `--scheduling-policy must be one of ${POLICIES.join(', ')}.`,
        );
      }
      const source = String(options.sourceTable);
      const key = options.primaryKey
        ? String(options.primaryKey)
            .split(',')
            .map((c) => c.trim())
            .filter(Boolean)
        : source.toLowerCase() === DEMO_TABLE
          ? DAILY_REVENUE_KEY
          : undefined;
      if (!key) {
        throw new PierError(
          'INVALID_PARAMETER_VALUE',
          `--primary-key is required: ${source} declares no key Pier knows. Name the column(s) that identify a row, e.g. --primary-key id.`,
        );
      }
      const creds = credentials(command);
      const created = await call<SyncedTable>(creds, 'POST', '/api/2.0/database/synced_tables', {
        body: {
          name: options.targetTable,
          database_instance_name: options.instanceName,
          ...(options.database ? { logical_database_name: options.database } : {}),
          spec: {
            source_table_full_name: source,
            primary_key_columns: key,
            scheduling_policy: policy,
            ...(options.timeseriesKey ? { timeseries_key: options.timeseriesKey } : {}),
            create_database_objects_if_missing: true,
          },
        },
      });
      if (options.wait === false) return printJson(created);
      printJson(
        await waitFor(creds, created.name, online, parseDuration(String(options.timeout)), {
          failOnFailedState: true,
        }),
      );
    });

  database
    .command('sync-synced-table <NAME>')
    .description("Start an update of the synced table's pipeline (as POST /pipelines/{id}/updates).")
    .option('--full-refresh', 'Copy the source whole again.')
    .option('--wait', 'Wait until the update has finished.')
    .option('--timeout <duration>', 'Maximum time to wait.', '20m0s')
    .action(
      async (
        name: string,
        options: { fullRefresh?: boolean; wait?: boolean; timeout: string },
        command: Command,
      ) => {
        const creds = credentials(command);
        const table = await call<SyncedTable>(creds, 'GET', tablePath(name));
        const pipelineId = table.data_synchronization_status?.pipeline_id as string;
        const { update_id } = await call<{ update_id: string }>(
          creds,
          'POST',
          `/api/2.0/pipelines/${segment(pipelineId)}/updates`,
          { body: { full_refresh: options.fullRefresh ?? false } },
        );
        if (!options.wait) return printJson({ update_id, pipeline_id: pipelineId });
        const finished = async () => {
          const { updates } = await call<{
            updates: { update_id: string; state: string; message?: string }[];
          }>(creds, 'GET', `/api/2.0/pipelines/${segment(pipelineId)}/updates`);
          const update = updates.find((u) => u.update_id === update_id);
          if (update?.state === 'FAILED') {
            throw new PierError(
              'INVALID_STATE',
              `The update of ${name} failed: ${update.message ?? 'no message'}`,
            );
          }
          return update?.state === 'COMPLETED';
        };
        printJson(
          await waitFor(creds, name, finished, parseDuration(options.timeout), { failOnFailedState: false }),
        );
      },
    );
}
