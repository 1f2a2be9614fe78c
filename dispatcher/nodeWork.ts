// The node work around each Job (dispatcher-reference.md §3, k8s-job-dispatcher's labelling flags): claim or demote
// the install's labels before the Job; after it succeeded, release them (cleanup) or label the node until the labels
// hold. Every write is a guarded JSON patch (kube/nodeLabels.ts): a replaced node or a concurrent change is refused
// and read again. The decisions (which labels change) are kube/nodeLabels.ts's pure functions; this file reads,
// writes and paces.
import {
  claimChanges,
  demoteChanges,
  guardedLabelPatch,
  guardedTaintPatch,
  handlersVerdict,
  nodeIsReady,
  servedHandlers,
  taintsToKeep,
  labelChanges,
  releaseChanges,
  type InstallLabelKeys,
  type JsonPatchOp,
  type LabelChanges,
} from "../kube/nodeLabels";
import type { NodeLike } from "./admission";
import type { NodeWorkTiming } from "./defaults";
import { kubeletTimeoutNote } from "./decide";
import { apiFailureOf } from "./kubeApi";
import type { Logger } from "./log";
import { describeError, type DispatcherOptions } from "./options";

/** A node whose node work failed: its result is `failed` with this reason, and (before the Job) no Job is created. */
export class NodeWorkFailure extends Error {
  override readonly name = "NodeWorkFailure";
  constructor(
    readonly reason: "NodeReplaced" | "ClaimFailed" | "LabelFailed" | "NodeNotReady" | "HandlersNotServed",
    message: string,
  ) {
    super(message);
  }
}

export interface NodeWorkContext {
  options: DispatcherOptions;
  keys: InstallLabelKeys;
  timing: NodeWorkTiming;
  /** The node as listed now (with the run's retries), undefined when it is gone. */
  readNode: (name: string) => Promise<NodeLike | undefined>;
  /** The kubelet's `/configz` through the node proxy, bounded in time; advisory. */
  readKubeletConfig: (node: string) => Promise<unknown>;
  /** One guarded JSON patch (no retries on 409/422: those are answers here). */
  patchNode: (name: string, ops: readonly JsonPatchOp[]) => Promise<void>;
  /** Resolves after `ms`, or rejects when the run is killed. */
  sleep: (ms: number) => Promise<void>;
  log: Logger;
}

/** 409, or 422 from a failed JSON-patch `test`: the node changed since it was read. */
function isConflict(err: unknown): boolean {
  const code = apiFailureOf(err).code;
  return code === 409 || code === 422;
}

export class NodeWork {
  constructor(private readonly ctx: NodeWorkContext) {}

  /** Work before the Job: demote (--remove-node-label), claim (--claim-node-pending). */
  get beforeDispatchNeeded(): boolean {
    const o = this.ctx.options;
    return Boolean(o.removeNodeLabel || o.claimNodePending || o.kubeletTimeoutWarnSecs);
  }

  /** Work after the Job succeeded: release (--remove-node-label) or label (--node-label). */
  get afterSuccessNeeded(): boolean {
    return Boolean(this.ctx.options.removeNodeLabel || this.ctx.options.nodeLabel !== undefined);
  }

  /** §3.1: demote, claim; any failure fails the node and no Job is created. */
  async beforeDispatch(node: string, uid: string | undefined): Promise<void> {
    const { keys, options } = this.ctx;
    if (options.removeNodeLabel) {
      await this.rewrite(node, uid, "LabelFailed", "demote the install's labels", (l) =>
        demoteChanges(l, keys),
      );
    }
    if (options.claimNodePending) {
      // A host the Job modified must stay discoverable by a later uninstall: no claim, no Job.
      await this.rewrite(
        node,
        uid,
        "ClaimFailed",
        "claim the node (pending labels); refusing to change a host a later uninstall could not find",
        (l) => claimChanges(l, keys),
        this.ctx.timing.claimAttempts,
      );
    }
    if (options.kubeletTimeoutWarnSecs) await this.probeKubelet(node, options.kubeletTimeoutWarnSecs);
    // The labels were written for the node selected; it must still be that machine.
    if (options.removeNodeLabel || options.claimNodePending) await this.current(node, uid);
  }

