// Node lifecycle controller (kubernetes-api-facts.md §7): a node whose kubelet stops posting status turns
// Ready=Unknown with the unreachable NoSchedule/NoExecute taints, and its pods are marked not Ready; a node
// that recovers loses those taints. Nodes deleted by an outcome program go through the API's DELETE.
import { ApiError } from "../errors";
import type { SimClock } from "../clock";
import type { Store, StoreEvent } from "../store";
import { isPodTerminal, Condition, setCondition } from "./podStatus";
import { nodeReady, PodsOnNode, writePod } from "./podAccess";

type Rec = Record<string, unknown>;

const UNREACHABLE = "node.kubernetes.io/unreachable";
const NOT_READY = "node.kubernetes.io/not-ready";

export class NodeLifecycle {
  constructor(
    private readonly store: Store,
    private readonly clock: SimClock,
    private readonly podsOn: PodsOnNode,
  ) {}

  /** A node that stops being Ready: its pods are no longer Ready either (MarkPodsNotReady). */
  onEvent(e: StoreEvent): void {
    if (e.resource !== "nodes" || e.type !== "MODIFIED") return;
    if (!nodeReady(e.previous) || nodeReady(e.object)) return;
    for (const key of this.podsOn(e.object.metadata.name ?? "")) {
      writePod(this.store, key, (p) => {
        if (isPodTerminal(p)) return false;
        const status = (p.status ?? {}) as Rec;
        status.conditions = setCondition(
          (status.conditions as Condition[]) ?? [],
          { type: "Ready", status: "False", reason: "NodeNotReady" },
          this.clock.iso(),
        );
      });
    }
  }

  /** The kubelet stopped posting status. */
  setNodeNotReady(nodeName: string): void {
    this.store.mutate("nodes", undefined, nodeName, (n) => {
      const now = this.clock.iso();
      const status = (n.status ?? {}) as Rec;
      const conds = ((status.conditions as Condition[]) ?? []).map((c) =>
        c.type === "Ready"
          ? {
              ...c,
              status: "Unknown" as const,
              reason: "NodeStatusUnknown",
              message: "Kubelet stopped posting node status.",
              lastTransitionTime: now,
            }
          : c,
      );
      status.conditions = conds;
      const spec = (n.spec ?? {}) as Rec;
      const taints = ((spec.taints as Rec[]) ?? []).filter((t) => t.key !== UNREACHABLE);
      taints.push({ key: UNREACHABLE, effect: "NoSchedule", timeAdded: now });
      taints.push({ key: UNREACHABLE, effect: "NoExecute", timeAdded: now });
      spec.taints = taints;
      n.spec = spec;
    });
  }

  /** The node recovers: Ready=True again and the unreachable/not-ready taints are removed. */
  setNodeReady(nodeName: string): void {
    this.store.mutate("nodes", undefined, nodeName, (n) => {
      const now = this.clock.iso();
      const status = (n.status ?? {}) as Rec;
      status.conditions = ((status.conditions as Condition[]) ?? []).map((c) =>
        c.type === "Ready"
          ? {
              ...c,
              status: "True" as const,
              reason: "KubeletReady",
              message: "kubelet is posting ready status",
              lastTransitionTime: now,
            }
          : c,
      );
      const spec = (n.spec ?? {}) as Rec;
      const taints = ((spec.taints as Rec[]) ?? []).filter(
        (t) => t.key !== UNREACHABLE && t.key !== NOT_READY,
      );
      if (taints.length > 0) spec.taints = taints;
      else delete spec.taints;
      n.spec = spec;
    });
  }

  deleteNode(nodeName: string): void {
    try {
      this.store.delete("nodes", undefined, nodeName, { propagationPolicy: "Background" });
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
    }
  }
}
