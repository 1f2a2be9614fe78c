// The in-memory object store of kube-sim: one table per resource, a global monotonically increasing
// resourceVersion, and the writes (create, update, patch, controller mutations, delete) that commit new copies
// of objects and emit one event each (kubernetes-api-facts.md §3, §4, §6). What lives next to it:
// model.ts (tables, events, the watch history ring), list.ts (paginated consistent lists), watch.ts (watch
// delivery), selectors.ts, gc.ts (finalizers, cascading deletion, garbage collection) and admission.ts
// (defaults and immutable fields).
import { randomUUID } from "node:crypto";
import type { SimClock } from "../clock";
import {
  alreadyExists,
  ApiError,
  badRequest,
  conflict,
  invalid,
  namespaceNotFound,
  namespaceTerminating,
  notFound,
  StatusObject,
  successStatus,
} from "../errors";
import { trackUpdate } from "../apply";
import { cloneJson, equalJson } from "../json";
import { applyJsonPatch, applyMergePatch, JsonPatchError } from "../patch";
import { applyStrategicMergePatch } from "../strategicMerge";
import { apiVersionOf, qualifiedResource, RESOURCES, ResourceInfo } from "../resources";
import type { KubeObject, ResourceName } from "../types";
import { validateMetadata, validateSpec } from "../validate";
import { applyCreateDefaults, applySpecDefaults, immutableErrors } from "./admission";
import { FOREGROUND_FINALIZER, GarbageCollector, ORPHAN_FINALIZER } from "./gc";
import { Lister, ListQuery, ListResult } from "./list";
import {
  DeleteOptions,
  EventRing,
  EventType,
  objectKey,
  PatchType,
  StoreEvent,
  StoreOptions,
  Table,
  WatchSink,
  WriteContext,
} from "./model";
import { openWatch, publish, WatchQuery } from "./watch";

export type {
  DeleteOptions,
  EventType,
  ListQuery,
  ListResult,
  PatchType,
  StoreEvent,
  StoreOptions,
  WatchQuery,
  WatchSink,
  WriteContext,
};
export { objectKey } from "./model";
export { parseSelectors } from "./selectors";
export { FOREGROUND_FINALIZER, ORPHAN_FINALIZER } from "./gc";

const GENERATE_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";

const clone = cloneJson;
const sameJson = equalJson;

export class Store {
  private rv = 1;
  private readonly byResource = new Map<ResourceName, Table>();
  private readonly byUid = new Map<string, { resource: ResourceName; key: string }>();
  private readonly listeners: ((e: StoreEvent) => void)[] = [];
  private readonly lister: Lister;
  private readonly gc = new GarbageCollector(this);
  private closed = false;
  /** Random source for generateName suffixes (seeded by the simulator for determinism). */
  random: () => number = Math.random;

  constructor(
    private readonly clock: SimClock,
    options: StoreOptions,
  ) {
    this.lister = new Lister(options.continueTtlMs);
    for (const info of Object.values(RESOURCES)) {
      this.byResource.set(info.name, {
        info,
        items: new Map(),
        sortedKeys: null,
        history: new EventRing(options.watchHistory, 0),
        subscriptions: new Set(),
      });
    }
  }

  close(): void {
    this.closed = true;
    this.gc.close();
  }

  table(resource: ResourceName): Table {
    const t = this.byResource.get(resource);
    if (!t) throw new Error(`unknown resource ${resource}`);
    return t;
  }

  tables(): Iterable<Table> {
    return this.byResource.values();
  }

  currentResourceVersion(): number {
    return this.rv;
  }

  /** Controllers and the audit log hear about every write, after watchers. */
  onEvent(listener: (e: StoreEvent) => void): void {
    this.listeners.push(listener);
  }

  /** The stored object itself (read-only by convention) or undefined. */
  peek(resource: ResourceName, namespace: string | undefined, name: string): KubeObject | undefined {
    const t = this.table(resource);
    return t.items.get(objectKey(t.info, namespace, name));
  }

  /** Every stored object of a resource (read-only), optionally in one namespace. */
  all(resource: ResourceName, namespace?: string): KubeObject[] {
    const t = this.table(resource);
    const out: KubeObject[] = [];
    for (const o of t.items.values())
      if (namespace === undefined || o.metadata.namespace === namespace) out.push(o);
    return out;
  }

