/**
 * Loads HL7's FHIRPath R4 test suite (fhir-test-cases `r4/fhirpath/tests-fhir-r4.xml`) and runs one
 * case on the fhirpath.js engine set up the way the server's search path sets it up
 * (src/fhir/search/evaluate.ts, compileWithEngine). Used by fhirpath-hl7.test.ts.
 *
 * Checking conventions follow HL7's own Java runner (FHIRPathTests in org.hl7.fhir.core): outputs
 * are compared position by position unless the test says `ordered="false"`, an output's `type`
 * must equal the result's type, `invalid` passes on any error at compile or evaluation time, and
 * `predicate="true"` turns the result into one boolean first.
 */
import { readFileSync } from 'node:fs';
import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import { sharedData } from '../shared-data.ts';

export const suiteDir = `${sharedData}fhirpath-tests/`;

export interface SuiteOutput {
  /** `boolean`, `integer`, `decimal`, `string`, `code`, `id`, `date`, `dateTime`, `time`, `Quantity`; absent means "a literal, compare the text". */
  type?: string;
  text: string;
}

export interface SuiteCase {
  group: string;
  name: string;
  /** The name, made unique: the suite has two tests called testEquivalent23, the second becomes `testEquivalent23#2`. */
  id: string;
  inputFile?: string;
  /** `strict` and the like; informational only, the engine has no strict mode to switch on. */
  mode?: string;
  predicate: boolean;
  ordered: boolean;
  expression: string;
  /** `syntax`, `semantic`, `execution` (or `true`): some error is expected. */
  invalid?: string;
  outputs: SuiteOutput[];
}

export interface SuiteGroup {
  name: string;
  cases: SuiteCase[];
}

export interface CaseResult {
  pass: boolean;
  /** Why it failed, for assertion messages. */
  detail?: string;
}

// ---------------------------------------------------------------------------------------------
// XML: the suite file uses elements, attributes, text, comments and entities, nothing else; CDATA
// is handled in case a later revision uses it. Comments must be dropped before looking for
// elements because several of them hold commented-out <test> and <modeTest> elements.

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const namedEntities: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** One pass, so `&amp;lt;` becomes `&lt;` and not `<` (the suite's escape('html') tests rely on it). */
export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (all, ref: string) => {
    if (ref.startsWith('#x')) return String.fromCodePoint(parseInt(ref.slice(2), 16));
    if (ref.startsWith('#')) return String.fromCodePoint(parseInt(ref.slice(1), 10));
    return namedEntities[ref] ?? all;
  });
}

