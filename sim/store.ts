// The in-memory object store of kube-sim: one table per resource, a global monotonically increasing
// resourceVersion, a per-resource event history for watches, consistent paginated lists (snapshots per
// resourceVersion), deletion with finalizers/propagation and ownerReference garbage collection
// (kubernetes-api-facts.md §3, §4, §6). Stored objects are never mutated: every write stores a new copy,
// so list snapshots and watch events can share them.
import { randomUUID } from "node:crypto";
import { FieldSelector, FieldSelectorParseError, parseFieldSelector } from "../kube/fieldSelector";
import { LabelSelector, parseLabelSelector, SelectorParseError } from "../kube/labelSelector";
import type { SimClock } from "./clock";
import {
  alreadyExists,
  ApiError,
  badRequest,
  conflict,
  expired,
  invalid,
  namespaceNotFound,
  namespaceTerminating,
  notFound,
  StatusObject,
  successStatus,
} from "./errors";
import { trackUpdate } from "./apply";
import { cloneJson, equalJson } from "./json";
import { applyJsonPatch, applyMergePatch, JsonPatchError } from "./patch";
import { applyStrategicMergePatch } from "./strategicMerge";
import {
  apiVersionOf,
  qualifiedResource,
  RESOURCES,
  ResourceInfo,
  selectableFields,
  supportedFields,
} from "./resources";
import type { KubeObject, OwnerReference, PropagationPolicy, ResourceName } from "./types";
import { validateMetadata, validateSpec } from "./validate";

export type EventType = "ADDED" | "MODIFIED" | "DELETED";

export interface StoreEvent {
  type: EventType;
  resource: ResourceName;
  rv: number;
  object: KubeObject;
  /** The object before this write (absent for ADDED). */
  previous?: KubeObject;
}

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

export interface WatchQuery {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** undefined / "" / "0": synthetic ADDED for current objects first. */
  resourceVersion?: string;
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

interface Subscription {
  namespace?: string;
  label?: LabelSelector;
  field?: FieldSelector;
  sink: WatchSink;
}

/** A fixed-size ring of events, oldest first. */
class EventRing {
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

interface Table {
  info: ResourceInfo;
  items: Map<string, KubeObject>;
  sortedKeys: string[] | null;
  history: EventRing;
  subscriptions: Set<Subscription>;
}

interface Snapshot {
  createdAt: number;
  keys: string[];
  objects: KubeObject[];
}

const GENERATE_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";

export const FOREGROUND_FINALIZER = "foregroundDeletion";
export const ORPHAN_FINALIZER = "orphan";

export function objectKey(info: ResourceInfo, namespace: string | undefined, name: string): string {
  return info.namespaced ? `${namespace ?? ""}/${name}` : name;
}

const clone = cloneJson;
const sameJson = equalJson;

export function parseSelectors(
  info: ResourceInfo,
  labelSelector?: string,
  fieldSelector?: string,
): { label?: LabelSelector; field?: FieldSelector } {
  let label: LabelSelector | undefined;
  let field: FieldSelector | undefined;
  if (labelSelector) {
    try {
      label = parseLabelSelector(labelSelector);
    } catch (e) {
      if (e instanceof SelectorParseError) throw badRequest(e.message);
      throw e;
    }
    if (label.isEmpty()) label = undefined;
  }
  if (fieldSelector) {
    try {
      field = parseFieldSelector(fieldSelector);
    } catch (e) {
      if (e instanceof FieldSelectorParseError) throw badRequest(e.message);
      throw e;
    }
    const allowed = supportedFields(info);
    for (const t of field.terms) {
      if (!allowed.includes(t.field)) throw badRequest(`field label not supported: ${t.field}`);
    }
    if (field.isEmpty()) field = undefined;
  }
  return { label, field };
}

export class Store {
  private rv = 1;
  private readonly tables = new Map<ResourceName, Table>();
  private readonly byUid = new Map<string, { resource: ResourceName; key: string }>();
  /** owner uid → dependents ("resource\0key"). */
  private readonly dependents = new Map<string, Set<string>>();
  private readonly listeners: ((e: StoreEvent) => void)[] = [];
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly gcQueue: (() => void)[] = [];
  private gcScheduled = false;
  private closed = false;
  /** Random source for generateName suffixes (seeded by the simulator for determinism). */
  random: () => number = Math.random;

