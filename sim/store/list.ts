// Lists: one page at a time from a consistent snapshot per resourceVersion (kubernetes-api-facts.md §3):
// continue tokens in the apiserver's format, exact-resourceVersion reads, and the key lookup for a name
// pinned by a field selector.
import { badRequest, expired } from "../errors";
import type { KubeObject } from "../types";
import { objectKey, sortedKeys, Table } from "./model";
import { inScope, parseSelectors } from "./selectors";

export interface ListQuery {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continueToken?: string;
  resourceVersion?: string;
  resourceVersionMatch?: string;
}

export interface ListResult {
  items: KubeObject[];
  resourceVersion: string;
  continueToken?: string;
  remainingItemCount?: number;
}

interface Snapshot {
  createdAt: number;
  keys: string[];
  objects: KubeObject[];
}

/** How many snapshots are kept at most (older ones expire their continue tokens). */
const MAX_SNAPSHOTS = 64;

/** Serves lists; keeps the snapshots that continue tokens and exact-version reads refer to. */
export class Lister {
  private readonly snapshots = new Map<string, Snapshot>();

  constructor(private readonly continueTtlMs: number) {}

  private snapshot(t: Table, rv: number, currentRv: number): Snapshot | undefined {
    const id = `${t.info.name}@${rv}`;
    const now = performance.now();
    for (const [k, s] of this.snapshots) if (now - s.createdAt > this.continueTtlMs) this.snapshots.delete(k);
    const existing = this.snapshots.get(id);
    if (existing) return existing;
    if (rv !== currentRv) return undefined;
    const keys = sortedKeys(t);
    const snap: Snapshot = { createdAt: now, keys, objects: keys.map((k) => t.items.get(k) as KubeObject) };
    this.snapshots.set(id, snap);
    while (this.snapshots.size > MAX_SNAPSHOTS)
      this.snapshots.delete(this.snapshots.keys().next().value as string);
    return snap;
  }

  list(t: Table, q: ListQuery, currentRv: number): ListResult {
    const scope = { namespace: q.namespace, ...parseSelectors(t.info, q.labelSelector, q.fieldSelector) };
    const { label, field } = scope;
    const matches = (o: KubeObject): boolean => inScope(t.info, scope, o);
    let rv = currentRv;
    let startKey = "";
    if (q.continueToken) {
      if (q.resourceVersion && q.resourceVersion !== "0") {
        throw badRequest("specifying resource version is not allowed when using continue");
      }
      const token = decodeContinue(q.continueToken);
      rv = token.rv;
      startKey = token.start;
    }
    const limit = q.limit && q.limit > 0 ? q.limit : 0;
    // An exact resourceVersion (resourceVersionMatch=Exact, or a limited list without match) reads that snapshot.
    const rvText = q.resourceVersion ?? "";
    const exact =
      !q.continueToken &&
      rvText !== "" &&
      rvText !== "0" &&
      (q.resourceVersionMatch === "Exact" || (limit > 0 && !q.resourceVersionMatch));
    if (rvText !== "" && !/^[0-9]+$/.test(rvText))
      throw badRequest(`resourceVersion: Invalid value: "${rvText}": must be a non-negative integer`);
    if (exact && Number(rvText) !== currentRv) {
      rv = Number(rvText);
      if (!this.snapshots.has(`${t.info.name}@${rv}`)) {
        throw expired(`too old resource version: ${rvText} (${currentRv})`);
      }
    }
    // A name pinned by the field selector (how clients re-read one object with list-only RBAC) is a key
    // lookup, not a scan: a 100,000-node fleet re-read node by node would otherwise cost O(N) per request.
    const pinnedName = field?.requiresExactMatch("metadata.name");
    if (
      pinnedName !== undefined &&
      !q.continueToken &&
      rv === currentRv &&
      (!t.info.namespaced || q.namespace !== undefined)
    ) {
      const candidate = t.items.get(objectKey(t.info, q.namespace, pinnedName));
      return { items: candidate && matches(candidate) ? [candidate] : [], resourceVersion: String(rv) };
    }
    if (!limit && !q.continueToken && rv === currentRv) {
      const items: KubeObject[] = [];
      for (const k of sortedKeys(t)) {
        const o = t.items.get(k) as KubeObject;
        if (matches(o)) items.push(o);
      }
      return { items, resourceVersion: String(rv) };
    }
    const snap = this.snapshot(t, rv, currentRv);
    if (!snap) {
      throw expired(
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
      );
    }
    // A namespace is one contiguous key range ("ns/" up to "ns0", '0' following '/').
    const rangeStart = q.namespace !== undefined ? lowerBound(snap.keys, `${q.namespace}/`) : 0;
    const rangeEnd = q.namespace !== undefined ? lowerBound(snap.keys, `${q.namespace}0`) : snap.keys.length;
    let i = Math.max(rangeStart, startKey ? lowerBound(snap.keys, startKey) : 0);
    const items: KubeObject[] = [];
    const max = limit || Number.MAX_SAFE_INTEGER;
    for (; i < rangeEnd && items.length < max; i++) if (matches(snap.objects[i])) items.push(snap.objects[i]);
    // Look ahead for the next match so the last page never comes with a continue token.
    while (i < rangeEnd && !matches(snap.objects[i])) i++;
    const result: ListResult = { items, resourceVersion: String(rv) };
    if (i < rangeEnd) {
      result.continueToken = encodeContinue(rv, snap.keys[i]);
      if (!label && !field) result.remainingItemCount = rangeEnd - i;
    }
    return result;
  }
}

function lowerBound(keys: string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** apiserver storage/continue.go format: base64url of {"v":"meta.k8s.io/v1","rv":N,"start":"<key>"}. */
export function encodeContinue(rv: number, start: string): string {
  return Buffer.from(JSON.stringify({ v: "meta.k8s.io/v1", rv, start })).toString("base64url");
}

export function decodeContinue(token: string): { rv: number; start: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw badRequest("invalid continue token: continue key is not valid: illegal base64 data or JSON");
  }
  const p = parsed as { v?: unknown; rv?: unknown; start?: unknown };
  if (p.v !== "meta.k8s.io/v1")
    throw badRequest(
      `invalid continue token: continue key is not valid: server does not recognize this encoding`,
    );
  if (typeof p.rv !== "number" || p.rv <= 0 || typeof p.start !== "string") {
    throw badRequest(
      "invalid continue token: continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
    );
  }
  return { rv: p.rv, start: p.start };
}
