// JSON merge patch (RFC 7386) and JSON patch (RFC 6902, including `test`). Pure.
import { cloneJson } from "./json";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return cloneJson(patch);
  const result: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete result[k];
    else result[k] = applyMergePatch(result[k], v);
  }
  return result;
}

export class JsonPatchError extends Error {
  constructor(
    message: string,
    /** `test` failures are reported apart: kube-apiserver answers them like other patch errors (422). */
    readonly testFailed = false,
  ) {
    super(message);
    this.name = "JsonPatchError";
  }
}

interface Operation {
  op: string;
  path: string;
  from?: string;
  value?: unknown;
}

function parsePointer(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/"))
    throw new JsonPatchError(`invalid JSON pointer "${pointer}": must start with '/'`);
  return pointer
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return (
      ka.length === kb.length &&
      ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]))
    );
  }
  return false;
}

function getAt(doc: unknown, tokens: string[], pointer: string): unknown {
  let cur = doc;
  for (const t of tokens) {
    if (Array.isArray(cur)) {
      const i = Number(t);
      if (!/^(0|[1-9][0-9]*)$/.test(t) || i >= cur.length)
        throw new JsonPatchError(`path "${pointer}" does not exist`);
      cur = cur[i];
    } else if (isObject(cur) && Object.prototype.hasOwnProperty.call(cur, t)) {
      cur = cur[t];
    } else {
      throw new JsonPatchError(`path "${pointer}" does not exist`);
    }
  }
  return cur;
}

function parentOf(doc: unknown, tokens: string[], pointer: string): { parent: unknown; last: string } {
  if (tokens.length === 0) throw new JsonPatchError(`path "${pointer}" names the whole document`);
  return { parent: getAt(doc, tokens.slice(0, -1), pointer), last: tokens[tokens.length - 1] };
}

function add(doc: unknown, pointer: string, value: unknown): unknown {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) return value;
  const { parent, last } = parentOf(doc, tokens, pointer);
  if (Array.isArray(parent)) {
    const i = last === "-" ? parent.length : Number(last);
    if (!(last === "-" || /^(0|[1-9][0-9]*)$/.test(last)) || i > parent.length) {
      throw new JsonPatchError(`array index "${last}" out of range in "${pointer}"`);
    }
    parent.splice(i, 0, value);
  } else if (isObject(parent)) {
    parent[last] = value;
  } else {
    throw new JsonPatchError(`path "${pointer}": parent is not an object or array`);
  }
  return doc;
}

function remove(doc: unknown, pointer: string): unknown {
  const tokens = parsePointer(pointer);
  const { parent, last } = parentOf(doc, tokens, pointer);
  getAt(doc, tokens, pointer);
  if (Array.isArray(parent)) parent.splice(Number(last), 1);
  else delete (parent as Record<string, unknown>)[last];
  return doc;
}

/** Applies an RFC 6902 patch to a copy of `doc`. Throws JsonPatchError. */
export function applyJsonPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new JsonPatchError("a JSON patch must be an array of operations");
  let result = cloneJson(doc) as Json;
  for (const raw of ops as Operation[]) {
    if (!isObject(raw) || typeof raw.op !== "string" || typeof raw.path !== "string") {
      throw new JsonPatchError(`invalid operation ${JSON.stringify(raw)}: "op" and "path" are required`);
    }
    const value = cloneJson(raw.value);
    switch (raw.op) {
      case "add":
        result = add(result, raw.path, value) as Json;
        break;
      case "remove":
        result = remove(result, raw.path) as Json;
        break;
      case "replace":
        getAt(result, parsePointer(raw.path), raw.path);
        result = remove(result, raw.path) as Json;
        result = add(result, raw.path, value) as Json;
        break;
      case "move": {
        if (raw.from === undefined) throw new JsonPatchError(`move: "from" is required`);
        const moved = cloneJson(getAt(result, parsePointer(raw.from), raw.from));
        result = remove(result, raw.from) as Json;
        result = add(result, raw.path, moved) as Json;
        break;
      }
      case "copy": {
        if (raw.from === undefined) throw new JsonPatchError(`copy: "from" is required`);
        const copied = cloneJson(getAt(result, parsePointer(raw.from), raw.from));
        result = add(result, raw.path, copied) as Json;
        break;
      }
      case "test": {
        const actual = getAt(result, parsePointer(raw.path), raw.path);
        if (!deepEqual(actual, raw.value)) {
          throw new JsonPatchError(
            `testing value ${raw.path} failed: expected ${JSON.stringify(raw.value)}, found ${JSON.stringify(actual)}`,
            true,
          );
        }
        break;
      }
      default:
        throw new JsonPatchError(`Unexpected kind: ${raw.op}`);
    }
  }
  return result;
}
