#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { databaseAccess } from '../access/component.js';
import { appSupervisor } from '../apps/supervisor.js';
import { instanceMetrics } from '../metrics/sampler.js';
import { autoscalingSweeper } from '../postgres/sweeper.js';
import type { ComponentFactory } from '../server/pier.js';
import { syncWorkers } from '../sync/worker.js';
import { registerAppCommands } from './apps.js';
import { registerCatalogCommands } from './catalog.js';
import { describeCliError, registerDatabaseCommands, registerKeyCommands } from './database.js';
import { registerDeltaCommands } from './delta.js';
import { registerDemoCommands } from './demo.js';
import { registerExternalLocations } from './external-locations.js';
import { registerNodeCommands } from './nodes.js';
import { registerPostgresCommands, registerPsqlCommand } from './postgres.js';
import { registerServerCommands } from './server.js';
import { registerServicePrincipalCommands } from './service-principals.js';
import { registerSyncedTableCommands } from './synced-tables.js';

// A reader that stops early (`pier delta show … | head`) closes the pipe: end quietly,
// as Unix tools do, instead of with an EPIPE stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}

/** What `pier up` runs besides the API and the reconciler. */
const components: ComponentFactory[] = [
  databaseAccess,
  syncWorkers,
  appSupervisor,
  instanceMetrics,
  autoscalingSweeper,
];

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const program = new Command('pier')
  .description(
    'Self-hostable Lakebase Provisioned: Postgres instances, OAuth credentials over TLS, catalog and reverse ETL.',
  )
  .version(pkg.version)
  .option('--data-dir <dir>', 'Pier data directory (default $PIER_HOME or ~/.pier).')
  .option('-p, --profile <name>', '~/.databrickscfg profile to use.')
  // Subcommands own their options (`pier delta show --version 3` is the table's version, not Pier's).
  .enablePositionalOptions()
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(text) });

registerServerCommands(program, components);
registerDatabaseCommands(program);
registerCatalogCommands(program);
registerExternalLocations(program);
registerDeltaCommands(program);
registerDemoCommands(program);
registerKeyCommands(program);
registerSyncedTableCommands(program);
registerAppCommands(program);
registerNodeCommands(program);
registerServicePrincipalCommands(program);
registerPostgresCommands(program);
registerPsqlCommand(program);
addGlobalOptionsEverywhere(program);

/** `--data-dir` and `--profile` work before or after any subcommand, as in the Databricks CLI. */
function addGlobalOptionsEverywhere(command: Command): void {
  for (const sub of command.commands) {
    if (!sub.options.some((o) => o.long === '--data-dir')) {
      sub.option('--data-dir <dir>', 'Pier data directory (default $PIER_HOME or ~/.pier).');
    }
    if (!sub.options.some((o) => o.long === '--profile'))
      sub.option('-p, --profile <name>', '~/.databrickscfg profile to use.');
    addGlobalOptionsEverywhere(sub);
  }
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.stderr.write(`${describeCliError(error)}\n`);
  process.exit(1);
}
