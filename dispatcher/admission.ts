// Which selected nodes a DaemonSet pod with the template's tolerations would run on (dispatcher-reference.md §2.3):
// `nodeName` bypasses the scheduler, so the dispatcher must refuse the nodes the scheduler would have refused.
import {
  DAEMONSET_AUTOMATIC_TOLERATIONS,
  describeTaint,
  firstUntoleratedTaint,
  suggestedToleration,
  type Taint,
  type Toleration,
} from "../kube/tolerations";
import { admitSelected } from "../kube/nodeSelection";

/** The Node fields the dispatcher reads. */
export interface NodeLike {
  metadata?: {
    name?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
  };
  spec?: { taints?: Taint[]; unschedulable?: boolean };
  /** Read by the node-work checks (`--require-node-handlers`, `--skip-satisfied-nodes`, the Ready wait, node facts). */
  status?: {
    runtimeHandlers?: { name?: string }[];
    conditions?: { type: string; status: string }[];
    nodeInfo?: { machineID?: string; containerRuntimeVersion?: string };
  };
}

export interface SkippedNode {
  node: string;
  taint: Taint;
  /** `key=value:effect` */
  described: string;
  /** The toleration (YAML) that would admit the node. */
  suggestion: string;
}

export interface Admission {
  /** Every matched node, deduplicated by name and sorted (tainted and cordoned ones included). */
  matched: NodeLike[];
  admitted: NodeLike[];
  skipped: SkippedNode[];
}

/** The template's tolerations plus the six the DaemonSet controller adds to every daemon pod. */
export function effectiveTolerations(templateTolerations: readonly Toleration[]): Toleration[] {
  return [...templateTolerations, ...DAEMONSET_AUTOMATIC_TOLERATIONS];
}

/** The first NoSchedule/NoExecute taint of the node that the tolerations do not cover (PreferNoSchedule never blocks). */
export function blockingTaint(node: NodeLike, tolerations: readonly Toleration[]): Taint | undefined {
  return firstUntoleratedTaint(node.spec?.taints, effectiveTolerations(tolerations));
}

export function skippedNode(name: string, taint: Taint): SkippedNode {
  return { node: name, taint, described: describeTaint(taint), suggestion: suggestedToleration(taint) };
}

/** Split matched nodes into admitted and skipped, as a DaemonSet with the template's tolerations would. */
export function admitNodes(
  nodes: readonly NodeLike[],
  tolerations: readonly Toleration[],
  ignoreTaints: boolean,
): Admission {
  // The nodes are the selection already (the API server evaluated the selectors; names were fetched).
  const { matched, admitted, skipped } = admitSelected([nodes], {}, effectiveTolerations(tolerations), {
    ignoreTaints,
  });
  return { matched, admitted, skipped: skipped.map((s) => skippedNode(s.name, s.taint)) };
}

/** `[a=b], [c=d]`, or `<none> (every node)`. */
export function describeSelectors(selectors: readonly string[]): string {
  return selectors.length === 0 ? "<none> (every node)" : selectors.map((s) => `[${s}]`).join(", ");
}

/**
 * Why no node is eligible, or undefined when an empty selection is a legitimate no-op (nothing matched and the
 * caller never waited): all-tainted is always an error; empty after waiting is an error (dispatcher-reference.md §2.2).
 */
export function noEligibleNodesError(
  skipped: readonly SkippedNode[],
  waitForNodesSecs: number,
  selectors: readonly string[],
): string | undefined {
  if (skipped.length > 0) {
    const first = skipped[0];
    const waited = waitForNodesSecs > 0 ? ` after waiting ${waitForNodesSecs}s` : "";
    return (
      `no eligible node: ${skipped.length} node(s) matched but none is tolerated by the Job template${waited}; ` +
      `node ${first.node} has taint ${first.described}. To admit it, add to the template's pod spec:\n${first.suggestion}`
    );
  }
  if (waitForNodesSecs > 0) {
    return (
      `no node matched after waiting ${waitForNodesSecs}s for selector(s) ${describeSelectors(selectors)}; ` +
      `check the node labels, or pass --wait-for-nodes-secs=0 (job.waitForNodesSeconds: 0) to accept an empty selection`
    );
  }
  return undefined;
}
