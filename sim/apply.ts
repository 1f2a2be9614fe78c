// Server-side apply and field ownership (metadata.managedFields, FieldsV1), after
// kubernetes-api-facts.md's description of structured-merge-diff: every HTTP write records which manager set
// which fields; an apply patch (`application/apply-patch+yaml`) merges the manager's configuration, removes the
// fields it applied before and no longer applies (unless another manager owns them), and fails with 409
// Conflict when it would change a field another manager owns (unless `force=true`). List semantics come from
// the merge-key table below (list-maps by key, sets of scalars, other lists atomic). Pure functions.
import { ApiError, badRequest } from "./errors";
import { cloneJson } from "./json";
import type { KubeObject } from "./types";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

export interface ManagedFieldsEntry {
  manager: string;
  operation: "Apply" | "Update";
  apiVersion: string;
  time: string;
  fieldsType: "FieldsV1";
  fieldsV1: Obj;
  subresource?: string;
}

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Keys of list-maps by field name (a `ports` list under a container is keyed by containerPort). */
export function listKeys(field: string, parentField: string | undefined): string[] | "set" | undefined {
  switch (field) {
    case "containers":
    case "initContainers":
    case "ephemeralContainers":
    case "env":
    case "volumes":
    case "imagePullSecrets":
    case "hostAliases":
      return field === "hostAliases" ? ["ip"] : ["name"];
    case "volumeMounts":
      return ["mountPath"];
    case "ports":
      return parentField === "containers" || parentField === "initContainers"
        ? ["containerPort", "protocol"]
        : ["port", "protocol"];
    case "conditions":
      return ["type"];
    case "ownerReferences":
      return ["uid"];
    case "finalizers":
      return "set";
    default:
      return undefined;
  }
}

/** Fields the server owns or resets: never part of a field set. */
const IGNORED_METADATA = new Set([
  "name",
  "namespace",
  "generateName",
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
  "managedFields",
  "selfLink",
]);

function itemKey(item: Json, keys: string[]): string {
  const o = isObj(item) ? item : {};
  const k: Obj = {};
  for (const key of keys) if (o[key] !== undefined) k[key] = o[key];
  // protocol defaults to TCP for port keys, so that {containerPort: 80} and {containerPort: 80, protocol: TCP} match
  if (keys.includes("protocol") && k.protocol === undefined) k.protocol = "TCP";
  return `k:${JSON.stringify(k)}`;
}

/** Leaf paths (elements joined by \n) of an object's fields, for the part (`spec` or `status`) tracked. */
export function fieldPaths(o: Json, part: "main" | "status"): Set<string> {
  const out = new Set<string>();
  const walk = (
    v: Json,
    path: string[],
    field: string | undefined,
    parentField: string | undefined,
  ): void => {
    if (Array.isArray(v)) {
      const keys = field === undefined ? undefined : listKeys(field, parentField);
      if (keys === undefined || v.length === 0) {
        out.add(path.join("\n"));
        return;
      }
      for (const item of v) {
        if (keys === "set") {
          out.add([...path, `v:${JSON.stringify(item)}`].join("\n"));
          continue;
        }
        const p = [...path, itemKey(item, keys)];
        out.add([...p, "."].join("\n"));
        if (isObj(item)) for (const [k, x] of Object.entries(item)) walk(x, [...p, `f:${k}`], k, field);
      }
      return;
    }
    if (isObj(v) && Object.keys(v).length > 0) {
      for (const [k, x] of Object.entries(v)) walk(x, [...path, `f:${k}`], k, field);
      return;
    }
    out.add(path.join("\n"));
  };
  if (!isObj(o)) return out;
  for (const [k, v] of Object.entries(o)) {
    if (k === "apiVersion" || k === "kind") continue;
    if ((k === "status") !== (part === "status")) continue;
    if (k === "metadata" && isObj(v)) {
      for (const [mk, mv] of Object.entries(v))
        if (!IGNORED_METADATA.has(mk)) walk(mv, ["f:metadata", `f:${mk}`], mk, "metadata");
      continue;
    }
    walk(v, [`f:${k}`], k, undefined);
  }
  return out;
}

export function toFieldsV1(paths: Iterable<string>): Obj {
  const root: Obj = {};
  for (const p of paths) {
    let node = root;
    for (const el of p.split("\n")) {
      if (el === ".") {
        node["."] = {};
        continue;
      }
      node = (node[el] ??= {}) as Obj;
    }
  }
  return root;
}

