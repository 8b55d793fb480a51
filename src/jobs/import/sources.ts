import { createReadStream, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { pipeline } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip, gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import type { Readable } from 'node:stream';
import type { ImportIssue } from './report.ts';
import { isResourceType } from '../../fhir/definitions.ts';

export type FileKind = 'ndjson' | 'json';

export interface InputFile {
  /** As the user named it (or joined under the directory they named): errors print this. */
  path: string;
  kind: FileKind;
  gzip: boolean;
  /** Size on disk (compressed size for .gz): the progress counts these bytes. */
  size: number;
  /** For bulk-data style names (`Practitioner.000.ndjson`), the resource type the name announces. */
  nameType?: string;
}

const extensions: [RegExp, FileKind, boolean][] = [
  [/\.(ndjson|jsonl)$/i, 'ndjson', false],
  [/\.(ndjson|jsonl)\.gz$/i, 'ndjson', true],
  [/\.json$/i, 'json', false],
  [/\.json\.gz$/i, 'json', true],
];

/**
 * Resource types that other resources commonly reference conditionally (bulk exports such as
 * Synthea's write `Practitioner?identifier=...`): their NDJSON files are imported first so those
 * references resolve on the first pass. Anything still unresolved gets a second pass at the end.
 */
const referencedFirst = [
  'Organization', 'Location', 'Practitioner', 'PractitionerRole', 'HealthcareService', 'Endpoint',
  'Patient', 'RelatedPerson', 'Group', 'Device', 'Medication', 'Substance',
];

function classify(path: string): { kind: FileKind; gzip: boolean } | undefined {
  for (const [re, kind, gzip] of extensions) if (re.test(path)) return { kind, gzip };
  return undefined;
}

/**
 * The files to import, from files and directories (searched recursively; only .ndjson, .jsonl
 * and .json files, optionally gzipped, are taken from directories). A named file with another
 * extension, or a path that does not exist, is an error. Order: NDJSON files of commonly
 * referenced types first, then everything in the order given (directories sorted by name).
 */
export function collectInputs(paths: string[]): { files: InputFile[]; errors: ImportIssue[] } {
  const files: InputFile[] = [];
  const errors: ImportIssue[] = [];
  const seen = new Set<string>();
  const add = (path: string, size: number) => {
    const c = classify(path);
    if (!c) return false;
    const key = resolve(path);
    if (seen.has(key)) return true;
    seen.add(key);
    const first = basename(path).split('.')[0];
    files.push({ path, ...c, size, nameType: c.kind === 'ndjson' && isResourceType(first) ? first : undefined });
    return true;
  };
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (err) {
      errors.push({ file: dir, message: `cannot read the directory: ${(err as Error).message}` });
      return;
    }
    for (const name of names) {
      const path = join(dir, name);
      let st;
      try {
        st = statSync(path);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(path);
      else if (st.isFile()) add(path, st.size);
    }
  };
  for (const path of paths) {
    let st;
    try {
      st = statSync(path);
    } catch {
      errors.push({ file: path, message: 'no such file or directory' });
      continue;
    }
    if (st.isDirectory()) walk(path);
    else if (!add(path, st.size)) errors.push({ file: path, message: 'not an NDJSON (.ndjson, .jsonl) or JSON (.json) file, optionally .gz' });
  }
  const rank = (f: InputFile) => {
    const i = f.nameType ? referencedFirst.indexOf(f.nameType) : -1;
    return i < 0 ? referencedFirst.length : i;
  };
  const ordered = files.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i).map((x) => x.f);
  return { files: ordered, errors };
}

/**
 * The lines of an NDJSON file (gunzipped if .gz), numbered from 1, without their line ending.
 * Streams, so files larger than memory work; `onBytes` reports bytes read from disk.
 */
export async function* readLines(file: InputFile, onBytes: (n: number) => void): AsyncGenerator<{ text: string; line: number }> {
  const raw = createReadStream(file.path, { highWaterMark: 256 * 1024 });
  let stream: Readable = raw;
  if (file.gzip) {
    raw.on('data', (chunk) => onBytes(chunk.length));
    stream = pipeline(raw, createGunzip(), () => undefined);
  }
  const decoder = new StringDecoder('utf8');
  let parts: string[] = [];
  let line = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (!file.gzip) onBytes(chunk.length);
      const s = decoder.write(chunk);
      let start = 0;
      let nl = s.indexOf('\n');
      while (nl >= 0) {
        parts.push(s.slice(start, nl));
        const text = parts.join('');
        parts = [];
        line++;
        yield { text: clean(text, line), line };
        start = nl + 1;
        nl = s.indexOf('\n', start);
      }
      if (start < s.length) parts.push(s.slice(start));
    }
    parts.push(decoder.end());
    const rest = parts.join('');
    if (rest.length > 0) {
      line++;
      yield { text: clean(rest, line), line };
    }
  } finally {
    raw.destroy();
    stream.destroy();
  }
}

function clean(text: string, line: number): string {
  let t = text.endsWith('\r') ? text.slice(0, -1) : text;
  if (line === 1 && t.charCodeAt(0) === 0xfeff) t = t.slice(1);
  return t;
}

const gunzipAsync = promisify(gunzip);

/** A whole JSON file as text (gunzipped if .gz). */
export async function readText(file: InputFile): Promise<string> {
  let data = await readFile(file.path);
  if (file.gzip) data = await gunzipAsync(data);
  const text = data.toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}
