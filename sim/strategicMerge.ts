// Strategic merge patch (`application/strategic-merge-patch+json`) for the kinds kube-sim serves: list-maps
// merged by their merge keys (containers, env, volumes, ports, conditions, ... — the table in sim/apply.ts),
// `finalizers` merged as a set, other lists replaced; and the patch directives `$patch` (replace, delete,
// merge), `$retainKeys`, `$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>`. Pure.
import { listKeys } from "./apply";
import { cloneJson } from "./json";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

const ORDER = "$setElementOrder/";
const DELETE_FROM = "$deleteFromPrimitiveList/";

function keyOf(item: Json, keys: string[]): string {
  const o = isObj(item) ? item : {};
  return JSON.stringify(keys.map((k) => o[k] ?? (k === "protocol" ? "TCP" : null)));
}

function mergeList(
  live: Json | undefined,
  patch: Json[],
  field: string,
  parentField: string | undefined,
): Json {
  if (patch.some((p) => isObj(p) && p.$patch === "replace"))
    return cloneJson(patch.filter((p) => !(isObj(p) && p.$patch === "replace")));
  const keys = listKeys(field, parentField);
  const current = Array.isArray(live) ? live : [];
  if (keys === "set") {
    const seen = new Set(current.map((x) => JSON.stringify(x)));
    return [...current, ...patch.filter((x) => !seen.has(JSON.stringify(x)))];
  }
  if (keys === undefined) return cloneJson(patch);
  const out = current.slice();
  for (const item of patch) {
    const k = keyOf(item, keys);
    const idx = out.findIndex((x) => keyOf(x, keys) === k);
    if (isObj(item) && item.$patch === "delete") {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) out[idx] = mergeObject(out[idx], item as Obj, field);
    else out.push(stripDirectives(item));
  }
  return out;
}

function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObj(v)) return v;
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) {
    if (k.startsWith("$")) continue;
    if (x !== null) out[k] = stripDirectives(x);
  }
  return out;
}

function order(list: Json, wanted: Json[], field: string, parentField: string | undefined): Json {
  if (!Array.isArray(list)) return list;
  const keys = listKeys(field, parentField);
  const idOf = (x: Json): string =>
    keys === undefined || keys === "set" ? JSON.stringify(x) : keyOf(x, keys);
  const rank = new Map(wanted.map((w, i) => [idOf(w), i]));
  return list
    .map((x, i) => ({ x, r: rank.get(idOf(x)) ?? wanted.length + i }))
    .sort((a, b) => a.r - b.r)
    .map((e) => e.x);
}

function mergeObject(live: Json | undefined, patch: Obj, field?: string): Json {
  if (patch.$patch === "delete") return null;
  if (patch.$patch === "replace") return stripDirectives(patch);
  const out: Obj = isObj(live) ? { ...live } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k === "$patch" || k === "$retainKeys" || k.startsWith(ORDER) || k.startsWith(DELETE_FROM)) continue;
    if (v === null) delete out[k];
    else if (Array.isArray(v)) out[k] = mergeList(out[k], v, k, field);
    else if (isObj(v)) {
      const merged = mergeObject(out[k], v, k);
      if (merged === null) delete out[k];
      else out[k] = merged;
    } else out[k] = v;
  }
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith(DELETE_FROM) && Array.isArray(v)) {
      const name = k.slice(DELETE_FROM.length);
      const drop = new Set(v.map((x) => JSON.stringify(x)));
      if (Array.isArray(out[name])) out[name] = out[name].filter((x) => !drop.has(JSON.stringify(x)));
    }
    if (k.startsWith(ORDER) && Array.isArray(v)) {
      const name = k.slice(ORDER.length);
      if (out[name] !== undefined) out[name] = order(out[name], v, name, field);
    }
  }
  if (Array.isArray(patch.$retainKeys)) {
    const keep = new Set(patch.$retainKeys.map(String));
    for (const k of Object.keys(out)) if (!keep.has(k)) delete out[k];
  }
  return out;
}

/** The object after a strategic merge patch. */
export function applyStrategicMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return cloneJson(patch as Json);
  return mergeObject(target as Json, patch);
}