export function fromFieldsV1(tree: Obj | undefined): Set<string> {
  const out = new Set<string>();
  const walk = (node: Obj, path: string[]): void => {
    const entries = Object.entries(node);
    if (entries.length === 0 && path.length > 0) out.add(path.join("\n"));
    for (const [k, v] of entries) {
      if (k === ".") out.add([...path, "."].join("\n"));
      else walk(isObj(v) ? v : {}, [...path, k]);
    }
  };
  walk(tree ?? {}, []);
  return out;
}

/** The value at a path, or undefined. */
function valueAt(o: Json, path: string): Json | undefined {
  let cur: Json | undefined = o;
  for (const el of path.split("\n")) {
    if (cur === undefined) return undefined;
    if (el === ".") return cur;
    if (el.startsWith("f:")) cur = isObj(cur) ? cur[el.slice(2)] : undefined;
    else if (el.startsWith("k:")) {
      const want = JSON.parse(el.slice(2)) as Obj;
      const keys = Object.keys(want);
      cur = Array.isArray(cur) ? cur.find((item) => itemKey(item, keys) === el) : undefined;
    } else if (el.startsWith("v:")) {
      const want = el.slice(2);
      cur = Array.isArray(cur) ? cur.find((item) => JSON.stringify(item) === want) : undefined;
    }
  }
  return cur;
}

function removeAt(o: Json, path: string): void {
  const els = path.split("\n");
  if (els[els.length - 1] === ".") els.pop();
  let cur: Json | undefined = o;
  for (let i = 0; i < els.length - 1; i++) cur = valueAt(cur as Json, els[i]);
  const last = els[els.length - 1];
  if (last.startsWith("f:") && isObj(cur)) delete cur[last.slice(2)];
  else if (Array.isArray(cur)) {
    const idx = cur.findIndex((item) =>
      last.startsWith("v:")
        ? JSON.stringify(item) === last.slice(2)
        : itemKey(item, Object.keys(JSON.parse(last.slice(2)) as Obj)) === last,
    );
    if (idx >= 0) cur.splice(idx, 1);
  }
}

/** Merges an applied configuration into a live object (list-maps by key, sets by value, others replaced). */
function merge(live: Json | undefined, config: Json, field?: string, parentField?: string): Json {
  if (Array.isArray(config)) {
    const keys = field === undefined ? undefined : listKeys(field, parentField);
    if (keys === undefined || !Array.isArray(live)) return cloneJson(config);
    if (keys === "set") {
      const seen = new Set(live.map((x) => JSON.stringify(x)));
      return [...live, ...config.filter((x) => !seen.has(JSON.stringify(x)))];
    }
    const out = live.slice();
    for (const item of config) {
      const key = itemKey(item, keys);
      const idx = out.findIndex((x) => itemKey(x, keys) === key);
      if (idx >= 0) out[idx] = merge(out[idx], item, undefined, field);
      else out.push(cloneJson(item));
    }
    return out;
  }
  if (isObj(config)) {
    const out: Obj = isObj(live) ? { ...live } : {};
    for (const [k, v] of Object.entries(config)) out[k] = merge(out[k], v, k, field);
    return out;
  }
  return config;
}

function entriesOf(o: KubeObject): ManagedFieldsEntry[] {
  return ((o.metadata.managedFields as ManagedFieldsEntry[] | undefined) ?? []).map((e) => ({ ...e }));
}

/** Field ownership after a non-apply write by `manager`: it owns what it changed; removed fields are disowned. */
export function trackUpdate(
  before: KubeObject | undefined,
  after: KubeObject,
  manager: string,
  time: string,
  subresource?: "status",
): ManagedFieldsEntry[] {
  const part = subresource === "status" ? "status" : "main";
  const oldPaths = before ? fieldPaths(before as unknown as Json, part) : new Set<string>();
  const newPaths = fieldPaths(after as unknown as Json, part);
  const changed = [...newPaths].filter(
    (p) =>
      !oldPaths.has(p) ||
      JSON.stringify(valueAt(before as unknown as Json, p)) !==
        JSON.stringify(valueAt(after as unknown as Json, p)),
  );
  const removed = [...oldPaths].filter((p) => !newPaths.has(p));
  const entries = before ? entriesOf(before) : [];
  const result: ManagedFieldsEntry[] = [];
  let mine: ManagedFieldsEntry | undefined;
  for (const e of entries) {
    const paths = fromFieldsV1(e.fieldsV1);
    for (const p of [...changed, ...removed]) paths.delete(p);
    if (e.manager === manager && e.operation === "Update" && (e.subresource ?? "") === (subresource ?? "")) {
      mine = e;
      for (const p of changed) paths.add(p);
    }
    if (paths.size > 0) result.push({ ...e, fieldsV1: toFieldsV1(paths), ...(e === mine ? { time } : {}) });
  }
  if (!mine && changed.length > 0) {
    result.push({
      manager,
      operation: "Update",
      apiVersion: after.apiVersion ?? "v1",
      time,
      fieldsType: "FieldsV1",
      fieldsV1: toFieldsV1(changed),
      ...(subresource ? { subresource } : {}),
    });
  }
  return result;
}

