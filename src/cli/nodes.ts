import type { Command } from 'commander';
import type { NodeJson } from '../nodes/view.js';
import { call } from './api-client.js';
import { credentials } from './catalog.js';
import { printJson, printTable } from './output.js';

/** `pier nodes list [--json]` and `pier nodes forget NODE_ID`: the Pier processes that share this store (admins only); `*` marks the one that answered. */
export function registerNodeCommands(program: Command): void {
  const group = program.command('nodes').description('The Pier processes ("nodes") that share this store.');
  group
    .command('list')
    .description('List the nodes: alive or not, where, and what each runs.')
    .option('--json', 'Print JSON.')
    .action(async (options: { json?: boolean }, command: Command) => {
      const { nodes } = await call<{ nodes: NodeJson[] }>(credentials(command), 'GET', '/api/2.0/pier/nodes');
      if (options.json) return printJson(nodes);
      printTable(
        ['NODE', 'STATE', 'HOST', 'API', 'INSTANCES', 'PIPELINES', 'LAST HEARTBEAT'],
        nodes.map((node) => [
          `${node.node_id}${node.is_this_node ? ' *' : ''}`,
          node.state,
          node.host,
          node.api_url ?? '-',
          String(node.instance_count),
          String(node.pipelines_running),
          node.last_heartbeat_time,
        ]),
      );
    });
  group
    .command('forget <NODE_ID>')
    .description('Forget a node that is gone for good: only one that is not running and has no instances.')
    .action(async (id: string, _options: unknown, command: Command) => {
      await call(credentials(command), 'DELETE', `/api/2.0/pier/nodes/${encodeURIComponent(id)}`);
    });
}
