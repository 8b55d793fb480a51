import type { Interaction } from '../access/interaction.ts';

/** A record naming more patients than this keeps the first ones (a bulk read is flagged by its size anyway). */
const maxPatients = 10_000;

/**
 * The patients an interaction concerns, for the audit record (and so for the accounting of
 * disclosures): the one it aimed at, the Patients it touched or returned, those whose records
 * its writes changed (`written`, from the versions before and after), and every patient the
 * returned content refers to. Found by scanning the serialized response for `Patient/<id>` rather
 * than parsing it: parsing every returned resource again cost a search more than auditing it.
 * A reference that is not a compartment link (a performer who is a patient) is counted too: it
 * names the patient in data that was disclosed.
 */
export function patientsConcerned(interaction: Interaction, entities: readonly string[], body: string | undefined, written: readonly string[] = []): string[] {
  const found = new Set<string>(written);
  if (interaction.resourceType === 'Patient' && interaction.id) found.add(interaction.id);
  if (interaction.compartment?.type === 'Patient') found.add(interaction.compartment.id);
  for (const e of entities) {
    if (e.startsWith('Patient/')) addId(found, e, 'Patient/'.length);
  }
  if (body) patientsNamedIn(body, found);
  return [...found];
}

/**
 * Adds the id of every `Patient/<id>` in serialized FHIR JSON that is the value of a `reference`
 * (relative, or at the end of an absolute URL): free text that happens to read `Patient/7` names
 * nobody.
 */
export function patientsNamedIn(text: string, into: Set<string>): void {
  let at = text.indexOf('Patient/');
  while (at >= 0 && into.size < maxPatients) {
    const before = text.charCodeAt(at - 1);
    const open = before === 34 /* " */ ? at - 1 : before === 47 /* / */ ? text.lastIndexOf('"', at) : -1;
    if (open > 0 && text.startsWith(referenceKey, open - referenceKey.length)) addId(into, text, at + 'Patient/'.length);
    at = text.indexOf('Patient/', at + 8);
  }
}

const referenceKey = '"reference":';

function addId(into: Set<string>, text: string, start: number): void {
  let end = start;
  while (end < text.length && end - start <= 64 && isIdChar(text.charCodeAt(end))) end++;
  const length = end - start;
  if (length === 0 || length > 64) return;
  const after = end < text.length ? text.charCodeAt(end) : 34;
  // The id ends the reference (a quote) or a version follows (/_history/n).
  if ((after === 34 || after === 47) && into.size < maxPatients) into.add(text.slice(start, end));
}

function isIdChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 46;
}