function parseAttributes(source: string): Record<string, string> {
  const attrs: Record<string, string> = {};
  for (const m of source.matchAll(/([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
    attrs[m[1]] = decodeEntities(m[2] ?? m[3]);
  }
  return attrs;
}

/** A minimal, non-validating XML reader: enough for the suite, and it fails loudly on anything odd. */
export function parseXml(xml: string): XmlElement {
  const root: XmlElement = { name: '#document', attrs: {}, children: [], text: '' };
  const stack = [root];
  let i = 0;
  const skipPast = (terminator: string): number => {
    const end = xml.indexOf(terminator, i);
    if (end < 0) throw new Error(`unterminated ${xml.slice(i, i + 20)}… at offset ${i}`);
    return end + terminator.length;
  };
  while (i < xml.length) {
    const top = stack[stack.length - 1];
    const lt = xml.indexOf('<', i);
    if (lt < 0 || lt > i) {
      const end = lt < 0 ? xml.length : lt;
      top.text += decodeEntities(xml.slice(i, end));
      i = end;
    } else if (xml.startsWith('<!--', i)) {
      i = skipPast('-->');
    } else if (xml.startsWith('<![CDATA[', i)) {
      const end = skipPast(']]>');
      top.text += xml.slice(i + 9, end - 3);
      i = end;
    } else if (xml.startsWith('<?', i) || xml.startsWith('<!', i)) {
      i = skipPast('>');
    } else if (xml.startsWith('</', i)) {
      const end = skipPast('>');
      const name = xml.slice(i + 2, end - 1).trim();
      if (stack.length < 2 || top.name !== name) throw new Error(`unexpected </${name}> at offset ${i}`);
      stack.pop();
      i = end;
    } else {
      const m = /^<([A-Za-z_][\w.:-]*)((?:\s+[^\s=>/]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/.exec(xml.slice(i, i + 4000));
      if (!m) throw new Error(`malformed tag at offset ${i}: ${xml.slice(i, i + 40)}`);
      const element: XmlElement = { name: m[1], attrs: parseAttributes(m[2]), children: [], text: '' };
      top.children.push(element);
      if (m[3] !== '/') stack.push(element);
      i += m[0].length;
    }
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1].name}>`);
  return root;
}

function child(element: XmlElement, name: string): XmlElement | undefined {
  return element.children.find((c) => c.name === name);
}

function toCase(group: string, test: XmlElement, id: string): SuiteCase {
  const expression = child(test, 'expression');
  if (!expression) throw new Error(`test ${test.attrs.name} has no <expression>`);
  const invalid = expression.attrs.invalid;
  return {
    group,
    name: test.attrs.name,
    id,
    inputFile: test.attrs.inputfile,
    mode: test.attrs.mode,
    predicate: test.attrs.predicate === 'true',
    ordered: test.attrs.ordered !== 'false',
    expression: expression.text,
    invalid: invalid && invalid !== 'false' ? invalid : undefined,
    outputs: test.children.filter((c) => c.name === 'output').map((o) => ({ type: o.attrs.type, text: o.text })),
  };
}

export function loadSuite(file = `${suiteDir}tests-fhir-r4.xml`): SuiteGroup[] {
  const tests = child(parseXml(readFileSync(file, 'utf8')), 'tests');
  if (!tests) throw new Error(`${file}: no <tests> root`);
  const seen = new Map<string, number>();
  const idFor = (name: string): string => {
    const n = (seen.get(name) ?? 0) + 1;
    seen.set(name, n);
    return n === 1 ? name : `${name}#${n}`;
  };
  return tests.children
    .filter((g) => g.name === 'group')
    .map((g) => ({
      name: g.attrs.name,
      cases: g.children.filter((t) => t.name === 'test').map((t) => toCase(g.attrs.name, t, idFor(t.attrs.name))),
    }));
}

// ---------------------------------------------------------------------------------------------
// Evaluation.

/** The options src/fhir/search/evaluate.ts passes to fhirpath.compile (keep the two in step). */
export const serverOptions = { resolveInternalTypes: false } as const;

/**
 * trace() would otherwise print to stdout from inside the runner. Swallowing it changes no result;
 * the server's FHIRPath Patch path passes the same no-op.
 */
const options = { ...serverOptions, traceFn: () => {} };

const inputs = new Map<string, unknown>();

/** The suite names XML inputs; input-json/ holds a JSON twin of each under the same base name. */
function loadInput(inputFile: string): unknown {
  let input = inputs.get(inputFile);
  if (input === undefined) {
    input = JSON.parse(readFileSync(`${suiteDir}input-json/${inputFile.replace(/\.(xml|json)$/, '')}.json`, 'utf8'));
    inputs.set(inputFile, input);
  }
  // A fresh copy per case, so nothing one expression might leave behind reaches the next.
  return structuredClone(input);
}

interface Actual {
  type: string | undefined;
  value: unknown;
  /** From the input (FHIR JSON) rather than computed by the engine (its own Decimal, Quantity, DateTime…). */
  fromInput: boolean;
}

/** `System.DateTime` → `dateTime`, `FHIR.code` → `code`: the spelling the suite's `type` uses. */
function suiteType(name: string | undefined): string | undefined {
  if (!name) return undefined;
  if (name.startsWith('FHIR.')) return name.slice(5);
  const bare = name.startsWith('System.') ? name.slice(7) : name;
  return bare === 'Quantity' ? bare : bare[0].toLowerCase() + bare.slice(1);
}

function isNode(v: unknown): v is { data: unknown } {
  return typeof v === 'object' && v !== null && 'data' in v && 'path' in v;
}

/** The same unwrapping the server does: a model node gives its JSON data, an engine value stays. */
function evaluate(c: SuiteCase, input: unknown): Actual[] {
  const compiled = fhirpath.compile(c.expression, r4, options);
  const nodes = compiled(input as never) as unknown[];
  const types = fhirpath.types(nodes);
  return nodes.map((node, i) => ({ type: suiteType(types[i]), value: isNode(node) ? node.data : node, fromInput: isNode(node) }));
}

/** Exists-like, as the Java runner's convertToBoolean: empty is false, a lone boolean is itself. */
function asPredicate(actual: Actual[]): Actual[] {
  const single = actual.length === 1 && typeof actual[0].value === 'boolean' ? actual[0].value : actual.length > 0;
  return [{ type: 'boolean', value: single, fromInput: false }];
}

export function runCase(c: SuiteCase): CaseResult {
  // Outside the try: a missing input file is a broken harness, not the error an `invalid` test wants.
  // No input file means no focus at all: an empty collection, not an empty object.
  const input = c.inputFile ? loadInput(c.inputFile) : [];
  let actual: Actual[];
  try {
    actual = evaluate(c, input);
  } catch (err) {
    if (c.invalid) return { pass: true };
    return { pass: false, detail: `error: ${firstLine(err)}` };
  }
  if (c.invalid) return { pass: false, detail: `expected a ${c.invalid} error, got ${show(actual)}` };
  if (c.predicate) actual = asPredicate(actual);
  const ok = c.ordered ? matchInOrder(c.outputs, actual) : matchAnyOrder(c.outputs, actual);
  return ok ? { pass: true } : { pass: false, detail: `expected ${showExpected(c.outputs)}, got ${show(actual)}` };
}

function matchInOrder(expected: SuiteOutput[], actual: Actual[]): boolean {
  return expected.length === actual.length && expected.every((e, i) => matches(e, actual[i]));
}

function matchAnyOrder(expected: SuiteOutput[], actual: Actual[]): boolean {
  if (expected.length !== actual.length) return false;
  const unused = [...actual];
  return expected.every((e) => {
    const at = unused.findIndex((a) => matches(e, a));
    if (at >= 0) unused.splice(at, 1);
    return at >= 0;
  });
}

// ---------------------------------------------------------------------------------------------
// Comparing one output. Typed outputs must match the type exactly (`code` is not `string`), as in
// the Java runner. Untyped outputs are FHIRPath literals (`1.58750000`, `@2014-01`, `1.5 'cm'`);
// their kind is read off the text and only the value is compared.

const quantityText = /^(-?\d+(?:\.\d+)?)\s*('(?:[^'\\]|\\.)*'|[A-Za-z]+)$/;

function kindOf(output: SuiteOutput): string {
  if (output.type) return output.type;
  const t = output.text;
  if (t.startsWith('@T')) return 'time';
  if (t.startsWith('@')) return 'dateTime';
  if (/^-?\d+(\.\d+)?$/.test(t)) return 'decimal';
  if (quantityText.test(t)) return 'Quantity';
  return 'string';
}

function matches(expected: SuiteOutput, actual: Actual): boolean {
  if (expected.type && expected.type !== actual.type) return false;
  if (expected.text === '') return true;
  switch (kindOf(expected)) {
    case 'integer':
    case 'decimal':
      return sameNumber(expected.text, actual.value);
    case 'date':
    case 'dateTime':
      return String(actual.value) === expected.text.replace(/^@/, '');
    case 'time':
      return String(actual.value) === expected.text.replace(/^@T/, '');
    case 'Quantity':
      return sameQuantity(expected.text, actual);
    default:
      return typeof actual.value !== 'object' && String(actual.value) === expected.text;
  }
}

/**
 * By value, not by text: the engine computes decimals as JS numbers, and resources reach the server
 * as parsed JSON where `1.0` is already `1`, so the scale in `1.58750000` is nothing the server
 * could keep. Integer versus decimal is still checked, through the output's `type`.
 */
function sameNumber(text: string, value: unknown): boolean {
  const n = toNumber(value);
  return n !== undefined && n === Number(text);
}

/** JSON numbers as they are; the engine's integers and decimals are FP_Decimal objects that print their value. */
function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (value instanceof fhirpath.FP_Decimal) return Number(String(value));
  return undefined;
}

/** The engine's own Quantity keeps the unit as written (`'mg'` quoted, `week` bare); a FHIR Quantity has code or unit. */
function sameQuantity(text: string, actual: Actual): boolean {
  const m = quantityText.exec(text);
  if (!m || typeof actual.value !== 'object' || actual.value === null) return false;
  const q = actual.value as { value?: unknown; unit?: unknown; code?: unknown };
  if (!sameNumber(m[1], q.value)) return false;
  if (actual.fromInput) return m[2].replace(/^'(.*)'$/, '$1') === (q.code ?? q.unit);
  return m[2] === q.unit;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0].slice(0, 160);
}

function show(actual: Actual[]): string {
  const items = actual.map((a) => `${a.type ?? '?'} ${a.fromInput && typeof a.value === 'object' ? JSON.stringify(a.value) : String(a.value)}`);
  return `[${items.join(', ').slice(0, 200)}]`;
}

function showExpected(outputs: SuiteOutput[]): string {
  return `[${outputs.map((o) => `${o.type ?? 'literal'} ${o.text}`).join(', ').slice(0, 200)}]`;
}
