// The rollout provider against the simulator: chart objects applied, RBAC on, the bundled dispatcher really run as a
// child process, results compared with the simulator's own record of every Job (its audit log and store).
import assert from "node:assert/strict";
import { jobName } from "../../dispatcher/naming";
import type { PodLike } from "../../kube/jobStatus";
import { decodeResults } from "../../rollout/compact";
import { rolloutProvider } from "../../rollout/provider";
import type { RolloutOutputs } from "../../rollout/types";
import type { KubeObject } from "../../sim/types";
import { serializedProvider, type RolloutProvider } from "./serialized";
import {
  CLEANUP_OWNER,
  INSTALL_OWNER,
  RELEASE,
  apply,
  byNode,
  expectInitFailure,
  simJobOutcomes,
  startRelease,
  type Release,
} from "./simHarness";

process.env.KATA_ROLLOUT_LOG = process.env.KATA_ROLLOUT_LOG ?? "quiet";

const KATA_LABEL = "katacontainers.io/kata-runtime";
const DISPATCHER_SA = `system:serviceaccount:${RELEASE.namespace}:kata-deploy-dispatcher-sa`;

/** The container termination message of the newest failed pod of a Job, from the simulator's store. */
function simFailure(
  r: Release,
  job: string,
): { container: string; exitCode: number; message: string } | undefined {
  const pods = r.sim.list("pods", {
    namespace: RELEASE.namespace,
    labelSelector: `batch.kubernetes.io/job-name=${job}`,
  }) as unknown as PodLike[];
  for (const p of pods.reverse()) {
    for (const s of [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])]) {
      const t = s.state?.terminated;
      if (t && (t.exitCode ?? 0) !== 0)
        return { container: s.name, exitCode: t.exitCode ?? 0, message: t.message ?? "" };
    }
  }
  return undefined;
}

function createsOf(r: Release, name: string): number {
  return r.sim.audit.transitions("jobs").filter((t) => t.kind === "created" && t.name === name).length;
}

