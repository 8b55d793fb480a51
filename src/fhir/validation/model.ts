import { resourceDefinitions, typeDefinitions, type ElementDefinition, type StructureDefinition } from '../definitions.ts';
import { PRIMITIVES, type PrimitiveType } from './primitives.ts';
import { isNonR4, R4_ELEMENTS } from './r4-corrections.ts';

/**
 * A compact model of the R4 definitions, compiled once so that validating a resource is one walk
 * over its JSON with a map lookup per property. StructureDefinition snapshots are far too
 * verbose to consult per write.
 */

/** An object-valued type: a complex data type, a backbone element, or a resource. */
export interface ComplexType {
  readonly kind: 'complex';
  /** Type name ('HumanName', 'Patient') or, for a backbone element, its path ('Patient.contact'). */
  readonly name: string;
  readonly isResource: boolean;
  /** JSON property name -> what it holds. Choice elements appear once per allowed type. */
  readonly props: Map<string, Prop>;
  /** Elements with min > 0. */
  readonly required: Element[];
}

/** "Any resource": Resource-typed elements (contained, Bundle.entry.resource) hold any concrete resource. */
export interface AnyResource {
  readonly kind: 'resource';
}

export type DataType = PrimitiveType | ComplexType | AnyResource;

export interface Element {
  /** The definition path, e.g. 'Observation.value[x]'. */
  readonly path: string;
  readonly min: number;
  readonly max: number;
  /** FHIR JSON represents an element as an array exactly when its max is above 1. */
  readonly isArray: boolean;
  readonly isChoice: boolean;
  /** Every JSON name the element can take ('valueString', 'valueQuantity', ...). */
  readonly keys: readonly string[];
  /** A required binding's ValueSet URL, without version. */
  readonly requiredBinding: string | undefined;
}

export interface Prop {
  readonly element: Element;
  readonly type: DataType;
  /** FHIRPath segment for locations: 'name', or 'value.ofType(Quantity)' for a choice. */
  readonly segment: string;
  /**
   * System-typed elements (Element.id, Extension.url) are XML attributes: in JSON they are plain
   * strings and cannot carry a `_name` sibling with extensions.
   */
  readonly isAttribute: boolean;
}

export interface ValidationModel {
  readonly resources: ReadonlyMap<string, ComplexType>;
  readonly types: ReadonlyMap<string, ComplexType>;
  /** The shape of a `_name` primitive-extension object: id and extension only. */
  readonly primitiveElement: ComplexType;
}

export const ANY_RESOURCE: AnyResource = { kind: 'resource' };

const FHIRPATH_SYSTEM = 'http://hl7.org/fhirpath/System.';
const FHIR_TYPE_EXT = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';
const SIMPLE_QUANTITY = 'http://hl7.org/fhir/StructureDefinition/SimpleQuantity';

function newComplex(name: string, isResource: boolean): ComplexType {
  return { kind: 'complex', name, isResource, props: new Map(), required: [] };
}

const upperFirst = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** The snapshot with the package's non-R4 elements removed and the R4 originals put back. */
function r4Elements(sd: StructureDefinition): ElementDefinition[] {
  const out: ElementDefinition[] = [];
  const byPath = new Map<string, ElementDefinition>();
  for (const e of sd.snapshot?.element ?? []) {
    if (isNonR4(e.path)) continue;
    byPath.set(e.path, e);
    out.push(e);
  }
  for (const fix of R4_ELEMENTS) {
    if (fix.path.slice(0, fix.path.indexOf('.')) !== sd.type) continue;
    const existing = byPath.get(fix.path);
    if (existing) out[out.indexOf(existing)] = fix;
    else out.push(fix);
  }
  return out;
}

function parseMax(max: string | undefined): number {
  return max === undefined || max === '*' ? Infinity : Number(max);
}

/** The value set URL of a required binding; others are not enforced. */
function requiredBinding(e: ElementDefinition): string | undefined {
  if (e.binding?.strength !== 'required' || !e.binding.valueSet) return undefined;
  const bar = e.binding.valueSet.indexOf('|');
  return bar < 0 ? e.binding.valueSet : e.binding.valueSet.slice(0, bar);
}

interface Compiler {
  types: Map<string, ComplexType>;
  resources: Map<string, ComplexType>;
  simpleQuantity: ComplexType;
}

function resolveType(c: Compiler, code: string, profiles: string[] | undefined): DataType | undefined {
  if (code === 'Resource' || code === 'DomainResource') return ANY_RESOURCE;
  if (code === 'Quantity' && profiles?.includes(SIMPLE_QUANTITY)) return c.simpleQuantity;
  return PRIMITIVES.get(code) ?? c.types.get(code) ?? c.resources.get(code);
}

