import { loadConfig } from '../config/config.ts';
import { openKeys, openStore } from '../main.ts';
import { assertNotInUse } from './exclusive.ts';
import { parse } from './args.ts';

export const reindexHelp = `Usage: bastion reindex [options]

Rebuilds the search index of every current resource from its stored content, in one
transaction: for after an upgrade that changes which search parameters are indexed or how.
The server must be stopped; searches and writes wait for it otherwise.

Options:
  --data-dir <dir>     data directory (BASTION_DATA_DIR; default ./data)
  --config <file>      JSON config file (BASTION_CONFIG)
  -h, --help           this help
`;

export async function reindexCommand(args: string[]): Promise<void> {
  const { values } = parse(args, { 'data-dir': { type: 'string' }, config: { type: 'string' } });
  if (values.help) {
    process.stdout.write(reindexHelp);
    return;
  }
  const config = loadConfig({ dataDir: values['data-dir'] as string | undefined }, process.env, values.config as string | undefined);
  const keys = await openKeys(config.dataDir, config.keyProvider);
  assertNotInUse(config.dataDir, keys);
  const store = await openStore(config.dataDir, keys, config);
  const started = performance.now();
  let n: number;
  try {
    n = await store.reindex();
  } finally {
    await store.close();
  }
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`reindexed ${n.toLocaleString('en-US')} resources in ${seconds.toFixed(1)} s\n`);
}
