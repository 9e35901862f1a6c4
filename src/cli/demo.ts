import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { advanceDemoTable, createDemoTable } from '../lakehouse/demo.js';
import { dataDirLayout, resolveDataDir } from '../server/data-dir.js';
import { ApiError, call } from './api-client.js';
import { resolveCredentials } from './config.js';
import { printJson } from './output.js';

export const DEMO_TABLE = 'analytics.gold.daily_revenue';

/** The external location `pier demo` makes for the lakehouse directory. */
const DEMO_EXTERNAL_LOCATION = 'pier_lakehouse';

function lakehouseDir(command: Command): string {
  const { dataDir } = command.optsWithGlobals() as { dataDir?: string };
  return dataDirLayout(resolveDataDir(dataDir)).lakehouseDir;
}

function demoLocation(command: Command): string {
  return join(lakehouseDir(command), 'analytics', 'gold', 'daily_revenue');
}

/**
 * Creates a catalog object, treating "already exists" as done, so `pier demo`
 * can run again; `done` says which other refusals also mean "already there".
 */
async function ensure(
  creds: ReturnType<typeof resolveCredentials>,
  path: string,
  body: unknown,
  done: (error: ApiError) => boolean = () => false,
): Promise<void> {
  try {
    await call(creds, 'POST', path, { body });
  } catch (error) {
    if (!(error instanceof ApiError && (error.status === 409 || done(error)))) throw error;
  }
}

/**
 * `pier demo`: a real Delta table `analytics.gold.daily_revenue` (Change Data
 * Feed on) under the data dir, registered in the catalog inside the external
 * location `pier_lakehouse` (the data dir's lakehouse directory); `pier demo advance`
 * commits a new version (inserts, updates, a delete) to it.
 */
export function registerDemoCommands(program: Command): void {
  const demo = program
    .command('demo')
    .description(`Create and register the demo Delta table ${DEMO_TABLE}.`)
    .action(async (_options: unknown, command: Command) => {
      const location = demoLocation(command);
      let version: number | undefined;
      if (!existsSync(join(location, '_delta_log'))) {
        await mkdir(location, { recursive: true });
        version = await createDemoTable(location);
      }
      const globals = command.optsWithGlobals() as { profile?: string; dataDir?: string };
      const creds = resolveCredentials(globals);
      // Tables are registered only inside an external location; an admin's own covering one does as well.
      await ensure(
        creds,
        '/api/2.1/unity-catalog/external-locations',
        {
          name: DEMO_EXTERNAL_LOCATION,
          url: pathToFileURL(lakehouseDir(command)).href,
          comment: 'Pier demo lakehouse',
        },
        (error) => error.status === 400 && /overlaps external location/.test(error.message),
      );
      await ensure(creds, '/api/2.1/unity-catalog/catalogs', {
        name: 'analytics',
        comment: 'Pier demo lakehouse',
      });
      await ensure(creds, '/api/2.1/unity-catalog/schemas', { name: 'gold', catalog_name: 'analytics' });
      await ensure(creds, '/api/2.1/unity-catalog/tables', {
        name: 'daily_revenue',
        catalog_name: 'analytics',
        schema_name: 'gold',
        table_type: 'EXTERNAL',
        data_source_format: 'DELTA',
        storage_location: location,
      });
      printJson({
        table: DEMO_TABLE,
        storage_location: location,
        ...(version !== undefined ? { version } : {}),
      });
    });

  demo
    .command('advance')
    .description(`Commit a new version to ${DEMO_TABLE}: inserts, updates and a delete, with change data.`)
    .action(async (_options: unknown, command: Command) => {
      const location = demoLocation(command);
      if (!existsSync(join(location, '_delta_log'))) {
        throw new Error(`There is no demo table at ${location} yet. Create it with \`pier demo\`.`);
      }
      const version = await advanceDemoTable(location);
      printJson({ table: DEMO_TABLE, storage_location: location, version });
    });
}
