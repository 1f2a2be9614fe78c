// Deletion work that happens after the DELETE request (kubernetes-api-facts.md §6): the owner → dependents
// index, the `orphan` and `foregroundDeletion` finalizers, namespace content deletion, and background
// collection of dependents whose owners are all gone. Work runs on a queue drained in a later tick, so a
// request's answer never waits for a cascade.
import { ApiError } from "../errors";
import { RESOURCES } from "../resources";
import type { KubeObject, OwnerReference, ResourceName } from "../types";
import { DeleteOptions, objectKey, Table } from "./model";

export const FOREGROUND_FINALIZER = "foregroundDeletion";
export const ORPHAN_FINALIZER = "orphan";

/** What the collector needs from the store: reads, and the same writes an API client would make. */
export interface GcHost {
  table(resource: ResourceName): Table;
  tables(): Iterable<Table>;
  byUidLookup(uid: string): KubeObject | undefined;
  mutate(
    resource: ResourceName,
    namespace: string | undefined,
    name: string,
    mutate: (draft: KubeObject) => boolean | void,
  ): KubeObject | undefined;
  delete(
    resource: ResourceName,
    namespace: string | undefined,
    name: string,
    options?: DeleteOptions,
  ): unknown;
}

export class GarbageCollector {
  /** owner uid → dependents ("resource\0key"). */
  private readonly dependents = new Map<string, Set<string>>();
  private readonly queue: (() => void)[] = [];
  private scheduled = false;
  private closed = false;

  constructor(private readonly host: GcHost) {}

  close(): void {
    this.closed = true;
    this.queue.length = 0;
  }

  /** Keeps the dependents index in step with a write of (resource, key): `next` undefined when removed. */
  indexOwners(
    resource: ResourceName,
    key: string,
    next: KubeObject | undefined,
    previous: KubeObject | undefined,
  ): void {
    const ref = `${resource}\u0000${key}`;
    const before = new Set((previous?.metadata.ownerReferences ?? []).map((r) => r.uid));
    const after = new Set((next?.metadata.ownerReferences ?? []).map((r) => r.uid));
    for (const uid of before) {
      if (after.has(uid)) continue;
      const set = this.dependents.get(uid);
      set?.delete(ref);
      if (set && set.size === 0) this.dependents.delete(uid);
    }
    for (const uid of after) {
      if (before.has(uid)) continue;
      let set = this.dependents.get(uid);
      if (!set) this.dependents.set(uid, (set = new Set()));
      set.add(ref);
    }
  }

  private dependentsOf(uid: string): { resource: ResourceName; key: string; object: KubeObject }[] {
    const out: { resource: ResourceName; key: string; object: KubeObject }[] = [];
    for (const ref of this.dependents.get(uid) ?? []) {
      const [resource, key] = ref.split("\u0000") as [ResourceName, string];
      const object = this.host.table(resource).items.get(key);
      if (object) out.push({ resource, key, object });
    }
    return out;
  }

