// What the API server does to an object between decoding and storing it, besides validation
// (sim/validate.ts): defaults on create and update (kubernetes-api-facts.md §1.8, §7) and the Job fields
// that may not change after creation.
import type { ResourceInfo } from "../resources";
import { equalJson } from "../json";
import type { KubeObject } from "../types";

type Rec = Record<string, unknown>;

/** Defaults of the fields a client may leave out on create *and* on update (a `kubectl replace` keeps them). */
export function applySpecDefaults(info: ResourceInfo, obj: KubeObject): void {
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

export function applyCreateDefaults(info: ResourceInfo, obj: KubeObject): void {
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
    ...(tmeta.labels ?? {}),
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
  if (spec.serviceAccountName === undefined) spec.serviceAccountName = spec.serviceAccount ?? "default";
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
export function immutableErrors(info: ResourceInfo, current: KubeObject, next: KubeObject) {
  if (info.name !== "jobs") return [];
  const errors = [];
  for (const f of ["selector", "template", "completionMode", "podFailurePolicy"]) {
    const a = current.spec?.[f];
    const b = next.spec?.[f];
    if (!equalJson(a, b)) {
      errors.push({
        field: `spec.${f}`,
        reason: "FieldValueInvalid" as const,
        detail: `Invalid value: ${JSON.stringify(b ?? null)}: field is immutable`,
      });
    }
  }
  return errors;
}
