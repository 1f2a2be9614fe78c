// A tiny, deterministic YAML emitter for plain JSON data (maps, lists, strings, finite numbers, booleans,
// null). Used for the job-templates ConfigMap values, which the chart ships as YAML text.
//
// Why YAML and not JSON text: the chart's ConfigMap holds YAML, people read it with kubectl, and both
// dispatchers parse YAML. Why our own emitter: the renderer must run inside the rollout's serialized
// dynamic provider, which may import Node built-ins only.
//
// Safety rules, so that a YAML 1.1 parser (Go's yaml.v2, sigs.k8s.io/yaml) and a YAML 1.2 parser (serde_yaml,
// the `yaml` npm package) read back exactly the same data:
// - a string is written plain only when it is made of [A-Za-z0-9_./:=-], starts with a letter, '_' or '/',
//   does not end with ':', is no YAML 1.1 boolean or null word and no bare exponent ("e0", "E-0"); everything else
//   is double-quoted;
// - in double quotes, every character outside printable ASCII is escaped (\n, \t, \uXXXX, \UXXXXXXXX), so no
//   YAML 1.1 line-break characters (NEL, LS, PS) can fold a value;
// - map keys are kept in insertion order (the renderer builds objects in the chart's key order).

import { isMap } from "./goValues";

export class YamlEmitError extends Error {
  override readonly name = "YamlEmitError";
}

const PLAIN = /^[A-Za-z_/][A-Za-z0-9_./:=-]*$/;
const RESERVED = new Set(["y", "yes", "n", "no", "true", "false", "on", "off", "null", "~"]);

// The `yaml` package's YAML 1.1 schema reads an exponent with no mantissa ("e0", "E12", "E-0", "e+5") as a float.
const BARE_EXPONENT = /^[eE][-+]?[0-9]/;

function isPlainSafe(text: string): boolean {
  return (
    PLAIN.test(text) && !text.endsWith(":") && !RESERVED.has(text.toLowerCase()) && !BARE_EXPONENT.test(text)
  );
}

function hex(codePoint: number, width: number): string {
  return codePoint.toString(16).toUpperCase().padStart(width, "0");
}

function doubleQuoted(text: string, path: string): string {
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) {
        throw new YamlEmitError(
          `${path}: string holds an unpaired UTF-16 surrogate; give valid Unicode text`,
        );
      }
      out += `\\U${hex(text.codePointAt(i) as number, 8)}`;
      i++;
      continue;
    }
    if (unit >= 0xdc00 && unit <= 0xdfff) {
      throw new YamlEmitError(`${path}: string holds an unpaired UTF-16 surrogate; give valid Unicode text`);
    }
    const ch = text[i];
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (unit >= 0x20 && unit <= 0x7e) out += ch;
    else out += `\\u${hex(unit, 4)}`;
  }
  return `${out}"`;
}

function scalar(value: unknown, path: string): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new YamlEmitError(`${path}: ${value} is not a finite number`);
    return JSON.stringify(value);
  }
  if (typeof value === "string") return isPlainSafe(value) ? value : doubleQuoted(value, path);
  throw new YamlEmitError(
    `${path}: ${typeof value} is not JSON data (use strings, numbers, booleans, null, lists, maps)`,
  );
}

function key(name: string, path: string): string {
  return isPlainSafe(name) ? name : doubleQuoted(name, path);
}

function isBlock(value: unknown): boolean {
  return (Array.isArray(value) && value.length > 0) || (isMap(value) && Object.keys(value).length > 0);
}

function inline(value: unknown, path: string): string {
  if (Array.isArray(value)) return "[]";
  if (isMap(value)) return "{}";
  return scalar(value, path);
}

function emitBlock(value: unknown, indent: number, path: string, lines: string[]): void {
  const pad = " ".repeat(indent);
  if (Array.isArray(value)) {
    value.forEach((item, index) => {
      const itemPath = `${path}[${index}]`;
      if (!isBlock(item)) {
        lines.push(`${pad}- ${inline(item, itemPath)}`);
        return;
      }
      // Emit the item two columns deeper, then put the dash in place of the first line's indentation.
      const start = lines.length;
      emitBlock(item, indent + 2, itemPath, lines);
      lines[start] = `${pad}- ${lines[start].slice(indent + 2)}`;
    });
    return;
  }
  if (isMap(value)) {
    for (const [name, item] of Object.entries(value)) {
      if (item === undefined) continue;
      const itemPath = path ? `${path}.${name}` : name;
      if (isBlock(item)) {
        lines.push(`${pad}${key(name, itemPath)}:`);
        emitBlock(item, indent + 2, itemPath, lines);
      } else {
        lines.push(`${pad}${key(name, itemPath)}: ${inline(item, itemPath)}`);
      }
    }
    return;
  }
  lines.push(`${pad}${scalar(value, path)}`);
}

/** One YAML document for `value`, ending with a newline. Keys with an `undefined` value are left out. */
export function toYaml(value: unknown): string {
  if (!isBlock(value)) return `${inline(value, "(root)")}\n`;
  const lines: string[] = [];
  emitBlock(value, 0, "", lines);
  return `${lines.join("\n")}\n`;
}
