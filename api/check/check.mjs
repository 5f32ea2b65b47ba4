// Checks the contracts in api/ as strictly as their consumers may read them
// (scripts/check-specs.sh runs it; make test runs that):
//
//   1. YAML 1.2, strict: no parse error or warning, no duplicate key, the
//      same data under YAML 1.1 (no yes/on/0777-style scalar that an older
//      parser reads differently), and no key without a value outside
//      examples, defaults, const and enum — an unquoted ", " in a flow
//      mapping ({description: RFC 3339, UTC, ms.}) makes keys of the text.
//   2. api/openapi.yaml against the OpenAPI 3.1 JSON schema
//      (@seriousme/openapi-schema-validator), api/asyncapi.yaml with the
//      AsyncAPI parser (the 3.0 JSON schema and its rules).
//   3. Redocly's recommended rules, warnings as errors (redocly.yaml), run
//      by the caller.
//
// Usage: node check.mjs FILE...  (exit 1 on any problem)
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Parser } from '@asyncapi/parser';

const valueMayBeNull = new Set(['example', 'examples', 'default', 'const', 'enum']);
let problems = 0;
const report = (file, line, msg) => {
  problems++;
  console.error(`${file}${line ? ':' + line : ''}: ${msg}`);
};

function lineOf(src, offset) {
  return src.slice(0, offset).split('\n').length;
}

function checkYAML(file, src) {
  const opts = { version: '1.2', strict: true, uniqueKeys: true, prettyErrors: true };
  const doc = YAML.parseDocument(src, opts);
  for (const e of [...doc.errors, ...doc.warnings]) {
    report(file, e.linePos?.[0]?.line, `YAML: ${e.message.split('\n')[0]}`);
  }
  if (doc.errors.length) return null;
  const data = doc.toJS({ maxAliasCount: -1 });
  const as11 = YAML.parse(src, { ...opts, version: '1.1' });
  if (JSON.stringify(as11) !== JSON.stringify(data)) {
    report(file, 0, 'YAML 1.1 and 1.2 read this file differently (quote yes/no/on/off, octal-looking and sexagesimal-looking scalars)');
  }
  YAML.visit(doc, {
    Pair(_, pair) {
      if (YAML.isScalar(pair.key) && valueMayBeNull.has(String(pair.key.value))) return YAML.visit.SKIP;
      const v = pair.value;
      if (v === null || (YAML.isScalar(v) && v.value === null)) {
        const key = String(pair.key?.value ?? pair.key);
        report(file, lineOf(src, pair.key?.range?.[0] ?? 0),
          `key ${JSON.stringify(key)} has no value: quote a text that holds ", " or ": " inside {…}`);
      }
    },
  });
  return data;
}

for (const file of process.argv.slice(2)) {
  const src = readFileSync(file, 'utf8');
  const data = checkYAML(file, src);
  if (!data) continue;
  if (data.openapi) {
    if (!String(data.openapi).startsWith('3.1.')) report(file, 0, `openapi is ${data.openapi}, want 3.1.x`);
    const res = await new Validator().validate(data);
    if (!res.valid) {
      for (const e of [].concat(res.errors)) report(file, 0, `OpenAPI 3.1: ${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params ?? {})}`);
    }
  } else if (data.asyncapi) {
    if (!String(data.asyncapi).startsWith('3.0.')) report(file, 0, `asyncapi is ${data.asyncapi}, want 3.0.x`);
    const { diagnostics } = await new Parser().parse(src, { source: file });
    for (const d of diagnostics) {
      // 0 error, 1 warning; the only one allowed: 3.1 exists (the
      // contract is 3.0).
      if (d.code === 'asyncapi-latest-version' || d.severity > 1) continue;
      report(file, d.range?.start?.line + 1, `AsyncAPI 3.0 (${d.code}): ${d.message} at ${d.path.join('.')}`);
    }
  } else {
    report(file, 0, 'neither an OpenAPI nor an AsyncAPI document');
  }
}
if (problems) {
  console.error(`${problems} problem(s)`);
  process.exit(1);
}
