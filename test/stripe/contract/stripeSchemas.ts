import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { createGenerator, ExposeNodeParser, symbolAtNode } from 'ts-json-schema-generator';
import type { Node } from 'typescript';

/**
 * JSON Schemas of Stripe's objects, events and parameters, generated at test time from the `stripe`
 * SDK's TypeScript declarations (node_modules/stripe/esm/resources/*.d.ts, the API version the SDK
 * pins) with ts-json-schema-generator, and validators for them (ajv). Objects get
 * `additionalProperties: false`: a field the fake sends that this API version does not have fails, like
 * a declared non-optional field that is missing or of the wrong type.
 *
 * Generating takes ~20 s, so the schema is cached under node_modules/.cache keyed by the SDK version,
 * the generator version and stripeTypes.ts itself.
 */

const TYPES_FILE = 'test/stripe/contract/stripeTypes.ts';

// Stripe's declarations reuse short names in different modules (Card in Cards.d.ts and in
// Issuing/Cards.d.ts), which the generator's default naming merges ("Type Card has multiple
// definitions"). Definition names keep the module path instead: `resources.Cards.Card`.
type Naming = { typeChecker: { getFullyQualifiedName(symbol: unknown): string } };
type Context = { getArguments(): Array<{ getName(): string } | undefined> };
(
  ExposeNodeParser.prototype as unknown as {
    getDefinitionName: (this: Naming, node: Node, context: Context) => string;
  }
).getDefinitionName = function (node, context) {
  const full = this.typeChecker.getFullyQualifiedName(symbolAtNode(node));
  const name = full.replace(
    /^"(?:.*\/stripe\/esm\/)?([^"]*)"\./,
    (_m, path: string) => `${path.replace(/\.d$/, '').replaceAll('/', '.')}.`,
  );
  const args = context.getArguments().map((a) => a?.getName());
  return args.length > 0 ? `${name}<${args.join(',')}>` : name;
};

interface Schema {
  $ref: string;
  definitions: Record<string, { properties?: Record<string, { $ref?: string }>; required?: string[] }>;
}

function versionOf(pkg: string): string {
  return (JSON.parse(readFileSync(join('node_modules', pkg, 'package.json'), 'utf8')) as { version: string })
    .version;
}

function generate(): Schema {
  const key = createHash('sha256')
    .update(versionOf('stripe'))
    .update(versionOf('ts-json-schema-generator'))
    .update(readFileSync(TYPES_FILE))
    .digest('hex')
    .slice(0, 16);
  const dir = join('node_modules', '.cache', 'stripe-schemas');
  const file = join(dir, `stripe-${key}.json`);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Schema;
  } catch {
    // Not generated yet for this SDK version.
  }
  const schema = createGenerator({
    path: TYPES_FILE,
    tsconfig: 'tsconfig.json',
    type: ROOT,
    skipTypeCheck: true,
    expose: 'export',
    topRef: true,
    jsDoc: 'none',
    additionalProperties: false,
  }).createSchema(ROOT) as unknown as Schema;
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, JSON.stringify(schema));
  return schema;
}

export interface StripeContract {
  /** Validates `value` as the SDK type declared for `name` in this part of the contract; error lines. */
  errors(name: string, value: unknown): string[];
  /** The top-level property names the SDK declares for a parameters type. */
  paramNames(name: string): string[];
}

const ROOT = 'StripeContractTypes';
type Part = 'objects' | 'events' | 'params';

let cached: Record<Part, StripeContract> | undefined;

/**
 * Objects and events are strict (no field this API version lacks, every declared non-optional field
 * present); parameters are read for their names.
 */
export function stripeContract(): Record<Part, StripeContract> {
  if (cached) return cached;
  const schema = generate();
  // inlineRefs off: each definition compiles once into its own function, shared by every validator.
  const ajv = new Ajv({
    allErrors: true,
    strict: false,
    validateFormats: false,
    inlineRefs: false,
    code: { optimize: false },
  });
  ajv.addSchema(schema, 'stripe');
  const defName = (ref: string): string => decodeURIComponent(ref.slice('#/definitions/'.length));
  const rootDef = schema.definitions[defName(schema.$ref)];
  const validators = new Map<string, ValidateFunction>();
  const part = (name: Part): StripeContract => {
    const partRef = rootDef?.properties?.[name]?.$ref;
    if (!partRef) throw new Error(`${ROOT} declares no ${name}`);
    const partDef = schema.definitions[defName(partRef)];
    const refOf = (member: string): string => {
      const ref = partDef?.properties?.[member]?.$ref;
      if (!ref) throw new Error(`${name} declares no ${member}`);
      return defName(ref);
    };
    return {
      errors(member, value) {
        const ref = refOf(member);
        let validate = validators.get(ref);
        if (!validate) {
          validate = ajv.getSchema(`stripe#/definitions/${encodeURIComponent(ref)}`);
          if (!validate) throw new Error(`no validator for ${member}`);
          validators.set(ref, validate);
        }
        if (validate(value)) return [];
        return (validate.errors ?? []).map(
          (e) => `${member}${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`,
        );
      },
      paramNames(member) {
        return Object.keys(schema.definitions[refOf(member)]?.properties ?? {});
      },
    };
  };
  cached = { objects: part('objects'), events: part('events'), params: part('params') };
  return cached;
}