  /** §3.5, advisory: every failure (no `nodes/proxy` permission, a timeout, an odd answer) only warns. */
  private async probeKubelet(node: string, thresholdSecs: number): Promise<void> {
    let note: { level: "info" | "warn"; message: string };
    try {
      note = kubeletTimeoutNote(node, await this.ctx.readKubeletConfig(node), thresholdSecs);
    } catch (err) {
      note = {
        level: "warn",
        message: `node ${node}: cannot read the kubelet's configz to check runtimeRequestTimeout: ${describeError(err)}`,
      };
    }
    this.ctx.log.log(note.level, note.message, { node });
  }

  /** §3.4: after the Job succeeded; throws NodeWorkFailure when the node must be reported failed. */
  async afterSuccess(node: string, uid: string | undefined): Promise<void> {
    const { keys, options } = this.ctx;
    if (options.removeNodeLabel) {
      await this.rewrite(node, uid, "LabelFailed", "release the install's labels", (l) =>
        releaseChanges(l, keys),
      );
      return;
    }
    if (options.nodeLabel === undefined) return;
    if (options.waitNodeReadySecs) await this.waitReady(node, uid, options.waitNodeReadySecs);
    if (options.requireNodeHandlers?.length)
      await this.verifyHandlers(node, uid, options.requireNodeHandlers);
    await this.labelUntilStable(node, uid, options.nodeLabel);
    if (options.removeNodeTaints?.length) await this.liftTaints(node, uid);
  }

  /** §3.4 step 4: the Ready condition True within `secs`; a read error counts as not ready yet. */
  private async waitReady(node: string, uid: string | undefined, secs: number): Promise<void> {
    const deadline = Date.now() + secs * 1000;
    for (;;) {
      const now = await this.current(node, uid).catch(rethrowReplaced);
      if (now && nodeIsReady(now)) return;
      if (Date.now() >= deadline) {
        throw new NodeWorkFailure(
          "NodeNotReady",
          `node ${node} did not become Ready within ${secs}s (--wait-node-ready-secs)`,
        );
      }
      await this.ctx.sleep(this.ctx.timing.checkIntervalMs);
    }
  }

  /**
   * §3.4 step 6: any one expected handler served (others missing only warn); a node not reporting handlers passes;
   * a failed read never counts as an answer. Re-checked until the handler wait ends.
   */
  private async verifyHandlers(
    node: string,
    uid: string | undefined,
    expected: readonly string[],
  ): Promise<void> {
    const deadline = Date.now() + this.ctx.timing.handlerWaitMs;
    let served: string[] | undefined;
    for (;;) {
      const now = await this.current(node, uid).catch(rethrowReplaced);
      if (now) {
        served = servedHandlers(now);
        const verdict = handlersVerdict(served, expected);
        if (verdict === "unanswerable") {
          this.ctx.log.log("info", `node ${node}: does not report runtime handlers; not checked`, { node });
          return;
        }
        if (verdict === "serving") {
          const missing = expected.filter((h) => !served?.includes(h));
          if (missing.length > 0)
            this.ctx.log.log(
              "warn",
              `node ${node}: does not serve ${missing.join(", ")} (serves another required one)`,
              {
                node,
              },
            );
          return;
        }
      }
      if (Date.now() >= deadline) {
        throw new NodeWorkFailure(
          "HandlersNotServed",
          `node ${node} serves none of ${expected.join(", ")} after ${this.ctx.timing.handlerWaitMs / 1000}s (it serves: ${served?.join(", ") || "nothing"}; --require-node-handlers)`,
        );
      }
      await this.ctx.sleep(this.ctx.timing.checkIntervalMs);
    }
  }