describe("rollout provider on the simulator", function () {
  this.timeout(120_000);

  describe("end to end: 500 nodes, mixed outcomes, RBAC on, the bundled dispatcher executed", () => {
    let r: Release;
    let outs: RolloutOutputs;
    let message = "";
    before(async () => {
      r = await startRelease({
        sim: {
          nodes: 500,
          controlPlane: 3,
          tainted: 5,
          failRate: 0.04,
          seed: 11,
          timeScale: 20_000,
          jobDurationMs: 60_000,
        },
        // A long TTL (simulated seconds) so the test can read the failed pods back from the store afterwards.
        values: { job: { parallelism: 100, ttlSecondsAfterFinished: 50_000_000 } },
        rollout: { timeoutSeconds: 90 },
      });
      const t = Date.now();
      const failure = await expectInitFailure(rolloutProvider.create(r.inputs));
      message = failure.message;
      outs = failure.properties as unknown as RolloutOutputs;
      console.log(
        `      500-node install: ${Date.now() - t} ms real, dispatcher runs: ${JSON.stringify(r.dispatcherRuns)}`,
      );
    });
    after(async () => r?.close());

    it("fails the update with the results recorded: id, properties, failed nodes and reasons in the message", () => {
      assert.equal(outs.lastRunKey, r.inputs.runKey);
      assert.match(message, /install failed: \d+\/\d+ nodes succeeded, \d+ failed, 5 skipped/);
      const failed = decodeResults(outs.results).filter((x) => x.outcome === "failed");
      assert.ok(failed.length > 0);
      for (const f of failed.slice(0, 10)) assert.ok(message.includes(`${f.node} (${f.reason}`), f.node);
    });

    it("reports exactly what the simulator recorded for every per-node Job", () => {
      const truth = simJobOutcomes(r.sim, INSTALL_OWNER);
      const results = decodeResults(outs.results);
      const mine = byNode(results);
      assert.ok(truth.size > 400);
      for (const [node, t] of truth) {
        const m = mine.get(node);
        assert.ok(m, `node ${node} has a Job in the simulator but no result`);
        assert.equal(m.job, t.job, node);
        assert.equal(m.outcome, t.outcome, node);
        if (t.outcome === "failed") assert.equal(m.reason, t.reason, node);
      }
      // Nodes without a Job: the tainted workers, skipped with their taint; control planes are not selected at all.
      const withoutJob = results.filter((x) => !truth.has(x.node));
      assert.equal(withoutJob.length, 5);
      for (const x of withoutJob) {
        assert.equal(x.outcome, "skipped");
        assert.equal(x.reason, "Tainted");
        assert.match(x.message ?? "", /dedicated=gpu:NoSchedule/);
      }
      const nodes = r.sim.list("nodes");
      const controlPlanes = nodes.filter(
        (n) => (n.metadata.labels ?? {})["node-role.kubernetes.io/control-plane"] !== undefined,
      );
      assert.equal(controlPlanes.length, 3);
      for (const cp of controlPlanes) assert.equal(mine.get(String(cp.metadata.name)), undefined);
      assert.equal(results.length, nodes.length - 3);
      assert.deepEqual(outs.summary, {
        total: results.length,
        succeeded: results.filter((x) => x.outcome === "succeeded").length,
        failed: results.filter((x) => x.outcome === "failed").length,
        skipped: 5,
        durationSeconds: outs.summary.durationSeconds,
      });
    });

    it("carries the failed container, its exit code and termination message, read from the pods", () => {
      for (const f of decodeResults(outs.results).filter((x) => x.outcome === "failed")) {
        const truth = simFailure(r, f.job ?? "");
        assert.ok(truth, `the simulator has a failed pod for ${f.job}`);
        assert.equal(
          f.message,
          `container ${truth.container} exited ${truth.exitCode}: ${truth.message.split("\n")[0]} [${f.reason}]`,
        );
        assert.equal(f.attempts, 4, "backoffLimit 3: four pods ran");
      }
    });

    it("ran the dispatcher under its own ServiceAccount within chart 4.0.0's RBAC (no Forbidden on Jobs or nodes)", () => {
      assert.ok(r.dispatcherRuns.length === 1 || r.sim.executions().length >= 1);
      const asDispatcher = r.sim.audit.requests({ user: DISPATCHER_SA });
      assert.ok(asDispatcher.some((q) => q.verb === "create" && q.resource === "jobs" && q.code === 201));
      assert.deepEqual(
        asDispatcher.filter((q) => q.code === 403 && (q.resource === "jobs" || q.resource === "nodes")),
        [],
      );
    });

    it("keeps the state compact: under 200 bytes per node for the whole recorded outputs", () => {
      const bytes = Buffer.byteLength(JSON.stringify(outs));
      const perNode = bytes / outs.summary.total;
      console.log(
        `      state: ${bytes} bytes for ${outs.summary.total} nodes = ${perNode.toFixed(1)} bytes/node (results alone ${(Buffer.byteLength(outs.results) / outs.summary.total).toFixed(1)})`,
      );
      assert.ok(perNode < 200, `${perNode} bytes per node`);
    });

    it("destroy runs the cleanup dispatcher on exactly the labelled nodes, then removes its hook Job", async () => {
      // Chart 4.0.0's label stage marks installed nodes; the simulator does not run it, so the test labels them.
      const succeeded = decodeResults(outs.results)
        .filter((x) => x.outcome === "succeeded")
        .map((x) => x.node);
      const labelled = succeeded.filter((_, i) => i % 3 === 0);
      for (const n of labelled)
        r.sim.patch("nodes", undefined, n, { metadata: { labels: { [KATA_LABEL]: "true" } } });
      await rolloutProvider.delete("kata-system/kata-deploy", outs);
      const cleaned = simJobOutcomes(r.sim, CLEANUP_OWNER);
      assert.deepEqual([...cleaned.keys()].sort(), [...labelled].sort());
      for (const [node, t] of cleaned) assert.equal(t.outcome, "succeeded", node);
      assert.equal(
        r.sim.get("jobs", RELEASE.namespace, "kata-deploy-cleanup-dispatcher"),
        undefined,
        "hook-succeeded",
      );
      assert.equal(
        r.sim.list("jobs", {
          namespace: RELEASE.namespace,
          labelSelector: `kata-deploy-job-dispatcher/owner=${INSTALL_OWNER}`,
        }).length,
        0,
      );
    });
  });
});
