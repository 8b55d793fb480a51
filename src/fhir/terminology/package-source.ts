import { readDefinitionFile } from '../definitions.ts';
import type { CodeSystem, TerminologySource, ValueSet } from './types.ts';

/**
 * valuesets.json holds the R4 core code systems and value sets; v3-codesystems.json the HL7 v3
 * code systems and value sets some of them include (e.g. v3-ActEncounterCode). Loaded on first use:
 * most processes never need them.
 */
const SOURCES = ['valuesets.json', 'v3-codesystems.json'];

let codeSystems: Map<string, CodeSystem> | undefined;
let valueSets: Map<string, ValueSet> | undefined;

function load(): void {
  codeSystems = new Map();
  valueSets = new Map();
  for (const file of SOURCES) {
    const bundle = readDefinitionFile<{ entry: { resource: CodeSystem | ValueSet }[] }>(file);
    for (const { resource } of bundle.entry) {
      if (resource.resourceType === 'CodeSystem') {
        if (!codeSystems.has(resource.url)) codeSystems.set(resource.url, resource);
      } else if (resource.resourceType === 'ValueSet' && !valueSets.has(resource.url)) {
        valueSets.set(resource.url, resource);
      }
    }
  }
}

/** The code systems and value sets published with FHIR R4. */
export const packageTerminology: TerminologySource = {
  codeSystem(url) {
    if (!codeSystems) load();
    return codeSystems!.get(url);
  },
  valueSet(url) {
    if (!valueSets) load();
    return valueSets!.get(url);
  },
};
