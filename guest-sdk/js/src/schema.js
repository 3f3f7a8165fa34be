// Input schemas for strict clients: the checks made when a tool is defined, the normalisation
// the Rust and Python SDKs apply (guest-sdk/src/schema.rs, guest-sdk/python/sanctum_plugin/
// _schema.py), and the optional-null rule applied to arguments (wit/conformance/optional-nulls.json).
//
// Strict clients (Letta grades every tool for OpenAI's strict mode; Letta Code drops a server
// over one bad schema) want closed objects, every property listed, and optional ones nullable:
// - every object gets `additionalProperties: false` (and `properties`, even empty);
// - a property not in `required` is optional and also accepts `null`: strict clients send unset
//   optional arguments as explicit nulls, and the host removes such nulls before the call;
// - a required property that admits `{}` becomes optional with `default: {}` (Letta refuses it
//   otherwise); the tool still receives `{}` when it is absent.

/** A schema strict clients would refuse, reported when the tool is defined. */
export class SchemaError extends TypeError {
  constructor(message) {
    super(message);
    this.name = 'SchemaError';
  }
}

// Keywords OpenAI's strict mode (and so Letta) rejects, or that let keys no schema can list.
const REFUSED = {
  $ref: 'inline the definition instead of referring to it',
  $defs: 'inline the definitions instead',
  definitions: 'inline the definitions instead',
  allOf: 'merge the branches into one schema',
  not: 'strict clients do not support `not`',
  if: 'strict clients do not support conditionals',
  then: 'strict clients do not support conditionals',
  else: 'strict clients do not support conditionals',
  patternProperties: 'strict clients accept only closed objects; list the properties',
  propertyNames: 'strict clients accept only closed objects; list the properties',
  unevaluatedProperties: 'strict clients accept only closed objects',
  dependentSchemas: 'strict clients do not support dependent schemas',
  dependentRequired: 'strict clients do not support dependent requirements',
  prefixItems: 'use `items` (a list of one kind), not a fixed tuple',
};

const isPlainObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

function hasType(schema, name) {
  return schema.type === name || (Array.isArray(schema.type) && schema.type.includes(name));
}

const isObjectSchema = (schema) => 'properties' in schema || hasType(schema, 'object');

/**
 * The strict form of `schema` (a new object; the argument is not changed). Throws SchemaError,
 * naming the place as `where.path`, for a schema strict clients would refuse.
 */
export function strictSchema(schema, where = 'input') {
  if (!isPlainObject(schema) || schema.type !== 'object') {
    throw new SchemaError(`${where}: the root of an input schema must be {"type": "object", ...}`);
  }
  const copy = structuredClone(schema);
  delete copy.$schema;
  check(copy, where);
  tighten(copy);
  return copy;
}

function check(schema, where) {
  if (!isPlainObject(schema)) throw new SchemaError(`${where}: a schema must be a JSON object`);
  for (const [keyword, advice] of Object.entries(REFUSED)) {
    if (keyword in schema) throw new SchemaError(`${where}: \`${keyword}\` is not allowed: ${advice}`);
  }
  if ('additionalProperties' in schema && schema.additionalProperties !== false) {
    throw new SchemaError(
      `${where}: additionalProperties must be false (or left out): strict clients accept only closed objects; list the properties`,
    );
  }
  if (!('type' in schema || 'anyOf' in schema || 'oneOf' in schema || 'enum' in schema || 'const' in schema)) {
    throw new SchemaError(`${where}: say its type (\`type\`, \`enum\`, \`const\` or \`anyOf\`)`);
  }
  if (hasType(schema, 'array') && !isPlainObject(schema.items)) {
    throw new SchemaError(`${where}: say what the list holds, e.g. "items": {"type": "string"}`);
  }
  if (hasType(schema, 'object') && !('properties' in schema)) {
    throw new SchemaError(`${where}: list the object's \`properties\` (strict clients accept only closed objects)`);
  }
  if ('properties' in schema) {
    if (!isPlainObject(schema.properties)) throw new SchemaError(`${where}: \`properties\` must be an object`);
    for (const [name, property] of Object.entries(schema.properties)) check(property, `${where}.${name}`);
    const required = schema.required ?? [];
    if (!Array.isArray(required)) throw new SchemaError(`${where}: \`required\` must be a list of names`);
    for (const name of required) {
      if (!(name in schema.properties)) throw new SchemaError(`${where}: required property ${JSON.stringify(name)} is not in \`properties\``);
    }
  }
  if (isPlainObject(schema.items)) check(schema.items, `${where}[]`);
  for (const keyword of ['anyOf', 'oneOf']) {
    if (keyword in schema) {
      if (!Array.isArray(schema[keyword])) throw new SchemaError(`${where}: \`${keyword}\` must be a list`);
      schema[keyword].forEach((branch, index) => check(branch, `${where}.${keyword}[${index}]`));
    }
  }
}