  count(resource: ResourceName): number {
    return this.table(resource).items.size;
  }

  byUidLookup(uid: string): KubeObject | undefined {
    const ref = this.byUid.get(uid);
    if (!ref) return undefined;
    return this.table(ref.resource).items.get(ref.key);
  }

  get(resource: ResourceName, namespace: string | undefined, name: string): KubeObject {
    const t = this.table(resource);
    const o = t.items.get(objectKey(t.info, namespace, name));
    if (!o) throw notFound(t.info, name);
    return o;
  }

  // -------------------------------------------------------------------------------------------------
  // Writes

  private nextRv(): number {
    return ++this.rv;
  }

  /** The API request being served (set by the HTTP front around one write); undefined for controllers. */
  private request: WriteContext | undefined;

  /**
   * Runs one API write in its request's context: `dryRun` answers as if without storing anything or emitting
   * an event; `manager` records field ownership in metadata.managedFields (sim/apply.ts).
   */
  withRequest<T>(context: WriteContext, write: () => T): T {
    const outer = this.request;
    this.request = context;
    try {
      return write();
    } finally {
      this.request = outer;
    }
  }

  private pruned(info: ResourceInfo, o: KubeObject): KubeObject {
    return this.request?.pruneUnknown ? this.request.pruneUnknown(info, o) : o;
  }

  private commit(
    t: Table,
    key: string,
    type: EventType,
    next: KubeObject,
    previous: KubeObject | undefined,
  ): KubeObject {
    const request = this.request;
    // A request that rewrites managedFields itself (kubectl's client-side → server-side apply migration) is
    // taken as given; any other write is tracked for its manager.
    const rewritesManagedFields =
      next.metadata.managedFields !== undefined &&
      !sameJson(next.metadata.managedFields, previous?.metadata.managedFields);
    if (request?.manager && type !== "DELETED" && !rewritesManagedFields) {
      next.metadata.managedFields = trackUpdate(
        previous,
        next,
        request.manager,
        this.clock.iso(),
        request.subresource,
      );
    }
    if (request?.dryRun) {
      // Only the first write of a request is answered; what would follow (cascades) is not simulated.
      this.request = { ...request, manager: undefined, swallow: true };
      if (request.swallow) return next;
      if (previous) next.metadata.resourceVersion = previous.metadata.resourceVersion;
      else delete next.metadata.resourceVersion;
      return next;
    }
    const rv = this.nextRv();
    next.metadata.resourceVersion = String(rv);
    if (type === "DELETED") {
      t.items.delete(key);
      t.sortedKeys = null;
      if (next.metadata.uid) this.byUid.delete(next.metadata.uid);
    } else {
      if (!t.items.has(key)) t.sortedKeys = null;
      t.items.set(key, next);
      if (next.metadata.uid) this.byUid.set(next.metadata.uid, { resource: t.info.name, key });
    }
    this.gc.indexOwners(t.info.name, key, type === "DELETED" ? undefined : next, previous);
    const event: StoreEvent = { type, resource: t.info.name, rv, object: next, previous };
    t.history.push(event);
    publish(t, event);
    for (const l of this.listeners) l(event);
    if (type === "DELETED") this.gc.removed(t, next);
    else if (next.metadata.deletionTimestamp) this.gc.deleting(t.info.name, key);
    return next;
  }

  private checkNamespace(
    info: ResourceInfo,
    namespace: string | undefined,
    name: string,
    creating: boolean,
  ): void {
    if (!info.namespaced) return;
    if (!namespace)
      throw badRequest("the server could not find the requested resource: a namespace is required");
    const ns = this.table("namespaces").items.get(namespace);
    if (!ns) throw namespaceNotFound(namespace);
    if (creating && ns.metadata.deletionTimestamp) throw namespaceTerminating(namespace, info, name);
  }

  private generateName(prefix: string): string {
    let suffix = "";
    for (let i = 0; i < 5; i++)
      suffix += GENERATE_NAME_ALPHABET[Math.floor(this.random() * GENERATE_NAME_ALPHABET.length)];
    return prefix + suffix;
  }

