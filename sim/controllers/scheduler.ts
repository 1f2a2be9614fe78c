// The scheduler, for pods that name no node (the dispatcher's own pod: per-node Job pods and DaemonSet
// pods arrive bound). A pod is bound to a Ready, schedulable node whose labels satisfy its nodeSelector and
// required node affinity and whose NoSchedule/NoExecute taints it tolerates; among those, the one running
// the fewest pods (then by name, for determinism). A pod no node fits gets PodScheduled=False/Unschedulable
// with a message like the real scheduler's, and is retried whenever a node changes.
import { firstUntoleratedTaint, type Taint, type Toleration } from "../../kube/tolerations";
import type { SimClock } from "../clock";
import type { Store, StoreEvent } from "../store";
import type { KubeObject } from "../types";
import { nodeMatchesAffinity } from "./daemonset";
import { conditionStatus, isPodTerminal, setCondition, type Condition } from "./podStatus";

type Rec = Record<string, unknown>;

const UNSCHEDULABLE_TAINT: Taint = { key: "node.kubernetes.io/unschedulable", effect: "NoSchedule" };

/** Why a node cannot take a pod, or undefined when it can. Pure: used for binding and for the message. */
export function unfitReason(node: KubeObject, podSpec: Rec): string | undefined {
  if (conditionStatus(node, "Ready") !== "True") return "node(s) were not ready";
  const spec = (node.spec ?? {}) as { unschedulable?: boolean; taints?: Taint[] };
  // A cordoned node counts as tainted unschedulable:NoSchedule, as the node lifecycle controller marks it.
  const taints = [...(spec.taints ?? []), ...(spec.unschedulable ? [UNSCHEDULABLE_TAINT] : [])];
  const taint = firstUntoleratedTaint(taints, (podSpec.tolerations as Toleration[] | undefined) ?? []);
  if (taint) return `node(s) had untolerated taint {${taint.key}: ${taint.value ?? ""}}`;
  if (!nodeMatchesAffinity(node, podSpec)) return "node(s) didn't match Pod's node affinity/selector";
  return undefined;
}

export class Scheduler {
  private readonly pending = new Set<string>();
  private scheduled = false;

  constructor(
    private readonly store: Store,
    private readonly clock: SimClock,
  ) {}

  onEvent(e: StoreEvent): void {
    if (e.resource === "pods") {
      const key = `${e.object.metadata.namespace}/${e.object.metadata.name}`;
      if (e.type === "DELETED" || e.object.spec?.nodeName) this.pending.delete(key);
      else if (e.type === "ADDED") {
        this.pending.add(key);
        this.soon();
      }
    } else if (e.resource === "nodes" && this.pending.size > 0) this.soon();
  }

  /** Batch the work of one burst of events into one pass. */
  private soon(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pass();
    });
  }

  private pass(): void {
    if (this.pending.size === 0) return;
    const nodes = this.store.all("nodes");
    const load = new Map<string, number>();
    for (const pod of this.store.all("pods")) {
      const n = pod.spec?.nodeName as string | undefined;
      if (n && !isPodTerminal(pod)) load.set(n, (load.get(n) ?? 0) + 1);
    }
    for (const key of [...this.pending]) {
      const [namespace, name] = key.split("/");
      const pod = this.store.peek("pods", namespace, name);
      if (!pod || pod.spec?.nodeName || pod.metadata.deletionTimestamp) {
        this.pending.delete(key);
        continue;
      }
      const podSpec = (pod.spec ?? {}) as Rec;
      const reasons = new Map<string, number>();
      let best: KubeObject | undefined;
      for (const node of nodes) {
        const reason = unfitReason(node, podSpec);
        if (reason) {
          reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
          continue;
        }
        const a = load.get(node.metadata.name ?? "") ?? 0;
        const b = best ? (load.get(best.metadata.name ?? "") ?? 0) : Infinity;
        if (a < b || (a === b && best && (node.metadata.name ?? "") < (best.metadata.name ?? "")))
          best = node;
      }
      const now = this.clock.iso();
      if (best) {
        const nodeName = best.metadata.name ?? "";
        this.store.mutate("pods", namespace, name, (draft) => {
          (draft.spec as Rec).nodeName = nodeName;
          const conditions = (draft.status?.conditions as Condition[] | undefined) ?? [];
          draft.status = {
            ...(draft.status ?? {}),
            conditions: setCondition(conditions, { type: "PodScheduled", status: "True" }, now),
          };
        });
        load.set(nodeName, (load.get(nodeName) ?? 0) + 1);
        this.pending.delete(key);
      } else {
        const detail = [...reasons].map(([r, n]) => `${n} ${r}`).join(", ");
        const message = `0/${nodes.length} nodes are available: ${detail || "no nodes in the cluster"}.`;
        this.store.mutate("pods", namespace, name, (draft) => {
          const conditions = (draft.status?.conditions as Condition[] | undefined) ?? [];
          draft.status = {
            ...(draft.status ?? {}),
            conditions: setCondition(
              conditions,
              { type: "PodScheduled", status: "False", reason: "Unschedulable", message },
              now,
            ),
          };
        });
      }
    }
  }
}
