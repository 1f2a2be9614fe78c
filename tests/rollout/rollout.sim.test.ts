// The rollout provider against the simulator: chart objects applied, RBAC on, the bundled dispatcher really run as a
// child process, results compared with the simulator's own record of every Job (its audit log and store).
import { KATA_RUNTIME_LABEL } from "../../chart/names";
import assert from "node:assert/strict";
import type { PodLike } from "../../kube/jobStatus";
import { decodeResults } from "../../rollout/compact";
import { rolloutProvider as directProvider } from "../../rollout/provider";
import type { RolloutOutputs } from "../../rollout/types";
import type { RolloutProvider } from "./serialized";
import {
  CLEANUP_OWNER,
  INSTALL_OWNER,
  RELEASE,
  byNode,
  expectInitFailure,
  type InitFailure,
  simJobOutcomes,
  startRelease,
  deployRelease,
  type Release,
  kataLabelledNodes,
} from "./simHarness";

process.env.KATA_ROLLOUT_LOG = process.env.KATA_ROLLOUT_LOG ?? "quiet";

/** Every method the provider implements (the SDK type marks them optional). */
const rolloutProvider = directProvider as Required<RolloutProvider>;

const KATA_LABEL = KATA_RUNTIME_LABEL;
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

describe("rollout provider on the simulator", function () {
  this.timeout(300_000);

  describe("end to end: 500 nodes, mixed outcomes, RBAC on, the bundled dispatcher executed", function () {
    this.timeout(900_000);
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
        // Real seconds: only a bound on a hang. 90 s ran out on a busy machine (load 18, issue #18).
        rollout: { timeoutSeconds: 600 },
      });
      const t = Date.now();
      const failure = await expectInitFailure(rolloutProvider.create(r.inputs));
      message = failure.message;
      outs = failure.properties as unknown as RolloutOutputs;
      console.log(
        `      500-node install: ${Date.now() - t} ms real, dispatcher processes run by the simulator: ${r.sim.executions().length}`,
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
      // The simulator scheduled the dispatcher pod and ran its real command (the bundled script) as a process.
      const runs = r.sim.executions().filter((e) => e.job === "kata-deploy-install-dispatcher");
      // Each execution's end, for a failure's diagnosis (one busy run saw a second execution, issue #18).
      const ends = runs
        .map((e) => `${e.pod}: exit ${e.exitCode} signal ${e.signal}; stderr ends: ${e.stderr.slice(-1500)}`)
        .join("\n");
      assert.equal(runs.length, 1, ends);
      assert.equal(runs[0].exitCode, 1, `some nodes failed, so the dispatcher exits 1\n${ends}`);
      const asDispatcher = r.sim.audit.requests({ user: DISPATCHER_SA });
      assert.ok(asDispatcher.some((q) => q.verb === "create" && q.resource === "jobs" && q.code === 201));
      // The outcome records (node patch, Events) are optional and beyond chart 4.0.0's role: tried once each.
      const denied = asDispatcher.filter((q) => q.code === 403);
      assert.deepEqual(
        denied.filter((q) => q.resource === "jobs" || (q.resource === "nodes" && q.verb !== "patch")),
        [],
      );
      assert.ok(denied.filter((q) => q.resource === "nodes").length <= 1);
      assert.ok(denied.filter((q) => q.resource === "events").length <= 1);
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
      // Chart 4.0.0's label stage marked every installed node (the simulated stage does too); every third keeps it.
      const succeeded = decodeResults(outs.results)
        .filter((x) => x.outcome === "succeeded")
        .map((x) => x.node);
      assert.deepEqual(kataLabelledNodes(r.sim), [...succeeded].sort());
      const labelled = succeeded.filter((_, i) => i % 3 === 0);
      for (const n of succeeded.filter((_, i) => i % 3 !== 0))
        r.sim.patch("nodes", undefined, n, { metadata: { labels: { [KATA_LABEL]: null } } });
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

  // The lifecycle (Check → Create → Diff → Update → Read → Delete: re-run rule, drift, refresh, destroy) runs through
  // the hosts the engine starts, over gRPC: tests/provider/lifecycle.ts. This file keeps the behaviour under
  // conditions a lifecycle cannot stage (failures at scale, timeouts, stuck pods, mode switches, short TTLs).

  describe("timeout and stuck pods", () => {
    let r: Release;
    let timedOut: RolloutOutputs;
    let failure: InitFailure;
    let timeoutSeconds = 0;
    let elapsedMs = 0;
    before(async function () {
      this.timeout(300_000);
      // The scenario needs ok-1 and ok-2 finished and "hangs" running when the rollout's (real-time) timeout
      // passes. On a busy machine the dispatcher process may not even start within a short timeout, so the
      // timeout doubles until the simulator shows that scenario; an idle machine needs the first, 6 s.
      for (timeoutSeconds = 6; ; timeoutSeconds *= 2) {
        r = await startRelease({
          sim: {
            seed: 9,
            timeScale: 20_000,
            jobDurationMs: 60_000,
            fleet: {
              nodes: [
                {
                  name: "ok-1",
                  labels: { "kubernetes.io/os": "linux" },
                  containerRuntimeVersion: "containerd://2.1.5",
                  machineID: "m1",
                },
                {
                  name: "ok-2",
                  labels: { "kubernetes.io/os": "linux" },
                  containerRuntimeVersion: "containerd://2.1.5",
                  machineID: "m2",
                },
                {
                  name: "hangs",
                  labels: { "kubernetes.io/os": "linux" },
                  containerRuntimeVersion: "containerd://2.1.5",
                  machineID: "m3",
                  outcome: { kind: "hang" },
                },
              ],
            },
          },
          values: { job: { ttlSecondsAfterFinished: 50_000_000 } },
          rollout: { timeoutSeconds, stuckGraceSeconds: 3600 },
        });
        const t = Date.now();
        failure = await expectInitFailure(rolloutProvider.create(r.inputs));
        elapsedMs = Date.now() - t;
        const truth = simJobOutcomes(r.sim, INSTALL_OWNER);
        const reached =
          truth.get("ok-1")?.outcome === "succeeded" &&
          truth.get("ok-2")?.outcome === "succeeded" &&
          truth.get("hangs")?.outcome === "active";
        if (reached || timeoutSeconds >= 48) break;
        await r.close();
      }
    });
    after(async () => r?.close());

    it("fails the run when the timeout passes, naming the unfinished node, with the finished ones recorded", async () => {
      assert.ok(elapsedMs < (timeoutSeconds + 9) * 1000, `${elapsedMs} ms for a ${timeoutSeconds} s timeout`);
      assert.match(failure.message, /the rollout timeout passed/);
      assert.match(failure.message, /hangs \(Timeout: Job kata-deploy-install-hangs had not finished/);
      const results = byNode(decodeResults(failure.properties.results));
      // The finished ones as the audit has them (on a loaded machine one may still run when the 6 s pass).
      const truth = simJobOutcomes(r.sim, INSTALL_OWNER);
      for (const node of ["ok-1", "ok-2"])
        assert.equal(
          results.get(node)?.outcome,
          truth.get(node)?.outcome === "succeeded" ? "succeeded" : "failed",
        );
      assert.ok(["ok-1", "ok-2"].some((n) => results.get(n)?.outcome === "succeeded"));
      assert.equal(results.get("hangs")?.outcome, "failed");
      assert.equal(
        simJobOutcomes(r.sim, INSTALL_OWNER).get("hangs")?.outcome,
        "active",
        "the simulator agrees it never finished",
      );
      timedOut = failure.properties as unknown as RolloutOutputs;
    });

    it("job → daemonset: install Jobs still running from job mode are stopped and gone before the DaemonSet is judged", async () => {
      // The chart update has created the DaemonSet (Helm does the same before post-upgrade hooks); a job-mode Job
      // that outlived its run's timeout would still be installing next to it, so the rollout removes it first.
      const ds = await deployRelease(r.sim, {
        values: { deploymentMode: "daemonset" },
        rollout: { timeoutSeconds: 120 },
      });
      assert.ok(
        r.sim.get("jobs", RELEASE.namespace, "kata-deploy-install-hangs"),
        "left running by the timed-out run",
      );
      r.sim.setOutcome("hangs", { kind: "succeed" });
      for (const p of r.sim.list("pods", {
        namespace: RELEASE.namespace,
        labelSelector: "name=kata-deploy",
      })) {
        // The DaemonSet pod on "hangs" inherited the hang program; replace it so it can become Ready.
        if ((p.spec as { nodeName?: string }).nodeName === "hangs")
          r.sim.delete("pods", RELEASE.namespace, String(p.metadata.name));
      }
      r.sim.audit.reset();
      const outs = (await rolloutProvider.update("kata-system/kata-deploy", timedOut, ds.inputs))
        .outs as RolloutOutputs;
      assert.equal(outs.mode, "daemonset");
      assert.equal(r.sim.get("jobs", RELEASE.namespace, "kata-deploy-install-hangs"), undefined);
      assert.equal(r.sim.get("jobs", RELEASE.namespace, "kata-deploy-install-dispatcher"), undefined);
      assert.equal(
        r.sim.list("pods", {
          namespace: RELEASE.namespace,
          labelSelector: `kata-deploy-job-dispatcher/owner=${INSTALL_OWNER}`,
        }).length,
        0,
      );
      const deletes = r.sim.audit.requests({ verb: "delete", resource: "jobs" });
      // The rollout deleted the hook Job; garbage collection (or the rollout's own label-selected delete) took the
      // per-node Job it owned, and the rollout waited for both and their pods before judging the DaemonSet.
      assert.ok(deletes.some((q) => q.name === "kata-deploy-install-dispatcher" && q.code === 200));
      assert.ok(
        r.sim.audit
          .transitions("jobs")
          .some((t) => t.kind === "deleted" && t.name === "kata-deploy-install-hangs"),
      );
      assert.deepEqual(
        decodeResults(outs.results).map((x) => [x.node, x.outcome]),
        [
          ["hangs", "succeeded"],
          ["ok-1", "succeeded"],
          ["ok-2", "succeeded"],
        ],
      );
    });
  });

  describe("daemonset mode, then a switch to job mode", () => {
    let r: Release;
    let dsOuts: RolloutOutputs;
    let broken = "";
    const id = "kata-system/kata-deploy";
    before(async () => {
      r = await startRelease({
        sim: { nodes: 30, controlPlane: 1, tainted: 2, seed: 21, timeScale: 20_000, jobDurationMs: 60_000 },
        values: { deploymentMode: "daemonset", job: { ttlSecondsAfterFinished: 50_000_000 } },
        rollout: { timeoutSeconds: 120, stuckGraceSeconds: 1 },
      });
    });
    after(async () => r?.close());

    it("waits for the DaemonSet's pod on every eligible node, in the same result shape", async () => {
      assert.equal(r.inputs.mode, "daemonset");
      const workers = r.sim
        .list("nodes")
        .filter((n) => (n.metadata.labels ?? {})["node-role.kubernetes.io/control-plane"] === undefined);
      // One worker's image never pulls: its node must fail as Stuck, with the kubelet's reason.
      broken = String(
        workers.find((n) => !(n.spec as { taints?: unknown[] } | undefined)?.taints?.length)?.metadata.name,
      );
      r.sim.setOutcome(broken, { kind: "imagePullError", message: "manifest unknown" });
      // Its pod is already Ready; delete it so the DaemonSet controller makes a new one, which cannot pull.
      for (const p of r.sim.list("pods", {
        namespace: RELEASE.namespace,
        labelSelector: "name=kata-deploy",
      })) {
        if ((p.spec as { nodeName?: string }).nodeName === broken)
          r.sim.delete("pods", RELEASE.namespace, String(p.metadata.name));
      }
      const failure = await expectInitFailure(rolloutProvider.create(r.inputs));
      dsOuts = failure.properties as unknown as RolloutOutputs;
      const results = byNode(decodeResults(dsOuts.results));
      const pods = r.sim.list("pods", { namespace: RELEASE.namespace, labelSelector: "name=kata-deploy" });
      const readyOn = new Set(
        pods
          .filter((p) =>
            ((p.status as { conditions?: { type: string; status: string }[] }).conditions ?? []).some(
              (c) => c.type === "Ready" && c.status === "True",
            ),
          )
          .map((p) => String((p.spec as { nodeName: string }).nodeName)),
      );
      const podOn = new Set(pods.map((p) => String((p.spec as { nodeName: string }).nodeName)));
      assert.equal(readyOn.size, podOn.size - 1);
      for (const n of r.sim.list("nodes")) {
        const name = String(n.metadata.name);
        const got = results.get(name);
        assert.ok(got, name);
        if (readyOn.has(name)) assert.equal(got.outcome, "succeeded", name);
        else if (name === broken) {
          assert.equal(got.outcome, "failed");
          assert.equal(got.reason, "Stuck");
          assert.match(got.message ?? "", /ImagePullBackOff|ErrImagePull/);
        } else {
          assert.equal(podOn.has(name), false, `${name}: the simulator's DaemonSet controller placed no pod`);
          assert.equal(got.outcome, "skipped", name);
          assert.equal(got.reason, "Tainted", name);
        }
      }
      assert.equal(dsOuts.summary.skipped, 3, "a control plane and two tainted workers");
      assert.match(
        failure.message,
        new RegExp(`${broken.replace(/[.]/g, "\\.")} \\(Stuck: container kube-kata of pod`),
      );
    });

    it("daemonset → job: the DaemonSet and its pods are gone before the install dispatcher is created", async () => {
      // Pulumi has just updated the chart to job mode (new objects applied); it deletes the DaemonSet only after this
      // update, so the rollout must remove it first, as Helm's upgrade does before post-upgrade hooks.
      r.sim.setOutcome(broken, { kind: "succeed" });
      const job = await deployRelease(r.sim, {
        values: { deploymentMode: "job", job: { ttlSecondsAfterFinished: 50_000_000 } },
        rollout: { timeoutSeconds: 120 },
      });
      assert.ok(r.sim.get("daemonsets", RELEASE.namespace, "kata-deploy"), "the DaemonSet is still there");
      r.sim.audit.reset();
      let outs: RolloutOutputs | undefined;
      try {
        outs = (await rolloutProvider.update(id, dsOuts, job.inputs)).outs as RolloutOutputs;
      } catch (err) {
        outs = (err as { properties?: RolloutOutputs }).properties;
        if (!outs) throw err;
      }
      assert.equal(outs.mode, "job");
      assert.equal(
        outs.summary.failed,
        0,
        JSON.stringify(decodeResults(outs.results).filter((x) => x.outcome === "failed")),
      );
      const t = r.sim.audit.transitions();
      const dispatcherCreated = t.find(
        (x) => x.resource === "jobs" && x.kind === "created" && x.name === "kata-deploy-install-dispatcher",
      );
      const dsDeleted = t.find(
        (x) => x.resource === "daemonsets" && x.kind === "deleted" && x.name === "kata-deploy",
      );
      const dsPodsDeleted = t.filter(
        (x) =>
          x.resource === "pods" &&
          x.kind === "deleted" &&
          x.name.startsWith("kata-deploy-") &&
          !x.name.startsWith("kata-deploy-install"),
      );
      assert.ok(dispatcherCreated && dsDeleted);
      assert.ok(dsPodsDeleted.length > 0);
      for (const p of [dsDeleted, ...dsPodsDeleted])
        assert.ok(p.time <= dispatcherCreated.time, `${p.resource}/${p.name} went before the dispatcher`);
      assert.equal(
        r.sim.list("pods", { namespace: RELEASE.namespace, labelSelector: "name=kata-deploy" }).length,
        0,
      );
      assert.ok(
        decodeResults(outs.results).some(
          (x) => x.outcome === "succeeded" && x.job?.startsWith("kata-deploy-install-"),
        ),
      );
    });
  });

  describe("Jobs whose TTL is shorter than the waiter's reaction", () => {
    let r: Release;
    before(async () => {
      r = await startRelease({
        // ttlSecondsAfterFinished 600 simulated seconds = 30 ms real at this time scale.
        sim: { nodes: 16, seed: 31, failRate: 0.25, timeScale: 20_000, jobDurationMs: 60_000 },
        values: { job: { ttlSecondsAfterFinished: 600 } },
        rollout: { timeoutSeconds: 240 },
      });
    });
    after(async () => r?.close());

    it("captures every outcome before the TTL removes the Job, and refresh keeps them once all Jobs are gone", async () => {
      const failure = await expectInitFailure(rolloutProvider.create(r.inputs));
      const outs = failure.properties as unknown as RolloutOutputs;
      const truth = simJobOutcomes(r.sim, INSTALL_OWNER);
      const mine = byNode(decodeResults(outs.results));
      assert.equal(mine.size, truth.size);
      for (const [node, t] of truth)
        assert.equal(mine.get(node)?.outcome, t.outcome === "deleted" ? "?" : t.outcome, node);
      await r.sim.waitFor(
        () =>
          r.sim.list("jobs", {
            namespace: RELEASE.namespace,
            labelSelector: `kata-deploy-job-dispatcher/owner=${INSTALL_OWNER}`,
          }).length === 0,
        10_000,
      );
      const read = (await rolloutProvider.read("kata-system/kata-deploy", outs)).props as RolloutOutputs;
      assert.equal(read.results, outs.results);
    });
  });
});