  /** POST. `namespace` comes from the URL (for namespaced resources). */
  create(resource: ResourceName, input: KubeObject, namespace?: string): KubeObject {
    const t = this.table(resource);
    const info = t.info;
    const obj = this.pruned(info, clone(input));
    obj.metadata = obj.metadata ?? {};
    if (info.namespaced) {
      if (obj.metadata.namespace && namespace && obj.metadata.namespace !== namespace) {
        throw badRequest(
          "the namespace of the provided object does not match the namespace sent on the request",
        );
      }
      obj.metadata.namespace = namespace ?? obj.metadata.namespace;
    } else {
      delete obj.metadata.namespace;
    }
    if (!obj.metadata.name && obj.metadata.generateName)
      obj.metadata.name = this.generateName(obj.metadata.generateName);
    const name = obj.metadata.name ?? "";
    const errors = [...validateMetadata(info, obj), ...validateSpec(info, obj)];
    if (errors.length > 0) throw invalid(info, name, errors);
    this.checkNamespace(info, obj.metadata.namespace, name, true);
    const key = objectKey(info, obj.metadata.namespace, name);
    if (t.items.has(key)) throw alreadyExists(info, name);
    obj.apiVersion = apiVersionOf(info);
    obj.kind = info.kind;
    obj.metadata.uid = randomUUID();
    obj.metadata.creationTimestamp = this.clock.iso();
    delete obj.metadata.deletionTimestamp;
    delete obj.metadata.deletionGracePeriodSeconds;
    if (info.hasGeneration) obj.metadata.generation = 1;
    else delete obj.metadata.generation;
    applyCreateDefaults(info, obj);
    return this.commit(t, key, "ADDED", obj, undefined);
  }

  /**
   * PUT (or PUT of /status). A resourceVersion in the body must match (else 409 Conflict); without one
   * the update is unconditional. Spec writes keep the stored status and vice versa.
   */
  update(
    resource: ResourceName,
    input: KubeObject,
    namespace: string | undefined,
    name: string,
    subresource?: "status",
  ): KubeObject {
    const t = this.table(resource);
    const info = t.info;
    const key = objectKey(info, namespace, name);
    const current = t.items.get(key);
    if (input.metadata?.name && input.metadata.name !== name) {
      throw badRequest(
        `the name of the object (${input.metadata.name}) does not match the name on the URL (${name})`,
      );
    }
    if (!current) throw notFound(info, name);
    const wantRv = input.metadata?.resourceVersion;
    if (wantRv && wantRv !== current.metadata.resourceVersion) throw conflict(info, name);
    let next: KubeObject;
    if (subresource === "status") {
      next = clone(current);
      next.status = clone(input.status);
    } else {
      next = this.pruned(info, clone(input));
      next.metadata = next.metadata ?? {};
      // Fields the server owns.
      for (const f of [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "namespace",
      ]) {
        if (current.metadata[f] === undefined) delete next.metadata[f];
        else next.metadata[f] = current.metadata[f];
      }
      next.metadata.name = name;
      if (info.hasStatus) next.status = clone(current.status);
      next.apiVersion = apiVersionOf(info);
      next.kind = info.kind;
      applySpecDefaults(info, next);
      const errors = [
        ...validateMetadata(info, next),
        ...validateSpec(info, next),
        ...immutableErrors(info, current, next),
      ];
      if (errors.length > 0) throw invalid(info, name, errors);
      if (info.hasGeneration && !sameJson(current.spec, next.spec))
        next.metadata.generation = (current.metadata.generation ?? 0) + 1;
      // Removing finalizers may not re-add deletion-blocking ones once deleting; keep deletion state.
    }
    return this.writeUpdate(t, key, next, current);
  }

  private writeUpdate(t: Table, key: string, next: KubeObject, current: KubeObject): KubeObject {
    // A write that changes nothing is not a write (kube-apiserver keeps the resourceVersion and field times).
    // A body without managedFields keeps the stored ones; their times alone are no change.
    if (next.metadata.managedFields === undefined && current.metadata.managedFields !== undefined)
      next.metadata.managedFields = current.metadata.managedFields;
    const strip = (o: KubeObject): KubeObject => ({
      ...o,
      metadata: {
        ...o.metadata,
        resourceVersion: undefined,
        managedFields: (o.metadata.managedFields as { time?: string }[] | undefined)?.map((m) => ({
          ...m,
          time: undefined,
        })),
      },
    });
    if (sameJson(strip(next), strip(current))) return current;
    if (
      next.metadata.deletionTimestamp &&
      (next.metadata.finalizers ?? []).length === 0 &&
      this.removableNow(t.info, next)
    ) {
      return this.commit(t, key, "DELETED", next, current);
    }
    return this.commit(t, key, "MODIFIED", next, current);
  }

