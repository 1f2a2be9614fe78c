// The DaemonSet controller (kubernetes-api-facts.md §7): one pod per eligible node (node selector,
// required node affinity, NoSchedule+NoExecute taints against the template's tolerations plus the
// automatic daemon tolerations), bound through a `matchFields metadata.name In [node]` affinity; failed
// pods are replaced; status counts per node readiness (desired/current/ready/available/misscheduled).
// Template revisions as the upstream controller keeps them: a ControllerRevision `<ds>-<hash>` per template,
// pods labelled `controller-revision-hash`/`pod-template-generation`, `updatedNumberScheduled` counting only
// pods of the current hash, and RollingUpdate replacing old pods at most `maxUnavailable` at a time
// (OnDelete: only pods deleted by someone else are replaced).
import { createHash } from "node:crypto";
import {
  DAEMONSET_AUTOMATIC_TOLERATIONS,
  firstUntoleratedTaint,
  Taint,
  Toleration,
} from "../../kube/tolerations";
import { labelSelectorFromObject, LabelSelectorObject } from "../../kube/labelSelector";
import { ApiError } from "../errors";
import { cloneJson } from "../json";
import type { Store, StoreEvent } from "../store";
import type { KubeObject, OwnerReference } from "../types";
import { conditionStatus, isPodTerminal } from "./podStatus";

type Rec = Record<string, unknown>;

const MIN_SYNC_INTERVAL_MS = 20;

interface NodeSelectorRequirement {
  key: string;
  operator: string;
  values?: string[];
}
interface NodeSelectorTerm {
  matchExpressions?: NodeSelectorRequirement[];
  matchFields?: NodeSelectorRequirement[];
}

function requirementHolds(r: NodeSelectorRequirement, value: string | undefined): boolean {
  const values = r.values ?? [];
  switch (r.operator) {
    case "In":
      return value !== undefined && values.includes(value);
    case "NotIn":
      return value === undefined || !values.includes(value);
    case "Exists":
      return value !== undefined;
    case "DoesNotExist":
      return value === undefined;
    case "Gt":
      return value !== undefined && /^-?\d+$/.test(value) && Number(value) > Number(values[0]);
    case "Lt":
      return value !== undefined && /^-?\d+$/.test(value) && Number(value) < Number(values[0]);
    default:
      return false;
  }
}

/** Required node affinity: terms are ORed, requirements inside a term ANDed; an empty term matches nothing. */
export function nodeMatchesAffinity(node: KubeObject, podSpec: Rec): boolean {
  const selector = (podSpec.nodeSelector as Record<string, string> | undefined) ?? {};
  const labels = node.metadata.labels ?? {};
  if (Object.entries(selector).some(([k, v]) => labels[k] !== v)) return false;
  const required = ((podSpec.affinity as Rec | undefined)?.nodeAffinity as Rec | undefined)
    ?.requiredDuringSchedulingIgnoredDuringExecution as
    { nodeSelectorTerms?: NodeSelectorTerm[] } | undefined;
  const terms = required?.nodeSelectorTerms;
  if (!terms) return true;
  return terms.some((t) => {
    const exprs = t.matchExpressions ?? [];
    const fields = t.matchFields ?? [];
    if (exprs.length === 0 && fields.length === 0) return false;
    return (
      exprs.every((r) => requirementHolds(r, labels[r.key])) &&
      fields.every((r) => requirementHolds(r, r.key === "metadata.name" ? node.metadata.name : undefined))
    );
  });
}

export function daemonPodTolerations(podSpec: Rec): Toleration[] {
  const own = (podSpec.tolerations as Toleration[] | undefined) ?? [];
  const extra = DAEMONSET_AUTOMATIC_TOLERATIONS.filter(
    (a) => !own.some((t) => t.key === a.key && t.effect === a.effect),
  );
  const tolerations = [...own, ...extra.map((t) => ({ ...t }))];
  if (
    podSpec.hostNetwork === true &&
    !tolerations.some((t) => t.key === "node.kubernetes.io/network-unavailable")
  ) {
    tolerations.push({
      key: "node.kubernetes.io/network-unavailable",
      operator: "Exists",
      effect: "NoSchedule",
    });
  }
  return tolerations;
}

/** Whether the DaemonSet should run a pod on the node (shouldRun) and may keep an existing one (shouldContinue). */
export function daemonPlacement(
  node: KubeObject,
  podSpec: Rec,
): { shouldRun: boolean; shouldContinue: boolean } {
  if (!nodeMatchesAffinity(node, podSpec)) return { shouldRun: false, shouldContinue: false };
  const taints = (node.spec?.taints as Taint[] | undefined) ?? [];
  const tolerations = daemonPodTolerations(podSpec);
  return {
    shouldRun: !firstUntoleratedTaint(taints, tolerations, ["NoSchedule", "NoExecute"]),
    shouldContinue: !firstUntoleratedTaint(taints, tolerations, ["NoExecute"]),
  };
}

