// Taint-based eviction (the taint manager, kubernetes-api-facts.md §7): when a node's NoExecute taints
// change, pods that do not tolerate one are deleted at once, pods that tolerate all of them for a limited
// time (`tolerationSeconds`) are deleted when the shortest toleration runs out. Evicted pods get the
// DisruptionTarget condition (DeletionByTaintManager) first.
import { describeTaint, Taint, Toleration, tolerates } from "../../kube/tolerations";
import type { SimClock } from "../clock";
import type { Store, StoreEvent } from "../store";
import { Condition, isPodTerminal, setCondition } from "./podStatus";
import { currentPod, deletePod, PodsOnNode, writePod } from "./podAccess";

type Rec = Record<string, unknown>;

/** When a pod with these tolerations must go: 0 now, ms later, or undefined (it tolerates the taints forever). */
export function evictionDelayMs(noExecute: Taint[], tolerations: Toleration[]): number | undefined {
  let evictAfter: number | undefined;
  for (const t of noExecute) {
    const matching = tolerations.filter((tol) => tolerates(tol, t));
    if (matching.length === 0) return 0;
    const limited = matching.filter((tol) => tol.tolerationSeconds !== undefined);
    if (limited.length === matching.length) {
      const secs = Math.min(...limited.map((tol) => Math.max(0, tol.tolerationSeconds as number)));
      evictAfter = evictAfter === undefined ? secs * 1000 : Math.min(evictAfter, secs * 1000);
    }
  }
  return evictAfter;
}

export class TaintEviction {
  /** pod key → cancels its pending eviction */
  private readonly timers = new Map<string, () => void>();

  constructor(
    private readonly store: Store,
    private readonly clock: SimClock,
    private readonly podsOn: PodsOnNode,
  ) {}

  onEvent(e: StoreEvent): void {
    if (e.resource !== "nodes" || e.type !== "MODIFIED") return;
    const before = (e.previous?.spec?.taints as Taint[] | undefined) ?? [];
    const after = (e.object.spec?.taints as Taint[] | undefined) ?? [];
    if (JSON.stringify(before) !== JSON.stringify(after)) this.check(e.object.metadata.name ?? "", after);
  }

  private check(nodeName: string, taints: Taint[]): void {
    const noExecute = taints.filter((t) => t.effect === "NoExecute");
    for (const key of this.podsOn(nodeName)) {
      const pod = currentPod(this.store, key);
      if (!pod || pod.metadata.deletionTimestamp || isPodTerminal(pod)) continue;
      const tolerations = (pod.spec?.tolerations as Toleration[] | undefined) ?? [];
      const evictAfter = evictionDelayMs(noExecute, tolerations);
      this.timers.get(key)?.();
      this.timers.delete(key);
      if (evictAfter === undefined) continue;
      const taint = noExecute.map(describeTaint).join(", ");
      if (evictAfter === 0) this.evict(key, taint);
      else
        this.timers.set(
          key,
          this.clock.after(evictAfter, () => this.evict(key, taint)),
        );
    }
  }

  private evict(key: string, taint: string): void {
    this.timers.delete(key);
    const pod = writePod(this.store, key, (p) => {
      if (p.metadata.deletionTimestamp || isPodTerminal(p)) return false;
      const status = (p.status ?? {}) as Rec;
      status.conditions = setCondition(
        (status.conditions as Condition[]) ?? [],
        {
          type: "DisruptionTarget",
          status: "True",
          reason: "DeletionByTaintManager",
          message: `Taint manager: deleting due to NoExecute taint (${taint})`,
        },
        this.clock.iso(),
      );
    });
    if (pod) deletePod(this.store, key);
  }
}