  /** PATCH (merge or JSON patch), optionally of /status. */
  patch(
    resource: ResourceName,
    namespace: string | undefined,
    name: string,
    body: unknown,
    type: PatchType,
    subresource?: "status",
  ): KubeObject {
    const t = this.table(resource);
    const current = t.items.get(objectKey(t.info, namespace, name));
    if (!current) throw notFound(t.info, name);
    let patched: KubeObject;
    try {
      patched = (
        type === "json"
          ? applyJsonPatch(current, body)
          : type === "strategic"
            ? applyStrategicMergePatch(current, body)
            : applyMergePatch(current, body)
      ) as KubeObject;
    } catch (e) {
      if (e instanceof JsonPatchError) {
        throw new ApiError({
          kind: "Status",
          apiVersion: "v1",
          metadata: {},
          status: "Failure",
          message: `the server rejected our request due to an error in our request: ${e.message}`,
          reason: "Invalid",
          details: {},
          code: 422,
        });
      }
      throw e;
    }
    if (typeof patched !== "object" || patched === null)
      throw badRequest("the patch did not produce an object");
    patched.metadata = patched.metadata ?? {};
    // A patch that names a resourceVersion is a precondition; otherwise it applies to the current object.
    if (!patched.metadata.resourceVersion)
      patched.metadata.resourceVersion = current.metadata.resourceVersion;
    return this.update(resource, patched, namespace, name, subresource);
  }

  /**
   * Internal write for controllers: `mutate` edits a copy; return false to skip the write. No resourceVersion
   * check (controllers are the only writers of what they change). Returns the stored object.
   */
  mutate(
    resource: ResourceName,
    namespace: string | undefined,
    name: string,
    mutate: (draft: KubeObject) => boolean | void,
  ): KubeObject | undefined {
    if (this.closed) return undefined;
    const t = this.table(resource);
    const key = objectKey(t.info, namespace, name);
    const current = t.items.get(key);
    if (!current) return undefined;
    const draft = clone(current);
    if (mutate(draft) === false) return current;
    if (sameJson(draft, current)) return current;
    if (t.info.hasGeneration && !sameJson(current.spec, draft.spec))
      draft.metadata.generation = (current.metadata.generation ?? 0) + 1;
    return this.writeUpdate(t, key, draft, current);
  }

  /** Inserts objects that exist "before" the simulator starts: one resourceVersion each, no watch events.
   * The caller hands the objects over and must not change them afterwards. */
  bulkInsert(resource: ResourceName, objects: KubeObject[]): void {
    const t = this.table(resource);
    for (const input of objects) {
      // The store takes ownership of the objects' nested parts (they may be shared between objects and
      // are never mutated); only the top level and metadata are copied.
      const o: KubeObject = { ...input, metadata: { ...input.metadata } };
      o.apiVersion = apiVersionOf(t.info);
      o.kind = t.info.kind;
      o.metadata.uid = o.metadata.uid ?? randomUUID();
      o.metadata.creationTimestamp = o.metadata.creationTimestamp ?? this.clock.iso();
      o.metadata.resourceVersion = String(this.nextRv());
      const key = objectKey(t.info, o.metadata.namespace, o.metadata.name ?? "");
      t.items.set(key, o);
      this.byUid.set(o.metadata.uid, { resource, key });
      this.gc.indexOwners(resource, key, o, undefined);
    }
    t.sortedKeys = null;
    t.history.compactedRv = Math.max(t.history.compactedRv, this.rv);
  }

  // -------------------------------------------------------------------------------------------------
  // Deletion and garbage collection