  constructor(
    private readonly clock: SimClock,
    private readonly options: StoreOptions,
  ) {
    for (const info of Object.values(RESOURCES)) {
      this.tables.set(info.name, {
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
    this.gcQueue.length = 0;
  }

  table(resource: ResourceName): Table {
    const t = this.tables.get(resource);
    if (!t) throw new Error(`unknown resource ${resource}`);
    return t;
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
    this.indexOwners(t.info.name, key, type === "DELETED" ? undefined : next, previous);
    const event: StoreEvent = { type, resource: t.info.name, rv, object: next, previous };
    t.history.push(event);
    this.dispatch(t, event);
    for (const l of this.listeners) l(event);
    if (type === "DELETED") this.afterRemoval(t, next);
    else if (next.metadata.deletionTimestamp) this.enqueueGc(() => this.processDeleting(t.info.name, key));
    return next;
  }

  private indexOwners(
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
      const object = this.table(resource).items.get(key);
      if (object) out.push({ resource, key, object });
    }
    return out;
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
    const obj = clone(input);
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
      next = clone(input);
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
      this.indexOwners(resource, key, o, undefined);
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

  private enqueueGc(work: () => void): void {
    this.gcQueue.push(work);
    if (this.gcScheduled) return;
    this.gcScheduled = true;
    setImmediate(() => {
      this.gcScheduled = false;
      const batch = this.gcQueue.splice(0);
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

  /** Finalizer work for an object being deleted: orphaning, foreground deletion, namespace content. */
  private processDeleting(resource: ResourceName, key: string): void {
    const t = this.table(resource);
    const o = t.items.get(key);
    if (!o || !o.metadata.deletionTimestamp) return;
    const finalizers = o.metadata.finalizers ?? [];
    const uid = o.metadata.uid ?? "";
    const name = o.metadata.name ?? "";
    if (finalizers.includes(ORPHAN_FINALIZER)) {
      for (const d of this.dependentsOf(uid)) {
        this.mutate(d.resource, d.object.metadata.namespace, d.object.metadata.name ?? "", (draft) => {
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
          this.delete(d.resource, d.object.metadata.namespace, d.object.metadata.name ?? "", {
            propagationPolicy: hasOwnDependents ? "Foreground" : "Background",
          });
        }
      }
      if (blocking === 0) this.removeFinalizer(resource, o, FOREGROUND_FINALIZER);
      return;
    }
    if (resource === "namespaces" && finalizers.includes("kubernetes")) {
      let remaining = 0;
      for (const other of this.tables.values()) {
        if (!other.info.namespaced) continue;
        for (const item of [...other.items.values()]) {
          if (item.metadata.namespace !== name) continue;
          remaining++;
          if (!item.metadata.deletionTimestamp) {
            this.delete(other.info.name, name, item.metadata.name ?? "", { propagationPolicy: "Background" });
          }
        }
      }
      if (remaining === 0) this.removeFinalizer(resource, o, "kubernetes");
    }
  }

  private removeFinalizer(resource: ResourceName, o: KubeObject, finalizer: string): void {
    this.mutate(resource, o.metadata.namespace, o.metadata.name ?? "", (draft) => {
      const rest = (draft.metadata.finalizers ?? []).filter((f) => f !== finalizer);
      if (rest.length === 0) delete draft.metadata.finalizers;
      else draft.metadata.finalizers = rest;
    });
  }

  /** After an object is gone: collect dependents whose owners are all gone, and unblock waiting owners. */
  private afterRemoval(t: Table, removed: KubeObject): void {
    const uid = removed.metadata.uid ?? "";
    const orphans = this.dependentsOf(uid);
    if (orphans.length > 0) {
      this.enqueueGc(() => {
        for (const d of orphans) {
          const current = this.table(d.resource).items.get(d.key);
          if (!current || current.metadata.deletionTimestamp) continue;
          const owners = current.metadata.ownerReferences ?? [];
          const liveOwner = owners.some((r) => this.ownerExists(d.resource, current, r));
          if (!liveOwner) {
            this.delete(d.resource, current.metadata.namespace, current.metadata.name ?? "", {
              propagationPolicy: "Background",
            });
          }
        }
      });
    }
    for (const ref of removed.metadata.ownerReferences ?? []) {
      const owner = this.byUidLookup(ref.uid);
      if (owner?.metadata.deletionTimestamp) {
        const ownerInfo = Object.values(RESOURCES).find((r) => r.kind === owner.kind);
        if (ownerInfo) {
          const key = objectKey(ownerInfo, owner.metadata.namespace, owner.metadata.name ?? "");
          this.enqueueGc(() => this.processDeleting(ownerInfo.name, key));
        }
      }
    }
    if (t.info.namespaced && removed.metadata.namespace) {
      const ns = this.table("namespaces").items.get(removed.metadata.namespace);
      if (ns?.metadata.deletionTimestamp)
        this.enqueueGc(() => this.processDeleting("namespaces", ns.metadata.name ?? ""));
    }
  }

  /** An owner reference counts only if it resolves to a live object with that uid in an allowed scope. */
  private ownerExists(resource: ResourceName, dependent: KubeObject, ref: OwnerReference): boolean {
    const owner = this.byUidLookup(ref.uid);
    if (!owner) return false;
    const ownerInfo = Object.values(RESOURCES).find((r) => r.kind === owner.kind);
    if (!ownerInfo) return false;
    if (ownerInfo.namespaced) {
      // Cross-namespace owners are treated as absent; cluster-scoped dependents may not have namespaced owners.
      if (!this.table(resource).info.namespaced) return false;
      return owner.metadata.namespace === dependent.metadata.namespace;
    }
    return true;
  }

  // -------------------------------------------------------------------------------------------------
  // Reads: list with pagination, watch

  private sortedKeys(t: Table): string[] {
    if (!t.sortedKeys) t.sortedKeys = [...t.items.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return t.sortedKeys;
  }

  private snapshot(t: Table, rv: number): Snapshot | undefined {
    const id = `${t.info.name}@${rv}`;
    const now = performance.now();
    for (const [k, s] of this.snapshots)
      if (now - s.createdAt > this.options.continueTtlMs) this.snapshots.delete(k);
    const existing = this.snapshots.get(id);
    if (existing) return existing;
    if (rv !== this.rv) return undefined;
    const keys = this.sortedKeys(t);
    const snap: Snapshot = { createdAt: now, keys, objects: keys.map((k) => t.items.get(k) as KubeObject) };
    this.snapshots.set(id, snap);
    while (this.snapshots.size > 64) this.snapshots.delete(this.snapshots.keys().next().value as string);
    return snap;
  }

  list(resource: ResourceName, q: ListQuery): ListResult {
    const t = this.table(resource);
    const { label, field } = parseSelectors(t.info, q.labelSelector, q.fieldSelector);
    const matches = (o: KubeObject): boolean =>
      (q.namespace === undefined || o.metadata.namespace === q.namespace) &&
      (!label || label.matches(o.metadata.labels)) &&
      (!field || field.matches(selectableFields(t.info, o)));
    let rv = this.rv;
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
    if (exact && Number(rvText) !== this.rv) {
      rv = Number(rvText);
      if (!this.snapshots.has(`${t.info.name}@${rv}`)) {
        throw expired(`too old resource version: ${rvText} (${this.rv})`);
      }
    }
    // A name pinned by the field selector (how clients re-read one object with list-only RBAC) is a key
    // lookup, not a scan: a 100,000-node fleet re-read node by node would otherwise cost O(N) per request.
    const pinnedName = field?.requiresExactMatch("metadata.name");
    if (
      pinnedName !== undefined &&
      !q.continueToken &&
      rv === this.rv &&
      (!t.info.namespaced || q.namespace !== undefined)
    ) {
      const candidate = t.items.get(objectKey(t.info, q.namespace, pinnedName));
      return { items: candidate && matches(candidate) ? [candidate] : [], resourceVersion: String(rv) };
    }
    if (!limit && !q.continueToken && rv === this.rv) {
      const items: KubeObject[] = [];
      for (const k of this.sortedKeys(t)) {
        const o = t.items.get(k) as KubeObject;
        if (matches(o)) items.push(o);
      }
      return { items, resourceVersion: String(rv) };
    }
    const snap = this.snapshot(t, rv);
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

  /** Opens a watch; throws ApiError (400 for selectors). Returns the cancel function. Too-old versions
   * are reported through `tooOld` (the server sends them as an ERROR event). */
  watch(
    resource: ResourceName,
    q: WatchQuery,
    sink: WatchSink,
    tooOld: (requested: string, oldest: number) => void,
  ): () => void {
    const t = this.table(resource);
    const { label, field } = parseSelectors(t.info, q.labelSelector, q.fieldSelector);
    const sub: Subscription = { namespace: q.namespace, label, field, sink };
    const rvText = q.resourceVersion ?? "";
    if (rvText === "" || rvText === "0") {
      for (const k of this.sortedKeys(t)) {
        const o = t.items.get(k) as KubeObject;
        if (this.subMatches(t, sub, o)) sink.event("ADDED", o);
      }
    } else {
      if (!/^[0-9]+$/.test(rvText))
        throw badRequest(`resourceVersion: Invalid value: "${rvText}": must be a non-negative integer`);
      const from = Number(rvText);
      if (from < t.history.compactedRv) {
        tooOld(rvText, t.history.compactedRv);
        return () => undefined;
      }
      for (const e of t.history.since(from)) this.deliver(t, sub, e);
    }
    t.subscriptions.add(sub);
    return () => t.subscriptions.delete(sub);
  }

  private subMatches(t: Table, sub: Subscription, o: KubeObject): boolean {
    if (sub.namespace !== undefined && o.metadata.namespace !== sub.namespace) return false;
    if (sub.label && !sub.label.matches(o.metadata.labels)) return false;
    if (sub.field && !sub.field.matches(selectableFields(t.info, o))) return false;
    return true;
  }

  /** An object moving into the selector is ADDED, out of it DELETED (as the watch cache does). */
  private deliver(t: Table, sub: Subscription, e: StoreEvent): void {
    const now = this.subMatches(t, sub, e.object);
    if (e.type === "ADDED") {
      if (now) sub.sink.event("ADDED", e.object);
    } else if (e.type === "DELETED") {
      if (now) sub.sink.event("DELETED", e.object);
    } else {
      const before = e.previous ? this.subMatches(t, sub, e.previous) : false;
      if (now && before) sub.sink.event("MODIFIED", e.object);
      else if (now) sub.sink.event("ADDED", e.object);
      else if (before) sub.sink.event("DELETED", e.object);
    }
  }

  private dispatch(t: Table, e: StoreEvent): void {
    for (const sub of t.subscriptions) this.deliver(t, sub, e);
  }

  /** Qualified resource text for messages ("jobs.batch"). */
  qualified(resource: ResourceName): string {
    return qualifiedResource(this.table(resource).info);
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

// ---------------------------------------------------------------------------------------------------
// Defaults applied on create (kubernetes-api-facts.md §1.8, §7)

type Rec = Record<string, unknown>;

/** Defaults of the fields a client may leave out on create *and* on update (a `kubectl replace` keeps them). */
function applySpecDefaults(info: ResourceInfo, obj: KubeObject): void {
  switch (info.name) {
    case "daemonsets":
      obj.spec = {
        revisionHistoryLimit: 10,
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
        ...(obj.spec ?? {}),
      };
      break;
    case "secrets":
      if (!obj.type) obj.type = "Opaque";
      break;
    case "services":
      obj.spec = { type: "ClusterIP", sessionAffinity: "None", ...(obj.spec ?? {}) };
      break;
    default:
      break;
  }
}

function applyCreateDefaults(info: ResourceInfo, obj: KubeObject): void {
  applySpecDefaults(info, obj);
  switch (info.name) {
    case "namespaces":
      obj.spec = { finalizers: ["kubernetes"], ...(obj.spec ?? {}) };
      obj.status = { phase: "Active" };
      break;
    case "jobs":
      defaultJob(obj);
      break;
    case "pods":
      defaultPod(obj);
      break;
    case "daemonsets":
      applySpecDefaults(info, obj);
      obj.status = {
        currentNumberScheduled: 0,
        numberMisscheduled: 0,
        desiredNumberScheduled: 0,
        numberReady: 0,
      };
      break;
    case "nodes": {
      // The simulated kubelet registers the node at once: without conditions it reports Ready.
      const status = (obj.status = obj.status ?? {}) as Rec;
      if (!Array.isArray(status.conditions)) {
        const now = obj.metadata.creationTimestamp;
        status.conditions = [
          {
            type: "Ready",
            status: "True",
            reason: "KubeletReady",
            message: "kubelet is posting ready status",
            lastHeartbeatTime: now,
            lastTransitionTime: now,
          },
        ];
      }
      break;
    }
    default:
      break;
  }
}

function defaultJob(job: KubeObject): void {
  const spec = (job.spec = job.spec ?? {}) as Rec;
  if (spec.completions === undefined && spec.parallelism === undefined) {
    spec.completions = 1;
    spec.parallelism = 1;
  }
  if (spec.parallelism === undefined) spec.parallelism = 1;
  if (spec.backoffLimit === undefined) spec.backoffLimit = 6;
  if (spec.completionMode === undefined) spec.completionMode = "NonIndexed";
  if (spec.suspend === undefined) spec.suspend = false;
  if (spec.manualSelector === undefined) spec.manualSelector = false;
  if (spec.podReplacementPolicy === undefined)
    spec.podReplacementPolicy = spec.podFailurePolicy ? "Failed" : "TerminatingOrFailed";
  const uid = job.metadata.uid as string;
  const name = job.metadata.name as string;
  if (!spec.manualSelector) spec.selector = { matchLabels: { "batch.kubernetes.io/controller-uid": uid } };
  const template = (spec.template = (spec.template ?? {}) as Rec);
  const tmeta = (template.metadata = (template.metadata ?? {}) as Rec);
  tmeta.labels = {
    ...((tmeta.labels as Record<string, string>) ?? {}),
    "batch.kubernetes.io/controller-uid": uid,
    "batch.kubernetes.io/job-name": name,
    "controller-uid": uid,
    "job-name": name,
  };
  const tspec = (template.spec = (template.spec ?? {}) as Rec);
  if (tspec.terminationGracePeriodSeconds === undefined) tspec.terminationGracePeriodSeconds = 30;
  if (tspec.dnsPolicy === undefined) tspec.dnsPolicy = "ClusterFirst";
  if (tspec.schedulerName === undefined) tspec.schedulerName = "default-scheduler";
  if (!job.metadata.labels || Object.keys(job.metadata.labels).length === 0) {
    job.metadata.labels = { ...(tmeta.labels as Record<string, string>) };
  }
  job.status = {};
}

const DEFAULT_POD_TOLERATIONS = [
  { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 },
  { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 },
];

function defaultPod(pod: KubeObject): void {
  const spec = (pod.spec = pod.spec ?? {}) as Rec;
  if (spec.restartPolicy === undefined) spec.restartPolicy = "Always";
  if (spec.terminationGracePeriodSeconds === undefined) spec.terminationGracePeriodSeconds = 30;
  if (spec.dnsPolicy === undefined) spec.dnsPolicy = "ClusterFirst";
  if (spec.schedulerName === undefined) spec.schedulerName = "default-scheduler";
  if (spec.serviceAccountName === undefined)
    spec.serviceAccountName = (spec.serviceAccount as string) ?? "default";
  const tolerations = ((spec.tolerations as Rec[]) ?? []).slice();
  for (const d of DEFAULT_POD_TOLERATIONS) {
    if (!tolerations.some((t) => t.key === d.key && (t.effect === d.effect || !t.effect)))
      tolerations.push({ ...d });
  }
  spec.tolerations = tolerations;
  const status: Rec = { phase: "Pending", qosClass: "BestEffort" };
  if (spec.nodeName) {
    status.conditions = [
      {
        type: "PodScheduled",
        status: "True",
        lastProbeTime: null,
        lastTransitionTime: pod.metadata.creationTimestamp,
      },
    ];
  }
  pod.status = status;
}

/** Job fields that may not change after creation (strategy.go ValidateJobUpdate, simplified). */
function immutableErrors(info: ResourceInfo, current: KubeObject, next: KubeObject) {
  if (info.name !== "jobs") return [];
  const errors = [];
  for (const f of ["selector", "template", "completionMode", "podFailurePolicy"]) {
    const a = (current.spec as Rec | undefined)?.[f];
    const b = (next.spec as Rec | undefined)?.[f];
    if (!sameJson(a, b)) {
      errors.push({
        field: `spec.${f}`,
        reason: "FieldValueInvalid" as const,
        detail: `Invalid value: ${JSON.stringify(b ?? null)}: field is immutable`,
      });
    }
  }
  return errors;
}