// The strictness rules, applied to every subschema (children first), as schema.rs `tighten`.
// `check` allowed only these ways to nest a schema: properties, items, anyOf, oneOf.
function tighten(node) {
  if (!isPlainObject(node)) return;
  if (isPlainObject(node.properties)) Object.values(node.properties).forEach(tighten);
  tighten(node.items);
  for (const keyword of ['anyOf', 'oneOf']) if (Array.isArray(node[keyword])) node[keyword].forEach(tighten);
  if (isObjectSchema(node)) {
    if (!('additionalProperties' in node)) node.additionalProperties = false;
    if (!('properties' in node)) node.properties = {};
    relaxOptionalProperties(node);
  }
}

function relaxOptionalProperties(object) {
  const properties = object.properties;
  const required = (object.required ?? []).filter((name) => {
    const property = properties[name];
    if (isPlainObject(property) && allowsEmptyObject(property)) {
      if (!('default' in property)) property.default = {};
      return false;
    }
    return true;
  });
  for (const [name, property] of Object.entries(properties)) {
    if (!required.includes(name)) properties[name] = nullable(property);
  }
  if (required.length === 0) delete object.required;
  else object.required = required;
}

// Letta's test: an object schema that names no required property and admits no others.
function allowsEmptyObject(schema) {
  return hasType(schema, 'object') && !(schema.required?.length > 0) && schema.additionalProperties === false;
}

/** `schema`, also accepting null (as schema.rs `make_nullable`). */
export function nullable(schema) {
  if (!isPlainObject(schema)) return schema;
  const out = { ...schema };
  if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  for (const keyword of ['anyOf', 'oneOf']) {
    if (Array.isArray(out[keyword])) {
      if (!out[keyword].some((branch) => branch?.type === 'null')) out[keyword] = [...out[keyword], { type: 'null' }];
      return out;
    }
  }
  if (!('type' in out) && ('const' in out || '$ref' in out)) return { anyOf: [schema, { type: 'null' }] };
  if (typeof out.type === 'string' && out.type !== 'null') out.type = [out.type, 'null'];
  else if (Array.isArray(out.type) && !out.type.includes('null')) out.type = [...out.type, 'null'];
  return out;
}

/**
 * The arguments as the tool should see them (a new value): a null for an optional property is
 * dropped, at every depth reached through `properties` and `items`, and an absent property with
 * a `default` gets it. The host drops the nulls too; this makes native tests behave the same.
 */
export function prepareArgs(value, schema) {
  if (Array.isArray(value)) {
    return isPlainObject(schema?.items) ? value.map((item) => prepareArgs(item, schema.items)) : value;
  }
  if (!isPlainObject(value) || !isPlainObject(schema?.properties)) return value;
  const out = { ...value };
  const required = Array.isArray(schema.required) ? schema.required : [];
  for (const [name, property] of Object.entries(schema.properties)) {
    if (!required.includes(name) && out[name] === null) delete out[name];
    if (name in out) out[name] = prepareArgs(out[name], property);
    else if (isPlainObject(property) && 'default' in property) out[name] = structuredClone(property.default);
  }
  return out;
}