  /** Pods bound to a live kubelet terminate gracefully: the kubelet removes them when their containers stop. */
  private removableNow(info: ResourceInfo, o: KubeObject): boolean {
    if (info.name !== "pods") return true;
    if ((o.metadata.deletionGracePeriodSeconds ?? 0) === 0) return true;
    const phase = o.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") return true;
    const nodeName = o.spec?.nodeName as string | undefined;
    return !nodeName || !this.table("nodes").items.has(nodeName);
  }

  /** DELETE. Returns the object when it is kept (finalizers, graceful pod deletion) or for pods, else a Status. */
  delete(
    resource: ResourceName,
    namespace: string | undefined,
    name: string,
    options: DeleteOptions = {},
  ): { object?: KubeObject; status?: StatusObject } {
    const t = this.table(resource);
    const info = t.info;
    const key = objectKey(info, namespace, name);
    const current = t.items.get(key);
    if (!current) throw notFound(info, name);
    const pre = options.preconditions;
    if (pre?.uid && pre.uid !== current.metadata.uid) {
      throw conflict(
        info,
        name,
        `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid}`,
      );
    }
    if (pre?.resourceVersion && pre.resourceVersion !== current.metadata.resourceVersion) {
      throw conflict(
        info,
        name,
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`,
      );
    }
    const policy = options.propagationPolicy ?? info.defaultPropagation;
    const next = clone(current);
    const finalizers = new Set(next.metadata.finalizers ?? []);
    if (policy === "Foreground") {
      finalizers.add(FOREGROUND_FINALIZER);
      finalizers.delete(ORPHAN_FINALIZER);
    } else if (policy === "Orphan") {
      finalizers.add(ORPHAN_FINALIZER);
      finalizers.delete(FOREGROUND_FINALIZER);
    } else if (!current.metadata.deletionTimestamp) {
      finalizers.delete(FOREGROUND_FINALIZER);
      finalizers.delete(ORPHAN_FINALIZER);
    }
    if (info.name === "namespaces") finalizers.add("kubernetes");
    next.metadata.finalizers = [...finalizers];
    if (next.metadata.finalizers.length === 0) delete next.metadata.finalizers;
    if (info.name === "pods") {
      const grace =
        options.gracePeriodSeconds ?? (next.spec?.terminationGracePeriodSeconds as number | undefined) ?? 30;
      const prevGrace = current.metadata.deletionGracePeriodSeconds;
      next.metadata.deletionGracePeriodSeconds = prevGrace === undefined ? grace : Math.min(prevGrace, grace);
      if (!next.metadata.deletionTimestamp) {
        next.metadata.deletionTimestamp = this.clock.iso(
          this.clock.now() + next.metadata.deletionGracePeriodSeconds * 1000,
        );
      }
    } else if (!next.metadata.deletionTimestamp) {
      next.metadata.deletionTimestamp = this.clock.iso();
    }
    if (info.name === "namespaces") next.status = { ...(next.status ?? {}), phase: "Terminating" };
    if (info.hasGeneration && !current.metadata.deletionTimestamp)
      next.metadata.generation = (next.metadata.generation ?? 0) + 1;
    const removed = (next.metadata.finalizers ?? []).length === 0 && this.removableNow(info, next);
    if (removed) {
      const last = this.commit(t, key, "DELETED", next, current);
      if (info.name === "pods") return { object: clone(last) };
      return { status: successStatus(info, name, current.metadata.uid ?? "") };
    }
    const kept = sameJson(next, current) ? current : this.commit(t, key, "MODIFIED", next, current);
    return { object: clone(kept) };
  }

  // -------------------------------------------------------------------------------------------------
  // Reads: list with pagination, watch

  list(resource: ResourceName, q: ListQuery): ListResult {
    return this.lister.list(this.table(resource), q, this.rv);
  }

  /** Opens a watch; throws ApiError (400 for selectors). Returns the cancel function. Too-old versions
   * are reported through `tooOld` (the server sends them as an ERROR event). */
  watch(
    resource: ResourceName,
    q: WatchQuery,
    sink: WatchSink,
    tooOld: (requested: string, oldest: number) => void,
  ): () => void {
    return openWatch(this.table(resource), q, sink, tooOld);
  }

  /** Qualified resource text for messages ("jobs.batch"). */
  qualified(resource: ResourceName): string {
    return qualifiedResource(this.table(resource).info);
  }
}