  private enqueue(work: () => void): void {
    this.queue.push(work);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const batch = this.queue.splice(0);
      for (const w of batch) {
        if (this.closed) return;
        try {
          w();
        } catch (e) {
          if (!(e instanceof ApiError)) throw e;
          // NotFound/Conflict: the object changed meanwhile; the next event re-triggers the work.
        }
      }
    });
  }

  /** An object was written with a deletionTimestamp: its finalizer work is due. */
  deleting(resource: ResourceName, key: string): void {
    this.enqueue(() => this.processDeleting(resource, key));
  }

  /** Finalizer work for an object being deleted: orphaning, foreground deletion, namespace content. */
  private processDeleting(resource: ResourceName, key: string): void {
    const host = this.host;
    const o = host.table(resource).items.get(key);
    if (!o || !o.metadata.deletionTimestamp) return;
    const finalizers = o.metadata.finalizers ?? [];
    const uid = o.metadata.uid ?? "";
    const name = o.metadata.name ?? "";
    if (finalizers.includes(ORPHAN_FINALIZER)) {
      for (const d of this.dependentsOf(uid)) {
        host.mutate(d.resource, d.object.metadata.namespace, d.object.metadata.name ?? "", (draft) => {
          const refs = (draft.metadata.ownerReferences ?? []).filter((r) => r.uid !== uid);
          if (refs.length === 0) delete draft.metadata.ownerReferences;
          else draft.metadata.ownerReferences = refs;
        });
      }
      this.removeFinalizer(resource, o, ORPHAN_FINALIZER);
      return;
    }
    if (finalizers.includes(FOREGROUND_FINALIZER)) {
      let blocking = 0;
      for (const d of this.dependentsOf(uid)) {
        const ref = (d.object.metadata.ownerReferences ?? []).find((r) => r.uid === uid);
        if (ref?.blockOwnerDeletion) blocking++;
        if (!d.object.metadata.deletionTimestamp) {
          const hasOwnDependents = (this.dependents.get(d.object.metadata.uid ?? "")?.size ?? 0) > 0;
          host.delete(d.resource, d.object.metadata.namespace, d.object.metadata.name ?? "", {
            propagationPolicy: hasOwnDependents ? "Foreground" : "Background",
          });
        }
      }
      if (blocking === 0) this.removeFinalizer(resource, o, FOREGROUND_FINALIZER);
      return;
    }
    if (resource === "namespaces" && finalizers.includes("kubernetes")) {
      let remaining = 0;
      for (const other of host.tables()) {
        if (!other.info.namespaced) continue;
        for (const item of [...other.items.values()]) {
          if (item.metadata.namespace !== name) continue;
          remaining++;
          if (!item.metadata.deletionTimestamp) {
            host.delete(other.info.name, name, item.metadata.name ?? "", { propagationPolicy: "Background" });
          }
        }
      }
      if (remaining === 0) this.removeFinalizer(resource, o, "kubernetes");
    }
  }

  private removeFinalizer(resource: ResourceName, o: KubeObject, finalizer: string): void {
    this.host.mutate(resource, o.metadata.namespace, o.metadata.name ?? "", (draft) => {
      const rest = (draft.metadata.finalizers ?? []).filter((f) => f !== finalizer);
      if (rest.length === 0) delete draft.metadata.finalizers;
      else draft.metadata.finalizers = rest;
    });
  }

  /** After an object is gone: collect dependents whose owners are all gone, and unblock waiting owners. */
  removed(t: Table, removed: KubeObject): void {
    const host = this.host;
    const uid = removed.metadata.uid ?? "";
    const orphans = this.dependentsOf(uid);
    if (orphans.length > 0) {
      this.enqueue(() => {
        for (const d of orphans) {
          const current = host.table(d.resource).items.get(d.key);
          if (!current || current.metadata.deletionTimestamp) continue;
          const owners = current.metadata.ownerReferences ?? [];
          const liveOwner = owners.some((r) => this.ownerExists(d.resource, current, r));
          if (!liveOwner) {
            host.delete(d.resource, current.metadata.namespace, current.metadata.name ?? "", {
              propagationPolicy: "Background",
            });
          }
        }
      });
    }
    for (const ref of removed.metadata.ownerReferences ?? []) {
      const owner = host.byUidLookup(ref.uid);
      if (owner?.metadata.deletionTimestamp) {
        const ownerInfo = Object.values(RESOURCES).find((r) => r.kind === owner.kind);
        if (ownerInfo) {
          const key = objectKey(ownerInfo, owner.metadata.namespace, owner.metadata.name ?? "");
          this.deleting(ownerInfo.name, key);
        }
      }
    }
    if (t.info.namespaced && removed.metadata.namespace) {
      const ns = host.table("namespaces").items.get(removed.metadata.namespace);
      if (ns?.metadata.deletionTimestamp) this.deleting("namespaces", ns.metadata.name ?? "");
    }
  }

  /** An owner reference counts only if it resolves to a live object with that uid in an allowed scope. */
  private ownerExists(resource: ResourceName, dependent: KubeObject, ref: OwnerReference): boolean {
    const host = this.host;
    const owner = host.byUidLookup(ref.uid);
    if (!owner) return false;
    const ownerInfo = Object.values(RESOURCES).find((r) => r.kind === owner.kind);
    if (!ownerInfo) return false;
    if (ownerInfo.namespaced) {
      // Cross-namespace owners are treated as absent; cluster-scoped dependents may not have namespaced owners.
      if (!host.table(resource).info.namespaced) return false;
      return owner.metadata.namespace === dependent.metadata.namespace;
    }
    return true;
  }
}
