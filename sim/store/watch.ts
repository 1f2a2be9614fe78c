// Watches: the events after a resourceVersion from the table's history (or synthetic ADDED for the current
// objects), then every new event, narrowed to the watch's namespace and selectors as the watch cache does
// (kubernetes-api-facts.md §4).
import { badRequest } from "../errors";
import type { KubeObject } from "../types";
import { sortedKeys, StoreEvent, Subscription, Table, WatchSink } from "./model";
import { inScope, parseSelectors } from "./selectors";

export interface WatchQuery {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** undefined / "" / "0": synthetic ADDED for current objects first. */
  resourceVersion?: string;
}

/** Opens a watch; throws ApiError (400 for selectors). Returns the cancel function. Too-old versions
 * are reported through `tooOld` (the server sends them as an ERROR event). */
export function openWatch(
  t: Table,
  q: WatchQuery,
  sink: WatchSink,
  tooOld: (requested: string, oldest: number) => void,
): () => void {
  const sub: Subscription = {
    namespace: q.namespace,
    ...parseSelectors(t.info, q.labelSelector, q.fieldSelector),
    sink,
  };
  const rvText = q.resourceVersion ?? "";
  if (rvText === "" || rvText === "0") {
    for (const k of sortedKeys(t)) {
      const o = t.items.get(k) as KubeObject;
      if (inScope(t.info, sub, o)) sink.event("ADDED", o);
    }
  } else {
    if (!/^[0-9]+$/.test(rvText))
      throw badRequest(`resourceVersion: Invalid value: "${rvText}": must be a non-negative integer`);
    const from = Number(rvText);
    if (from < t.history.compactedRv) {
      tooOld(rvText, t.history.compactedRv);
      return () => undefined;
    }
    for (const e of t.history.since(from)) deliver(t, sub, e);
  }
  t.subscriptions.add(sub);
  return () => t.subscriptions.delete(sub);
}

/** Sends a committed event to every open watch of its table. */
export function publish(t: Table, e: StoreEvent): void {
  for (const sub of t.subscriptions) deliver(t, sub, e);
}

/** An object moving into the selector is ADDED, out of it DELETED (as the watch cache does). */
function deliver(t: Table, sub: Subscription, e: StoreEvent): void {
  const now = inScope(t.info, sub, e.object);
  if (e.type === "ADDED") {
    if (now) sub.sink.event("ADDED", e.object);
  } else if (e.type === "DELETED") {
    if (now) sub.sink.event("DELETED", e.object);
  } else {
    const before = e.previous ? inScope(t.info, sub, e.previous) : false;
    if (now && before) sub.sink.event("MODIFIED", e.object);
    else if (now) sub.sink.event("ADDED", e.object);
    else if (before) sub.sink.event("DELETED", e.object);
  }
}
