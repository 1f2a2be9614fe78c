// Which nodes a run targets: an explicit list, or the union of the label-selector passes (paged), optionally waited
// for until the set settles; then admission by the template's tolerations. Nodes are read with LIST only, since
// chart 4.0.0's ClusterRole grants nodes `list` and nothing else.
import type { Toleration } from "../kube/tolerations";
import { admitNodes, describeSelectors, type NodeLike, type SkippedNode } from "./admission";
import { apiFailureOf, sleep, type ListOptions, type ListPage } from "./kubeApi";
import type { Logger } from "./log";
import { DispatcherError, type DispatcherOptions } from "./options";
import { DISPATCHER_DEFAULTS } from "./defaults";
import { normalizeSelection, selectionQueries } from "../kube/nodeSelection";

/** One LIST of nodes, with the run's retries around it; `what` names the request in retry messages. */
export type ListNodesPage = (what: string, options: ListOptions) => Promise<ListPage<NodeLike>>;

export interface NodeSelection {
  admitted: NodeLike[];
  skipped: SkippedNode[];
}

export interface NodeResolverContext {
  listNodes: ListNodesPage;
  options: DispatcherOptions;
  /** The Job template's tolerations (known once the template was read). */
  tolerations: () => readonly Toleration[];
  log: Logger;
  /** When the run started (epoch ms): --wait-for-nodes-secs counts from there. */
  startedAt: number;
  /** True once the run is stopping: waiting for nodes ends with what was found. */
  stopping: () => boolean;
  signal: AbortSignal;
}

/** What node resolution, admission and re-validation read of a Node (a full Node is several KB). */
function slimNode(node: NodeLike): NodeLike {
  const m = node.metadata ?? {};
  return {
    metadata: { name: m.name, uid: m.uid, labels: m.labels, resourceVersion: m.resourceVersion },
    spec: { taints: node.spec?.taints, unschedulable: node.spec?.unschedulable },
    // The handler names only (--skip-satisfied-nodes reads them); undefined stays undefined: "not reported".
    ...(Array.isArray(node.status?.runtimeHandlers)
      ? { status: { runtimeHandlers: node.status.runtimeHandlers.map((h) => ({ name: h.name })) } }
      : {}),
  };
}

export class NodeResolver {
  constructor(private readonly ctx: NodeResolverContext) {}

  /** One node by name through LIST + fieldSelector; undefined when it does not exist (or the extra selector excludes it). */
  async readNode(name: string, extraFieldSelector?: string): Promise<NodeLike | undefined> {
    const fieldSelector = [`metadata.name=${name}`, extraFieldSelector].filter(Boolean).join(",");
    const page = await this.ctx.listNodes(`list node ${name}`, { fieldSelector, limit: 1 });
    return page.items.find((n) => n.metadata?.name === name);
  }

  /** The nodes to dispatch to, and those skipped for taints the template does not tolerate. */
  async resolve(): Promise<NodeSelection> {
    const o = this.ctx.options;
    // Names win (deduplicated, sorted); else the selectors' union, resolved below.
    const explicit = normalizeSelection({ nodes: o.nodes, selectors: o.nodeSelectors }).nodes;
    if (explicit) return this.resolveExplicit(explicit);
    const wait = o.waitForNodesSecs ?? DISPATCHER_DEFAULTS.waitForNodesSecs;
    const settle = o.nodeSettleSecs ?? DISPATCHER_DEFAULTS.nodeSettleSecs;
    const pollMs = Math.max(0.01, o.pollIntervalSecs ?? DISPATCHER_DEFAULTS.pollIntervalSecs) * 1000;
    const deadline = this.ctx.startedAt + wait * 1000;
    let previous: string | undefined;
    let stableSince = Date.now();
    let announcedEmpty = false;
    for (;;) {
      const round = await this.selectionRound();
      const expired = Date.now() >= deadline;
      if (round.admitted.length > 0) {
        const names = round.admitted.map((n) => n.metadata?.name).join(",");
        const changed = names !== previous;
        if (changed) {
          previous = names;
          stableSince = Date.now();
        }
        const settled = wait === 0 || Date.now() - stableSince >= settle * 1000;
        if (expired || settled) return round;
        if (changed) {
          this.ctx.log.log(
            "info",
            `${round.admitted.length} eligible node(s) so far; waiting for the set to stay unchanged for ${settle}s`,
          );
        }
      } else {
        if (previous !== "") {
          previous = "";
          stableSince = Date.now();
        }
        if (expired) return round;
        if (!announcedEmpty) {
          announcedEmpty = true;
          this.ctx.log.log(
            "info",
            `nothing eligible yet for ${describeSelectors(o.nodeSelectors ?? [])}; re-checking for up to ${wait}s`,
          );
        }
      }
      if (this.ctx.stopping()) return round;
      await sleep(pollMs, this.ctx.signal);
    }
  }

  private async resolveExplicit(names: string[]): Promise<NodeSelection> {
    const found: NodeLike[] = [];
    const missing: string[] = [];
    for (const name of names) {
      const node = await this.readNode(name);
      if (node) found.push(node);
      else missing.push(name);
    }
    if (missing.length > 0) {
      throw new DispatcherError(
        `--nodes: no such node(s): ${missing.join(", ")}; check the names with kubectl get nodes`,
        2,
      );
    }
    return this.admit(found);
  }

  private async selectionRound(): Promise<NodeSelection> {
    const o = this.ctx.options;
    const passes = selectionQueries({ selectors: o.nodeSelectors });
    let all: NodeLike[] = [];
    // concat, not push(...): a 100,000-node pass spread as arguments overflows the call stack.
    for (const pass of passes) all = all.concat(await this.listAll(pass, o.nodeFieldSelector || undefined));
    return this.admit(all);
  }

  private admit(nodes: NodeLike[]): NodeSelection {
    return admitNodes(nodes, this.ctx.tolerations(), Boolean(this.ctx.options.ignoreNodeTaints));
  }

  private async listAll(
    labelSelector: string | undefined,
    fieldSelector: string | undefined,
  ): Promise<NodeLike[]> {
    const items: NodeLike[] = [];
    let continueToken: string | undefined;
    const limit = Math.max(1, Math.floor(this.ctx.options.nodePageSize ?? DISPATCHER_DEFAULTS.nodePageSize));
    for (;;) {
      try {
        const page = await this.ctx.listNodes(`list nodes${labelSelector ? ` [${labelSelector}]` : ""}`, {
          labelSelector,
          fieldSelector,
          limit,
          continueToken,
        });
        for (const node of page.items) items.push(slimNode(node));
        continueToken = page.continueToken;
        if (!continueToken) return items;
      } catch (err) {
        // An expired continue token: start the listing over, as the API server suggests.
        if (apiFailureOf(err).code === 410 && continueToken) {
          items.length = 0;
          continueToken = undefined;
          continue;
        }
        throw err;
      }
    }
  }
}
