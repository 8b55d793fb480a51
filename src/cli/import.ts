import { loadConfig } from '../config/config.ts';
import { openKeys, openStore, provenanceSigner } from '../main.ts';
import { assertNotInUse } from './exclusive.ts';
import { defaultBatchSize, importFiles, type ImportProgress } from '../jobs/import/importer.ts';
import { formatSummary } from '../jobs/import/report.ts';
import { parse, UsageError } from './args.ts';

export const importHelp = `Usage: bastion import [options] <files or directories...>

Loads FHIR resources into the store through the same pipeline as the REST API (validation,
access decision, audit). Directories are searched recursively.

  *.ndjson, *.jsonl      one resource per line (bulk data). A line with an id is stored as
                         PUT Type/id (re-running changes nothing), one without as POST Type.
                         Conditional references (Practitioner?identifier=...) are resolved to
                         the one resource they match, wherever it is in the import.
  *.json                 a transaction or batch Bundle (POSTed to the base as one request;
                         urn:uuid references are rewritten), a collection/searchset Bundle
                         (unpacked like NDJSON), or a single resource.
  *.gz                   either of the above, gzipped.

A file whose first record has no resourceType (e.g. a bulk export's log.ndjson) is skipped.
A resource already stored with the same content is not written again. Errors do not stop the
import: the summary lists each with its file:line; the exit code is then 1.

Options:
  --data-dir <dir>     data directory (BASTION_DATA_DIR; default ./data)
  --config <file>      JSON config file (BASTION_CONFIG)
  --server-ids         send transaction/batch Bundles exactly as written: POST entries get new
                       server-assigned ids (importing twice stores them twice). By default a
                       POST entry whose resource has an id is stored under that id (PUT).
  --batch-size <n>     NDJSON resources per transaction (default ${defaultBatchSize})
  -q, --quiet          no progress line (there is none either when stderr is not a terminal)
  -h, --help           this help
`;

export async function importCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    'data-dir': { type: 'string' }, config: { type: 'string' }, quiet: { type: 'boolean', short: 'q' },
    'server-ids': { type: 'boolean' }, 'batch-size': { type: 'string' },
  }, true);
  if (values.help) {
    process.stdout.write(importHelp);
    return;
  }
  if (positionals.length === 0) throw new UsageError('name the NDJSON or JSON files (or directories) to import; see --help');
  const batchText = values['batch-size'] as string | undefined;
  const batchSize = batchText === undefined ? defaultBatchSize : Number(batchText);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10000 || !/^\d+$/.test(batchText ?? '1')) {
    throw new UsageError(`--batch-size must be an integer from 1 to 10000 (got "${batchText}")`);
  }
  const config = loadConfig({ dataDir: values['data-dir'] as string | undefined }, process.env, values.config as string | undefined);
  const showProgress = !values.quiet && process.stderr.isTTY === true;
  const keys = await openKeys(config.dataDir, config.keyProvider);
  assertNotInUse(config.dataDir, keys);
  const store = await openStore(config.dataDir, keys, config);
  let report;
  try {
    // After the store: a first import creates the data dir.
    const signer = config.provenanceSignatures ? await provenanceSigner(config.dataDir, keys) : undefined;
    report = await importFiles(positionals, {
      store, config, serverIds: values['server-ids'] === true, batchSize, ...(signer ? { provenanceSigner: signer } : {}),
      onProgress: showProgress ? (p) => process.stderr.write(`\r\x1b[K${progressLine(p)}`) : undefined,
    });
  } finally {
    if (showProgress) process.stderr.write('\r\x1b[K');
    await store.close();
  }
  process.stdout.write(formatSummary(report));
  if (report.errors.length > 0) {
    throw new Error(`${report.errors.length} error${report.errors.length === 1 ? '' : 's'}: those resources were not imported (listed above)`);
  }
}

/** `importing 12/54 files  18.3/51.2 MB  35%  9,120 resources  0 errors  Encounter.000.ndjson` */
export function progressLine(p: ImportProgress): string {
  const mb = (n: number) => (n / 1048576).toFixed(1);
  const pct = p.bytesTotal > 0 ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 100;
  const width = 20;
  const filled = Math.round((pct / 100) * width);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  const file = p.file ? `  ${p.file.split('/').pop()}` : '';
  const line = `${bar} ${String(pct).padStart(3)}%  ${p.filesDone}/${p.filesTotal} files  ${mb(p.bytesDone)}/${mb(p.bytesTotal)} MB  ` +
    `${p.resources.toLocaleString('en-US')} resources  ${p.errors} error${p.errors === 1 ? '' : 's'}${file}`;
  const columns = process.stderr.columns ?? 100;
  return line.length >= columns ? line.slice(0, columns - 1) : line;
}