function conflictError(kindName: string, name: string, conflicts: [string, string][]): ApiError {
  const describe = (p: string): string =>
    p
      .split("\n")
      .map((el) => (el.startsWith("f:") ? `.${el.slice(2)}` : el === "." ? "" : `[${el.slice(2)}]`))
      .join("");
  const lines = conflicts.map(([m, p]) => `conflict with "${m}": ${describe(p)}`);
  const message =
    conflicts.length === 1
      ? `Apply failed with 1 conflict: ${lines[0]}`
      : `Apply failed with ${conflicts.length} conflicts: ${lines.join("\n")}`;
  return new ApiError({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason: "Conflict",
    details: {
      name,
      kind: kindName,
      causes: conflicts.map(([m, p]) => ({
        reason: "FieldManagerConflict",
        message: `conflict with "${m}"`,
        field: describe(p),
      })),
    },
    code: 409,
  });
}

/**
 * The object after `manager` applies `config` to `live` (undefined: the object does not exist yet), with its
 * managedFields. Throws 409 on conflicts unless `force`.
 */
export function applyConfiguration(
  live: KubeObject | undefined,
  config: KubeObject,
  opts: { manager: string; force: boolean; time: string; kindName: string; subresource?: "status" },
): KubeObject {
  if (config.metadata?.managedFields !== undefined) throw badRequest("metadata.managedFields must be nil");
  const part = opts.subresource === "status" ? "status" : "main";
  const applied = fieldPaths(config as unknown as Json, part);
  const entries = live ? entriesOf(live) : [];
  const sub = opts.subresource ?? "";
  const mineIdx = entries.findIndex(
    (e) => e.manager === opts.manager && e.operation === "Apply" && (e.subresource ?? "") === sub,
  );
  const previous = mineIdx >= 0 ? fromFieldsV1(entries[mineIdx].fieldsV1) : new Set<string>();
  const others = entries
    .filter((_, i) => i !== mineIdx)
    .map((e) => ({ entry: e, paths: fromFieldsV1(e.fieldsV1) }));
  const conflicts: [string, string][] = [];
  if (live) {
    for (const p of applied) {
      const liveValue = JSON.stringify(valueAt(live as unknown as Json, p));
      const wanted = JSON.stringify(valueAt(config as unknown as Json, p));
      for (const o of others) {
        if (!o.paths.has(p) || liveValue === wanted) continue;
        if (opts.force) o.paths.delete(p);
        else conflicts.push([o.entry.manager, p]);
      }
    }
  }
  if (conflicts.length > 0) throw conflictError(opts.kindName, config.metadata?.name ?? "", conflicts);
  // Shared ownership: a field applied with the same value another manager set is co-owned (no conflict).
  const target = (live ? cloneJson(live) : { metadata: {} }) as unknown as Obj;
  for (const p of previous) {
    if (applied.has(p) || others.some((o) => o.paths.has(p))) continue;
    removeAt(target, p);
  }
  const merged = merge(target, config as unknown as Json) as unknown as KubeObject;
  const managed: ManagedFieldsEntry[] = [];
  for (const o of others) if (o.paths.size > 0) managed.push({ ...o.entry, fieldsV1: toFieldsV1(o.paths) });
  managed.push({
    manager: opts.manager,
    operation: "Apply",
    apiVersion: config.apiVersion ?? "v1",
    time: opts.time,
    fieldsType: "FieldsV1",
    fieldsV1: toFieldsV1(applied),
    ...(opts.subresource ? { subresource: opts.subresource } : {}),
  });
  merged.metadata = { ...merged.metadata, managedFields: managed };
  return merged;
}
