// The shapes the store is made of: one table per resource (objects by key, a sorted-key cache, the watch
// history and the open watches), the events every write emits, and the request context of a write.
// Stored objects are never mutated: every write stores a new copy, so list snapshots and watch events can
// share them.
import type { FieldSelector } from "../../kube/fieldSelector";
import type { LabelSelector } from "../../kube/labelSelector";
import type { ResourceInfo } from "../resources";
import type { KubeObject, PropagationPolicy, ResourceName } from "../types";

export type EventType = "ADDED" | "MODIFIED" | "DELETED";

export interface StoreEvent {
  type: EventType;
  resource: ResourceName;
  rv: number;
  object: KubeObject;
  /** The object before this write (absent for ADDED). */
  previous?: KubeObject;
}

export interface WatchSink {
  event(type: EventType, object: KubeObject): void;
}

export interface WriteContext {
  dryRun?: boolean;
  /** Field manager of the request (none: managedFields untouched, as for apply, which computes them). */
  manager?: string;
  subresource?: "status";
  /** Internal: the answer of a dry run is settled; later commits of the request are dropped. */
  swallow?: boolean;
  /**
   * The request's field validation (fieldValidation Strict/Warn/Ignore): returns the object without the
   * fields its kind does not have, or throws (Strict). Applied to what an API client writes, not to status.
   */
  pruneUnknown?: (info: ResourceInfo, o: KubeObject) => KubeObject;
}

export interface DeleteOptions {
  propagationPolicy?: PropagationPolicy;
  preconditions?: { uid?: string; resourceVersion?: string };
  gracePeriodSeconds?: number;
}

export type PatchType = "merge" | "json" | "strategic";

export interface StoreOptions {
  watchHistory: number;
  continueTtlMs: number;
}

/** One open watch: its scope and where its events go. */
export interface Subscription {
  namespace?: string;
  label?: LabelSelector;
  field?: FieldSelector;
  sink: WatchSink;
}

/** A fixed-size ring of events, oldest first. */
export class EventRing {
  private readonly buf: (StoreEvent | undefined)[];
  private start = 0;
  private count = 0;
  /** Highest resourceVersion no longer in the ring (watches from below it are too old). */
  compactedRv: number;

  constructor(
    readonly capacity: number,
    initialRv: number,
  ) {
    this.buf = new Array(Math.max(1, capacity));
    this.compactedRv = initialRv;
  }

  push(e: StoreEvent): void {
    if (this.count === this.buf.length) {
      const evicted = this.buf[this.start] as StoreEvent;
      this.compactedRv = evicted.rv;
      this.buf[this.start] = e;
      this.start = (this.start + 1) % this.buf.length;
    } else {
      this.buf[(this.start + this.count) % this.buf.length] = e;
      this.count++;
    }
  }

  /** Events with rv > afterRv, oldest first. */
  since(afterRv: number): StoreEvent[] {
    const out: StoreEvent[] = [];
    for (let i = 0; i < this.count; i++) {
      const e = this.buf[(this.start + i) % this.buf.length] as StoreEvent;
      if (e.rv > afterRv) out.push(e);
    }
    return out;
  }
}

export interface Table {
  info: ResourceInfo;
  items: Map<string, KubeObject>;
  sortedKeys: string[] | null;
  history: EventRing;
  subscriptions: Set<Subscription>;
}

export function objectKey(info: ResourceInfo, namespace: string | undefined, name: string): string {
  return info.namespaced ? `${namespace ?? ""}/${name}` : name;
}

/** The table's keys in order (cached until a key is added or removed). */
export function sortedKeys(t: Table): string[] {
  if (!t.sortedKeys) t.sortedKeys = [...t.items.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return t.sortedKeys;
}