export class DaemonSetController {
  private readonly queue = new Set<string>();
  private scheduled = false;
  private closed = false;
  private lastSync = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly store: Store) {}

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  onEvent(e: StoreEvent): void {
    if (e.resource === "daemonsets" && e.type !== "DELETED")
      this.enqueue(`${e.object.metadata.namespace}/${e.object.metadata.name}`);
    else if (e.resource === "nodes")
      for (const ds of this.store.all("daemonsets"))
        this.enqueue(`${ds.metadata.namespace}/${ds.metadata.name}`);
    else if (e.resource === "pods") {
      const owner = e.object.metadata.ownerReferences?.find((r) => r.controller && r.kind === "DaemonSet");
      if (owner) this.enqueue(`${e.object.metadata.namespace}/${owner.name}`);
    }
  }

  private enqueue(key: string): void {
    this.queue.add(key);
    if (this.scheduled) return;
    this.scheduled = true;
    // A sync walks every node and pod, so syncs are spaced at least MIN_SYNC_INTERVAL_MS (real) apart:
    // in a 100,000-node fleet the events of that interval are handled by one sync.
    const wait = Math.max(0, this.lastSync + MIN_SYNC_INTERVAL_MS - performance.now());
    const timer = setTimeout(() => {
      this.scheduled = false;
      this.lastSync = performance.now();
      const keys = [...this.queue];
      this.queue.clear();
      for (const k of keys) {
        if (this.closed) return;
        try {
          this.sync(k);
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
        }
      }
    }, wait);
    timer.unref();
    this.timer = timer;
  }

  private sync(key: string): void {
    const [ns, name] = key.split("/");
    const ds = this.store.peek("daemonsets", ns, name);
    if (!ds || ds.metadata.deletionTimestamp) return;
    const spec = (ds.spec ?? {}) as Rec;
    const template = (spec.template ?? {}) as Rec;
    const podSpec = (template.spec ?? {}) as Rec;
    const selector = labelSelectorFromObject(spec.selector as LabelSelectorObject);
    const uid = ds.metadata.uid ?? "";
    const podsByNode = new Map<string, KubeObject[]>();
    for (const pod of this.store.all("pods", ns)) {
      if (!pod.metadata.ownerReferences?.some((r) => r.uid === uid && r.controller)) continue;
      if (!selector.matches(pod.metadata.labels)) continue;
      const node = podTargetNode(pod);
      if (!node) continue;
      let list = podsByNode.get(node);
      if (!list) podsByNode.set(node, (list = []));
      list.push(pod);
    }
    const hash = this.currentRevision(ds, template);
    const isUpdated = (p: KubeObject): boolean => p.metadata.labels?.["controller-revision-hash"] === hash;
    let desired = 0;
    let current = 0;
    let ready = 0;
    let misscheduled = 0;
    let updated = 0;
    /** Nodes whose running daemon pod is of an old template, with that pod's readiness. */
    const outdated: { pod: KubeObject; ready: boolean }[] = [];
    for (const node of this.store.all("nodes")) {
      const nodeName = node.metadata.name ?? "";
      const { shouldRun, shouldContinue } = daemonPlacement(node, podSpec);
      const pods = (podsByNode.get(nodeName) ?? []).filter((p) => !p.metadata.deletionTimestamp);
      podsByNode.delete(nodeName);
      if (shouldRun) desired++;
      const failed = pods.filter((p) => p.status?.phase === "Failed");
      for (const p of failed) this.deletePod(p);
      const live = pods.filter((p) => !isPodTerminal(p));
      if (live.length > 0) {
        if (!shouldContinue) {
          live.forEach((p) => this.deletePod(p));
          continue;
        }
        if (!shouldRun) misscheduled++;
        else {
          current++;
          const isReady = live.some((p) => conditionStatus(p, "Ready") === "True");
          if (isReady) ready++;
          if (live.some(isUpdated)) updated++;
          else outdated.push({ pod: live[0], ready: isReady });
        }
        continue;
      }
      if (shouldRun && failed.length === 0) this.createPod(ds, nodeName, podSpec, template, hash);
    }
    this.rollOut(spec, desired, ready, outdated);
    // Pods on nodes that no longer exist are left to PodGC.
    const status: Rec = {
      currentNumberScheduled: current,
      numberMisscheduled: misscheduled,
      desiredNumberScheduled: desired,
      numberReady: ready,
      observedGeneration: ds.metadata.generation ?? 1,
      updatedNumberScheduled: updated,
      numberAvailable: ready,
    };
    if (desired - ready > 0) status.numberUnavailable = desired - ready;
    this.store.mutate("daemonsets", ns, name, (d) => {
      d.status = { ...status, ...(d.status?.conditions ? { conditions: d.status.conditions } : {}) };
    });
  }

  /**
   * RollingUpdate: old pods that are not ready go first (they cost no availability), then ready ones while
   * fewer than maxUnavailable (an int or a percentage of desired, rounded up; default 1) are unavailable.
   */
  private rollOut(
    spec: Rec,
    desired: number,
    ready: number,
    outdated: { pod: KubeObject; ready: boolean }[],
  ): void {
    const strategy = (spec.updateStrategy ?? {}) as {
      type?: string;
      rollingUpdate?: { maxUnavailable?: unknown };
    };
    if (strategy.type === "OnDelete" || outdated.length === 0) return;
    const raw = strategy.rollingUpdate?.maxUnavailable ?? 1;
    let maxUnavailable =
      typeof raw === "string" && raw.endsWith("%")
        ? Math.ceil((Number(raw.slice(0, -1)) * desired) / 100)
        : Number(raw);
    if (!Number.isFinite(maxUnavailable) || maxUnavailable < 1) maxUnavailable = 1;
    let unavailable = desired - ready;
    for (const o of outdated) if (!o.ready) this.deletePod(o.pod);
    for (const o of outdated) {
      if (!o.ready) continue;
      if (unavailable >= maxUnavailable) break;
      this.deletePod(o.pod);
      unavailable++;
    }
  }

  /** The template's revision hash; records a ControllerRevision for a template not seen before. */
  private currentRevision(ds: KubeObject, template: Rec): string {
    const digest = createHash("sha256").update(JSON.stringify(template)).digest();
    // The alphabet of Kubernetes' SafeEncodeString (no vowels, no look-alike digits).
    const alphabet = "bcdfghjklmnpqrstvwxz2456789";
    const hash = [...digest.subarray(0, 10)].map((b) => alphabet[b % alphabet.length]).join("");
    const ns = ds.metadata.namespace;
    const name = `${ds.metadata.name}-${hash}`;
    if (!this.store.peek("controllerrevisions", ns, name)) {
      const revisions = this.store
        .all("controllerrevisions", ns)
        .filter((r) => r.metadata.ownerReferences?.some((o) => o.uid === ds.metadata.uid));
      const revision = Math.max(0, ...revisions.map((r) => Number(r.revision ?? 0))) + 1;
      try {
        this.store.create(
          "controllerrevisions",
          {
            metadata: {
              name,
              namespace: ns,
              labels: {
                ...((template.metadata as Rec | undefined)?.labels as Record<string, string>),
                "controller-revision-hash": hash,
              },
              ownerReferences: [controllerRefTo(ds)],
            },
            data: { spec: { template: { ...cloneJson(template), $patch: "replace" } } },
            revision,
          },
          ns,
        );
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
      }
    }
    return hash;
  }

  private createPod(ds: KubeObject, nodeName: string, podSpec: Rec, template: Rec, hash: string): void {
    const tmeta = (template.metadata ?? {}) as Rec;
    const spec = cloneJson(podSpec);
    spec.tolerations = daemonPodTolerations(podSpec);
    const affinity = (spec.affinity ?? {}) as Rec;
    affinity.nodeAffinity = {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchFields: [{ key: "metadata.name", operator: "In", values: [nodeName] }] }],
      },
    };
    spec.affinity = affinity;
    // The scheduler binds the pod to the one node its affinity allows.
    spec.nodeName = nodeName;
    if (spec.restartPolicy === undefined) spec.restartPolicy = "Always";
    const labels = {
      ...((tmeta.labels as Record<string, string>) ?? {}),
      "controller-revision-hash": hash,
      "pod-template-generation": String(ds.metadata.generation ?? 1),
    };
    try {
      this.store.create(
        "pods",
        {
          apiVersion: "v1",
          kind: "Pod",
          metadata: {
            generateName: `${ds.metadata.name}-`,
            namespace: ds.metadata.namespace,
            labels,
            ...(tmeta.annotations
              ? { annotations: { ...(tmeta.annotations as Record<string, string>) } }
              : {}),
            ownerReferences: [controllerRefTo(ds)],
          },
          spec,
        },
        ds.metadata.namespace,
      );
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
    }
  }

  private deletePod(pod: KubeObject): void {
    if (pod.metadata.deletionTimestamp) return;
    try {
      this.store.delete("pods", pod.metadata.namespace, pod.metadata.name ?? "", {
        propagationPolicy: "Background",
      });
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
    }
  }
}

function podTargetNode(pod: KubeObject): string | undefined {
  if (pod.spec?.nodeName) return pod.spec.nodeName as string;
  const terms = (
    ((pod.spec?.affinity as Rec | undefined)?.nodeAffinity as Rec | undefined)
      ?.requiredDuringSchedulingIgnoredDuringExecution as
      { nodeSelectorTerms?: NodeSelectorTerm[] } | undefined
  )?.nodeSelectorTerms;
  return terms?.[0]?.matchFields?.find((f) => f.key === "metadata.name")?.values?.[0];
}

/** The controller reference the DaemonSet controller puts on what it owns (its pods and ControllerRevisions). */
function controllerRefTo(ds: KubeObject): OwnerReference {
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    name: ds.metadata.name ?? "",
    uid: ds.metadata.uid ?? "",
    controller: true,
    blockOwnerDeletion: true,
  };
}
