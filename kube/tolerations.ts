// Taint/toleration matching as the scheduler, the kubelet and the DaemonSet controller apply it
// (kubernetes-api-facts.md §7, dispatcher-reference.md §2.3). Pure, Node built-ins only.

export type TaintEffect = "NoSchedule" | "PreferNoSchedule" | "NoExecute";

export interface Taint {
  key: string;
  value?: string;
  effect: TaintEffect | string;
}

export interface Toleration {
  key?: string;
  operator?: "Exists" | "Equal" | string;
  value?: string;
  effect?: string;
  tolerationSeconds?: number;
}

/** The tolerations the DaemonSet controller adds to every daemon pod (no hostNetwork). */
export const DAEMONSET_AUTOMATIC_TOLERATIONS: readonly Toleration[] = Object.freeze([
  { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute" },
  { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute" },
  { key: "node.kubernetes.io/disk-pressure", operator: "Exists", effect: "NoSchedule" },
  { key: "node.kubernetes.io/memory-pressure", operator: "Exists", effect: "NoSchedule" },
  { key: "node.kubernetes.io/pid-pressure", operator: "Exists", effect: "NoSchedule" },
  { key: "node.kubernetes.io/unschedulable", operator: "Exists", effect: "NoSchedule" },
]);

/** Whether one toleration covers one taint, as Kubernetes' ToleratesTaint: an empty effect matches every
 * effect, an empty key matches every key, Exists ignores the value, Equal (the default) compares it. */
export function tolerates(toleration: Toleration, taint: Taint): boolean {
  if (toleration.effect && toleration.effect !== taint.effect) return false;
  if (toleration.key && toleration.key !== taint.key) return false;
  if (toleration.operator === "Exists") return true;
  return (toleration.value ?? "") === (taint.value ?? "");
}

/** The first taint with one of `effects` that no toleration covers, or undefined when the pod is admitted. */
export function firstUntoleratedTaint(
  taints: readonly Taint[] | undefined,
  tolerations: readonly Toleration[],
  effects: readonly string[] = ["NoSchedule", "NoExecute"],
): Taint | undefined {
  return (taints ?? []).find(
    (t) => effects.includes(t.effect) && !tolerations.some((tol) => tolerates(tol, t)),
  );
}

/** `key=value:effect`, or `key:effect` when the value is empty. */
export function describeTaint(taint: Taint): string {
  return taint.value ? `${taint.key}=${taint.value}:${taint.effect}` : `${taint.key}:${taint.effect}`;
}

/** The toleration a user would add to admit a node blocked by `taint`, as YAML. */
export function suggestedToleration(taint: Taint): string {
  return `tolerations:\n- key: ${taint.key}\n  operator: Exists\n  effect: ${taint.effect}`;
}
