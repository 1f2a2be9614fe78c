// Helm's hook rules as pure decisions, for any chart's rendered objects: which objects are hooks and of which
// phases, the order Helm runs a phase's hooks in, and which hooks Helm deletes before creating them, after a phase
// succeeds and after a hook fails. Read from Helm 4's source (helm/helm pkg/release/v1/util/manifest_sorter.go,
// kind_sorter.go, pkg/action/hooks.go, resource_policy.go). Node built-ins only (the rollout's serialized provider
// imports it).

export const HOOK_ANNOTATION = "helm.sh/hook";
export const HOOK_WEIGHT_ANNOTATION = "helm.sh/hook-weight";
export const HOOK_DELETE_POLICY_ANNOTATION = "helm.sh/hook-delete-policy";
export const RESOURCE_POLICY_ANNOTATION = "helm.sh/resource-policy";

/** The hook events Helm knows (`test-success` is Helm 2's name of `test`). */
export const HOOK_PHASES = [
  "pre-install",
  "post-install",
  "pre-delete",
  "post-delete",
  "pre-upgrade",
  "post-upgrade",
  "pre-rollback",
  "post-rollback",
  "test",
] as const;
export type HookPhase = (typeof HOOK_PHASES)[number];

export type HookDeletePolicy = "before-hook-creation" | "hook-succeeded" | "hook-failed";
/** Helm's default when a hook names no delete policy. */
export const DEFAULT_DELETE_POLICY: HookDeletePolicy = "before-hook-creation";

/** The object shape these rules read. */
export interface HookObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; annotations?: Record<string, string> };
  [key: string]: unknown;
}

export interface Hook<T extends HookObject = HookObject> {
  object: T;
  kind: string;
  name: string;
  phases: HookPhase[];
  weight: number;
  /** As annotated (lower-cased, trimmed); empty means Helm's default, `before-hook-creation`. */
  deletePolicies: string[];
}

/** Helm's install order of kinds (kind_sorter.go InstallOrder): hooks are pre-sorted by it. */
export const INSTALL_ORDER: readonly string[] = [
  "PriorityClass",
  "Namespace",
  "NetworkPolicy",
  "ResourceQuota",
  "LimitRange",
  "PodSecurityPolicy",
  "PodDisruptionBudget",
  "ServiceAccount",
  "Secret",
  "SecretList",
  "ConfigMap",
  "StorageClass",
  "PersistentVolume",
  "PersistentVolumeClaim",
  "CustomResourceDefinition",
  "ClusterRole",
  "ClusterRoleList",
  "ClusterRoleBinding",
  "ClusterRoleBindingList",
  "Role",
  "RoleList",
  "RoleBinding",
  "RoleBindingList",
  "Service",
  "DaemonSet",
  "Pod",
  "ReplicationController",
  "ReplicaSet",
  "Deployment",
  "HorizontalPodAutoscaler",
  "StatefulSet",
  "Job",
  "CronJob",
  "IngressClass",
  "Ingress",
  "APIService",
  "MutatingWebhookConfiguration",
  "ValidatingWebhookConfiguration",
];

/** Go's strconv.Atoi on the raw text, 0 when it fails (manifest_sorter.go calculateHookWeight). */
export function hookWeight(text: string | undefined): number {
  if (text === undefined || !/^[+-]?\d+$/.test(text)) return 0;
  const n = Number(text);
  // Atoi fails beyond int64; such a weight is 0 in Helm.
  return Number.isSafeInteger(n) ? n : 0;
}

function listOf(text: string): string[] {
  return text.split(",").map((v) => v.trim().toLowerCase());
}

/**
 * The hook an object declares; `undefined` for an ordinary resource; `"unknown"` when the annotation names an event
 * Helm does not know (Helm then drops the object altogether: neither hook nor resource).
 */
export function hookOf<T extends HookObject>(object: T): Hook<T> | undefined | "unknown" {
  const annotations = object.metadata?.annotations;
  const events = annotations?.[HOOK_ANNOTATION];
  if (events === undefined) return undefined;
  const phases: HookPhase[] = [];
  for (const e of listOf(events)) {
    const phase = e === "test-success" ? "test" : e;
    if (!(HOOK_PHASES as readonly string[]).includes(phase)) return "unknown";
    phases.push(phase as HookPhase);
  }
  const policies = annotations?.[HOOK_DELETE_POLICY_ANNOTATION];
  return {
    object,
    kind: object.kind ?? "",
    name: object.metadata?.name ?? "",
    phases,
    weight: hookWeight(annotations?.[HOOK_WEIGHT_ANNOTATION]),
    deletePolicies: policies === undefined ? [] : listOf(policies),
  };
}