/** Fills a type's model (and its backbone elements') from its StructureDefinition. */
function compileDefinition(c: Compiler, sd: StructureDefinition, root: ComplexType): void {
  const elements = r4Elements(sd);
  const owners = new Map<string, ComplexType>([[sd.type, root]]);
  // An element with child elements defines its own (backbone) type, whatever its type code says.
  const hasChildren = new Set<string>();
  for (const e of elements) {
    const dot = e.path.lastIndexOf('.');
    if (dot > 0) hasChildren.add(e.path.slice(0, dot));
  }
  for (const e of elements) {
    if (hasChildren.has(e.path) && e.path !== sd.type) owners.set(e.path, newComplex(e.path, false));
  }
  const contentRefs: { owner: ComplexType; e: ElementDefinition }[] = [];

  for (const e of elements) {
    const dot = e.path.lastIndexOf('.');
    if (dot < 0) continue;
    const owner = owners.get(e.path.slice(0, dot));
    const max = parseMax(e.max);
    if (!owner || max === 0) continue;
    if (e.contentReference) {
      contentRefs.push({ owner, e });
      continue;
    }
    const own = owners.get(e.path);
    if (own) {
      addElement(owner, e, [{ code: '', type: own }]);
      continue;
    }
    const types: { code: string; type: DataType; isAttribute?: boolean }[] = [];
    for (const t of e.type ?? []) {
      if (t.code.startsWith(FHIRPATH_SYSTEM)) {
        // Resource.id is a FHIR `id` (and may have `_id`); the R4 snapshot types it as System.String.
        const isResourceId = root.isResource && e.path === `${sd.type}.id`;
        const fhirType = isResourceId ? 'id' : systemFhirType(t.extension) ?? 'string';
        const type = PRIMITIVES.get(fhirType) ?? PRIMITIVES.get('string')!;
        types.push({ code: fhirType, type, isAttribute: !isResourceId });
        continue;
      }
      const type = resolveType(c, t.code, t.profile);
      if (type) types.push({ code: t.code, type });
    }
    if (types.length > 0) addElement(owner, e, types);
  }

  for (const { owner, e } of contentRefs) {
    const target = owners.get(e.contentReference!.replace(/^.*#/, ''));
    if (target) addElement(owner, e, [{ code: '', type: target }]);
  }
}

function systemFhirType(extensions: unknown[] | undefined): string | undefined {
  for (const ext of (extensions ?? []) as { url?: string; valueUrl?: string }[]) {
    if (ext.url === FHIR_TYPE_EXT && ext.valueUrl) return ext.valueUrl;
  }
  return undefined;
}

function addElement(owner: ComplexType, e: ElementDefinition, types: { code: string; type: DataType; isAttribute?: boolean }[]): void {
  const name = e.path.slice(e.path.lastIndexOf('.') + 1);
  const isChoice = name.endsWith('[x]');
  const base = isChoice ? name.slice(0, -3) : name;
  const keys = isChoice ? types.map((t) => base + upperFirst(t.code)) : [base];
  const max = parseMax(e.max);
  const element: Element = {
    path: e.path,
    min: e.min ?? 0,
    max,
    isArray: max > 1,
    isChoice,
    keys,
    requiredBinding: requiredBinding(e),
  };
  types.forEach((t, i) => {
    owner.props.set(keys[i], {
      element,
      type: t.type,
      segment: isChoice ? `${base}.ofType(${t.code})` : base,
      // xhtml has no extensions in R4 (xhtml.extension is 0..0), so no `_div` either.
      isAttribute: t.isAttribute === true || t.code === 'xhtml',
    });
  });
  if (element.min > 0) owner.required.push(element);
}

let model: ValidationModel | undefined;

/** Compiles the model on first use (the definitions themselves take a few hundred ms to load). */
export function validationModel(): ValidationModel {
  if (model) return model;
  const c: Compiler = { types: new Map(), resources: new Map(), simpleQuantity: newComplex('SimpleQuantity', false) };
  const typeDefs = [...typeDefinitions().values()].filter((sd) => sd.kind === 'complex-type');
  const resourceDefs = [...resourceDefinitions().values()];
  // Shells first: types refer to each other (Identifier -> Reference -> Identifier).
  for (const sd of typeDefs) c.types.set(sd.type, newComplex(sd.type, false));
  for (const sd of resourceDefs) c.resources.set(sd.type, newComplex(sd.type, true));
  for (const sd of typeDefs) compileDefinition(c, sd, c.types.get(sd.type)!);
  for (const sd of resourceDefs) compileDefinition(c, sd, c.resources.get(sd.type)!);

  // SimpleQuantity is Quantity without a comparator (its StructureDefinition constrains max to 0).
  for (const [key, prop] of c.types.get('Quantity')!.props) if (key !== 'comparator') c.simpleQuantity.props.set(key, prop);
  c.simpleQuantity.required.push(...c.types.get('Quantity')!.required);

  // Abstract bases are never instantiated; they only lend elements to concrete resources.
  for (const [name, sd] of resourceDefinitions()) if (sd.abstract) c.resources.delete(name);

  const primitiveElement = newComplex('Element', false);
  const string = PRIMITIVES.get('string')!;
  const idElement: Element = { path: 'Element.id', min: 0, max: 1, isArray: false, isChoice: false, keys: ['id'], requiredBinding: undefined };
  const extElement: Element = { path: 'Element.extension', min: 0, max: Infinity, isArray: true, isChoice: false, keys: ['extension'], requiredBinding: undefined };
  primitiveElement.props.set('id', { element: idElement, type: string, segment: 'id', isAttribute: true });
  primitiveElement.props.set('extension', { element: extElement, type: c.types.get('Extension')!, segment: 'extension', isAttribute: false });

  model = { resources: c.resources, types: c.types, primitiveElement };
  return model;
}
