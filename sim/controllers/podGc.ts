// PodGC (kubernetes-api-facts.md §7): a pod bound to a node that does not exist — deleted, or never there —
// is, after a delay, failed with the DisruptionTarget condition (DeletionByPodGC) and removed at once.
import type { SimClock } from "../clock";
import type { Store, StoreEvent } from "../store";
import { Condition, isPodTerminal, setCondition } from "./podStatus";
import { currentPod, deletePod, podKey, PodsOnNode, writePod } from "./podAccess";

type Rec = Record<string, unknown>;

export class PodGc {
  constructor(
    private readonly store: Store,
    private readonly clock: SimClock,
    /** Simulated ms before the pods of a missing node are collected. */
    private readonly delayMs: number,
    private readonly podsOn: PodsOnNode,
  ) {}

  onEvent(e: StoreEvent): void {
    if (e.resource === "nodes" && e.type === "DELETED") {
      for (const key of this.podsOn(e.object.metadata.name ?? "")) this.schedule(key);
      return;
    }
    if (e.resource !== "pods" || e.type === "DELETED" || !e.object.spec?.nodeName) return;
    if (e.type === "MODIFIED" && e.previous?.spec?.nodeName) return;
    // Newly bound: when no kubelet will ever take the pod (its node is missing), PodGC will.
    const key = podKey(e.object);
    this.clock.after(0, () => {
      const pod = currentPod(this.store, key);
      if (!pod || isPodTerminal(pod) || pod.metadata.deletionTimestamp || pod.status?.startTime) return;
      if (!this.store.peek("nodes", undefined, pod.spec?.nodeName as string)) this.schedule(key);
    });
  }

  private schedule(key: string): void {
    this.clock.after(this.delayMs, () => {
      const pod = currentPod(this.store, key);
      if (!pod) return;
      const nodeName = pod.spec?.nodeName as string;
      if (this.store.peek("nodes", undefined, nodeName)) return;
      writePod(this.store, key, (p) => {
        if (isPodTerminal(p)) return false;
        const status = (p.status ?? {}) as Rec;
        status.phase = "Failed";
        status.conditions = setCondition(
          (status.conditions as Condition[]) ?? [],
          {
            type: "DisruptionTarget",
            status: "True",
            reason: "DeletionByPodGC",
            message: "PodGC: node no longer exists",
          },
          this.clock.iso(),
        );
      });
      deletePod(this.store, key, 0);
    });
  }
}