export interface SplitRender<T extends HookObject> {
  /** Objects Helm installs as the release's manifest. */
  resources: T[];
  /** Hooks in render order. */
  hooks: Hook<T>[];
  /** Objects with an unknown hook event, which Helm skips. */
  skipped: T[];
}

/** Splits a render into the release's resources and its hooks, as Helm's SortManifests does. */
export function splitHooks<T extends HookObject>(objects: readonly T[]): SplitRender<T> {
  const out: SplitRender<T> = { resources: [], hooks: [], skipped: [] };
  for (const o of objects) {
    const h = hookOf(o);
    if (h === undefined) out.resources.push(o);
    else if (h === "unknown") out.skipped.push(o);
    else out.hooks.push(h);
  }
  return out;
}

/** kind_sorter.go lessByKind: known kinds by InstallOrder, unknown ones after them, among themselves by name. */
export function lessByKind(a: string, b: string): boolean {
  const ia = INSTALL_ORDER.indexOf(a);
  const ib = INSTALL_ORDER.indexOf(b);
  if (ia < 0 && ib < 0) return a !== b && a < b;
  if (ia < 0) return false;
  if (ib < 0) return true;
  return ia < ib;
}

/** A stable sort by a strict less-than (Go's sort.Stable / sort.SliceStable). */
function stableSort<X>(items: readonly X[], less: (a: X, b: X) => boolean): X[] {
  return items
    .map((item, index) => ({ item, index }))
    .sort((x, y) => (less(x.item, y.item) ? -1 : less(y.item, x.item) ? 1 : x.index - y.index))
    .map((x) => x.item);
}

/**
 * The hooks of one phase in the order Helm runs them: pre-sorted by kind (stable), then by weight, equal weights by
 * name (byte order), the kind order deciding between equal names (hooks.go hookByWeight).
 */
export function phaseHooks<T extends HookObject>(hooks: readonly Hook<T>[], phase: HookPhase): Hook<T>[] {
  const byKind = stableSort(hooks, (a, b) => lessByKind(a.kind, b.kind));
  const ofPhase = byKind.filter((h) => h.phases.includes(phase));
  return stableSort(ofPhase, (a, b) => (a.weight === b.weight ? a.name < b.name : a.weight < b.weight));
}

/** Whether Helm deletes the hook on this occasion (hookSetDeletePolicy's default; CRDs are never deleted). */
export function deletesOn(hook: Hook, policy: HookDeletePolicy): boolean {
  if (hook.kind === "CustomResourceDefinition") return false;
  const policies = hook.deletePolicies.length ? hook.deletePolicies : [DEFAULT_DELETE_POLICY];
  return policies.includes(policy);
}

/** Whether Helm waits for the hook to finish: Jobs until Complete or Failed, Pods until Succeeded or Failed. */
export function awaitsCompletion(hook: Hook): boolean {
  return (hook.kind === "Job" && hook.object.apiVersion === "batch/v1") || hook.kind === "Pod";
}

/**
 * What Helm deletes once a phase has ended: after success, every hook with `hook-succeeded`, in reverse run order;
 * after the hook at `failedAt` failed, that hook when it has `hook-failed`, then the hooks that ran before it and
 * have `hook-succeeded`, in run order (hooks.go execHookWithDelayedShutdown).
 */
export function deletionsAfter<T extends HookObject>(
  ordered: readonly Hook<T>[],
  failedAt?: number,
): Hook<T>[] {
  if (failedAt === undefined) return [...ordered].reverse().filter((h) => deletesOn(h, "hook-succeeded"));
  const failed = ordered[failedAt];
  return [
    ...(failed && deletesOn(failed, "hook-failed") ? [failed] : []),
    ...ordered.slice(0, failedAt).filter((h) => deletesOn(h, "hook-succeeded")),
  ];
}

/** `helm.sh/resource-policy: keep` (trimmed, any case): `helm uninstall` leaves the object (resource_policy.go). */
export function keptOnUninstall(object: HookObject): boolean {
  const policy = object.metadata?.annotations?.[RESOURCE_POLICY_ANNOTATION];
  return policy !== undefined && policy.trim().toLowerCase() === "keep";
}