  /** §3.4 step 10, best effort: the node is labelled; a taint left in place is a warning, and a later run retries. */
  private async liftTaints(node: string, uid: string | undefined): Promise<void> {
    const matchers = this.ctx.options.removeNodeTaints ?? [];
    for (let attempt = 1; attempt <= this.ctx.timing.taintPatchAttempts; attempt++) {
      try {
        const now = await this.current(node, uid);
        const taints = now.spec?.taints ?? [];
        const keep = taintsToKeep(taints, matchers);
        if (keep.length === taints.length) return;
        await this.ctx.patchNode(node, guardedTaintPatch(now, keep));
        this.ctx.log.log("info", `node ${node}: lifted ${taints.length - keep.length} start-up taint(s)`, {
          node,
        });
        return;
      } catch (err) {
        if (isConflict(err) && attempt < this.ctx.timing.taintPatchAttempts) continue;
        this.ctx.log.log(
          "warn",
          `node ${node}: labelled, but its start-up taints stay: ${describeError(err)}`,
          { node },
        );
        return;
      }
    }
  }

  /** The node as read now, failing when it is gone or is another machine under the same name. */
  private async current(node: string, uid: string | undefined): Promise<NodeLike> {
    const now = await this.ctx.readNode(node);
    if (!now) throw new NodeWorkFailure("NodeReplaced", `node ${node} no longer exists`);
    if (uid && now.metadata?.uid !== uid) {
      throw new NodeWorkFailure(
        "NodeReplaced",
        `node ${node} was replaced (uid ${uid} → ${now.metadata?.uid}); its labels are left alone`,
      );
    }
    return now;
  }

  /** Read, decide, write guarded; a conflict reads again, up to `attempts` writes. */
  private async rewrite(
    node: string,
    uid: string | undefined,
    reason: NodeWorkFailure["reason"],
    what: string,
    decide: (labels: Record<string, string> | undefined) => LabelChanges,
    attempts = this.ctx.timing.labelPatchAttempts,
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const now = await this.current(node, uid);
      const changes = decide(now.metadata?.labels);
      if (Object.keys(changes).length === 0) return;
      try {
        await this.ctx.patchNode(node, guardedLabelPatch(now, changes));
        this.ctx.log.log("info", `node ${node}: ${what}: ${describeChanges(changes)}`, { node });
        return;
      } catch (err) {
        if (!isConflict(err)) throw new NodeWorkFailure(reason, `cannot ${what}: ${describeError(err)}`);
        if (attempt >= attempts) {
          throw new NodeWorkFailure(
            reason,
            `cannot ${what}: the node kept changing (${attempts} conflicting writes)`,
          );
        }
      }
    }
  }

  /**
   * Both labels at `value`, re-applied until they hold for `labelStableChecks` checks in a row (a kubelet restarted by
   * the CRI stage may re-register the node with its cached labels), at most `labelApplyAttempts` times.
   */
  private async labelUntilStable(node: string, uid: string | undefined, value: string): Promise<void> {
    const { keys, timing } = this.ctx;
    for (let attempt = 1; attempt <= timing.labelApplyAttempts; attempt++) {
      await this.rewrite(node, uid, "LabelFailed", `label the node ${value}`, (l) =>
        labelChanges(l, keys, value),
      );
      let stable = 0;
      while (stable < timing.labelStableChecks) {
        await this.ctx.sleep(timing.checkIntervalMs);
        const now = await this.current(node, uid).catch((err: unknown) => {
          if (err instanceof NodeWorkFailure) throw err;
          return undefined;
        });
        if (!now || Object.keys(labelChanges(now.metadata?.labels, keys, value)).length > 0) {
          this.ctx.log.log(
            "warn",
            `node ${node}: labels ${keys.shared}/${keys.mark} drifted from ${value}; applying again`,
            {
              node,
            },
          );
          break;
        }
        stable++;
      }
      if (stable >= timing.labelStableChecks) return;
    }
    throw new NodeWorkFailure(
      "LabelFailed",
      `labels ${keys.shared} and ${keys.mark} did not stay ${value} after ${timing.labelApplyAttempts} attempts`,
    );
  }
}

/** A read that failed is "no answer yet"; a node replaced or gone ends the work. */
function rethrowReplaced(err: unknown): undefined {
  if (err instanceof NodeWorkFailure) throw err;
  return undefined;
}

function describeChanges(changes: LabelChanges): string {
  return Object.entries(changes)
    .map(([k, v]) => (v === null ? `-${k}` : `${k}=${v}`))
    .join(", ");
}
