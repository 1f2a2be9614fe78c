// Results that stay true under a hostile cluster: timeouts, Jobs removed by their TTL while watches break, stalls.
// Ground truth is the simulator's audit log and store, never the rollout's own bookkeeping.
import assert from "node:assert/strict";
import { decodeResults } from "../../rollout/compact";
import { rolloutProvider as directProvider } from "../../rollout/provider";
import type { RolloutProvider } from "./serialized";
import { nodeRecordKeys } from "../../kube/jobStatus";
import type { RolloutOutputs } from "../../rollout/types";
import {
  INSTALL_OWNER,
  RELEASE,
  byNode,
  expectInitFailure,
  simJobOutcomes,
  startRelease,
  type Release,
} from "./simHarness";

process.env.KATA_ROLLOUT_LOG = process.env.KATA_ROLLOUT_LOG ?? "quiet";

const DISPATCHER_SA = `system:serviceaccount:${RELEASE.namespace}:kata-deploy-dispatcher-sa`;

const rolloutProvider = directProvider as Required<RolloutProvider>;

const linux = (name: string, machineID: string) => ({
  name,
  labels: { "kubernetes.io/os": "linux" },
  containerRuntimeVersion: "containerd://2.1.5",
  machineID,
});

describe("rollout results under timeouts, TTL 0 and broken watches (simulator)", function () {
  // Bounds, not expectations: a 200-node run takes ~25 s on an idle machine and several times that on a busy one.
  this.timeout(700_000);

  describe("a timeout while a Job hangs", () => {
    let r: Release;
    before(async () => {
      r = await startRelease({
        sim: {
          seed: 5,
          timeScale: 20_000,
          jobDurationMs: 60_000,
          fleet: {
            nodes: [
              linux("ok-1", "m1"),
              { ...linux("hangs", "m2"), outcome: { kind: "hang" } },
              {
                ...linux("gpu-1", "m3"),
                taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }],
              },
            ],
          },
        },
        values: { job: { ttlSecondsAfterFinished: 50_000_000 } },
        rollout: { timeoutSeconds: 5, stuckGraceSeconds: 3600 },
      });
    });
    after(async () => r?.close());

    it("keeps a tainted node skipped (Tainted), not failed: Timeout; the audit shows no Job was ever made for it", async () => {
      const failure = await expectInitFailure(rolloutProvider.create(r.inputs));
      const results = byNode(decodeResults(failure.properties.results));
      const jobs = r.sim.audit.jobsByNode();
      assert.equal(jobs["gpu-1"]?.jobs.length ?? 0, 0, "the dispatcher never dispatched to the tainted node");
      assert.equal(results.get("gpu-1")?.outcome, "skipped");
      assert.equal(results.get("gpu-1")?.reason, "Tainted");
      // ok-1's Job is judged by what the audit says it did by the timeout (under load it may still be running).
      const ok1 = jobs["ok-1"]?.jobs.find((j) => j.owner === INSTALL_OWNER)?.outcome;
      assert.equal(results.get("ok-1")?.outcome, ok1 === "succeeded" ? "succeeded" : "failed");
      // "hangs" never finishes: its Job is running, or (on a busy machine) was not dispatched before the timeout.
      const hangs = jobs["hangs"]?.jobs.find((j) => j.owner === INSTALL_OWNER)?.outcome;
      assert.ok(hangs === "active" || hangs === undefined, `hangs: ${hangs}`);
      assert.equal(results.get("hangs")?.reason, "Timeout");
      assert.doesNotMatch(failure.message, /gpu-1/, "the skipped node is not listed among failures");
    });
  });

  describe("job.ttlSecondsAfterFinished: 0 with every watch connection reset each second", () => {
    let r: Release;
    let outs: RolloutOutputs;
    let message = "";
    let elapsedMs = 0;
    before(async () => {
      const started = Date.now();
      r = await startRelease({
        sim: {
          nodes: 200,
          seed: 17,
          failRate: 0.05,
          timeScale: 20_000,
          jobDurationMs: 60_000,
          faults: { dropWatchEverySeconds: 1 },
        },
        values: { job: { parallelism: 10, ttlSecondsAfterFinished: 0 } },
        // 46 s at load 16 on two cores, yet a run at load 12 once timed out at 300 s: the bound is wide.
        rollout: { timeoutSeconds: 600 },
      });
      const failure = await expectInitFailure(rolloutProvider.create(r.inputs));
      outs = failure.properties as unknown as RolloutOutputs;
      message = failure.message;
      elapsedMs = Date.now() - started;
    });
    after(async () => r?.close());

    it("reports every node exactly as the simulator saw its Job end: 0 false failures, 0 unknown", () => {
      const drops = r.sim.faults.injected()["watch-drop"] ?? 0;
      assert.ok(drops >= 5, `watch connections were reset (${drops})`);
      const truth = simJobOutcomes(r.sim, INSTALL_OWNER);
      assert.equal(truth.size, 200, "one Job per node in the audit");
      const mine = byNode(decodeResults(outs.results));
      const wrong = [...truth].filter(([node, t]) => mine.get(node)?.outcome !== t.outcome);
      assert.deepEqual(
        wrong.map(
          ([node, t]) =>
            `${node}: audit ${t.outcome}, rollout ${mine.get(node)?.outcome} (${mine.get(node)?.reason ?? ""})`,
        ),
        [],
        `rollout ended after ${elapsedMs} ms: ${message.slice(0, 400)}`,
      );
      assert.ok(
        [...truth.values()].some((t) => t.outcome === "failed"),
        "the fleet has real failures too",
      );
      assert.equal(
        r.sim.list("jobs", {
          namespace: RELEASE.namespace,
          labelSelector: `kata-deploy-job-dispatcher/owner=${INSTALL_OWNER}`,
        }).length,
        0,
        "TTL 0 removed every per-node Job",
      );
      assert.doesNotMatch(message, /JobDeleted|unknown/);
      console.log(
        `      200 nodes, TTL 0, ${drops} watch resets: ${outs.summary.succeeded} succeeded, ${outs.summary.failed} failed (audit agrees on all)`,
      );
    });
  });

  describe("records on the nodes when the watch history is too short to resume (410), dispatcher allowed to record", () => {
    let r: Release;
    let outs: RolloutOutputs;
    before(async () => {
      r = await startRelease({
        sim: {
          nodes: 60,
          seed: 23,
          failRate: 0.1,
          timeScale: 20_000,
          jobDurationMs: 60_000,
          watchHistory: 40,
          faults: { dropWatchEverySeconds: 1 },
        },
        values: { job: { parallelism: 10, ttlSecondsAfterFinished: 0 } },
        // 46 s at load 16 on two cores, yet a run at load 12 once timed out at 300 s: the bound is wide.
        rollout: { timeoutSeconds: 600 },
      });
      const failure = await expectInitFailure(rolloutProvider.create(r.inputs));
      outs = failure.properties as unknown as RolloutOutputs;
    });
    after(async () => r?.close());

    it("what the dispatcher recorded on a Node (label, annotations, Event) is what the audit says its Job did", () => {
      const truth = simJobOutcomes(r.sim, INSTALL_OWNER);
      const keys = nodeRecordKeys();
      const patches = r.sim.audit.requests({ verb: "patch", resource: "nodes", user: DISPATCHER_SA });
      assert.ok(patches.length > 0 && patches.every((p) => p.code === 200), "patched under enforced RBAC");
      const events = r.sim.list("events", { namespace: "default" }) as unknown as {
        involvedObject: { name: string };
        reason: string;
        related?: { name: string };
      }[];
      let recorded = 0;
      for (const [node, t] of truth) {
        const n = r.sim.get("nodes", undefined, node) as unknown as {
          metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
        };
        const label = n.metadata.labels[keys.result];
        if (label === undefined) continue;
        recorded++;
        assert.equal(label, t.outcome, node);
        assert.equal(n.metadata.annotations?.[keys.job], `${RELEASE.namespace}/${t.job}`, node);
        assert.ok(n.metadata.annotations?.[keys.finishedAt], node);
        assert.equal(Boolean(n.metadata.annotations?.[keys.error]), t.outcome === "failed", node);
        const reason = t.outcome === "succeeded" ? "JobSucceeded" : "JobFailed";
        assert.ok(
          events.some(
            (e) => e.involvedObject.name === node && e.reason === reason && e.related?.name === t.job,
          ),
          `${reason} Event for ${node}`,
        );
      }
      assert.equal(recorded, patches.length, "one record per node patch");
    });

    it("never reports a success as a failure; what it reports matches the audit, from Jobs or from the records", () => {
      const truth = simJobOutcomes(r.sim, INSTALL_OWNER);
      const mine = decodeResults(outs.results);
      assert.equal(mine.length, 60);
      for (const m of mine) {
        const t = truth.get(m.node);
        if (m.outcome === "unknown") {
          assert.match(m.reason ?? "", /JobDeleted|NotObserved/);
          continue;
        }
        assert.equal(m.outcome, t?.outcome, m.node);
      }
      const drops = r.sim.faults.injected()["watch-drop"] ?? 0;
      console.log(
        `      60 nodes, TTL 0, watch history 40, ${drops} resets: ${mine.filter((m) => m.outcome !== "unknown").length} outcomes equal to the audit, ${outs.summary.unknown ?? 0} unknown (Job gone unseen by both), 0 false failures`,
      );
    });
  });

  for (const [what, fleet] of [
    [
      "every node cordoned",
      [
        { ...linux("c-1", "m1"), unschedulable: true },
        { ...linux("c-2", "m2"), unschedulable: true },
      ],
    ],
    ["an empty fleet", []],
  ] as const) {
    describe(`a dispatcher that cannot start: ${what}`, () => {
      let r: Release;
      before(async () => {
        r = await startRelease({
          sim: { seed: 3, timeScale: 20_000, fleet: { nodes: [...fleet] } },
          rollout: { timeoutSeconds: 600, stuckGraceSeconds: 3 },
        });
      });
      after(async () => r?.close());

      it("ends within the grace period naming the cause and the fix, and removes the dispatcher Job", async () => {
        const t = Date.now();
        const failure = await expectInitFailure(rolloutProvider.create(r.inputs));
        const seconds = (Date.now() - t) / 1000;
        assert.ok(seconds < 3 + 10, `ended after ${seconds}s (grace 3s, timeout 600s)`);
        assert.match(
          failure.message,
          /dispatcher Job kata-deploy-install-dispatcher cannot run: pod \S+ cannot be scheduled \(Unschedulable\)/,
        );
        assert.match(failure.message, /make a node schedulable/);
        const results = decodeResults(failure.properties.results);
        for (const n of results) {
          assert.equal(n.outcome, "failed");
          assert.equal(n.reason, "NotDispatched");
          assert.match(n.message ?? "", /cannot be scheduled/);
        }
        assert.equal(results.length, fleet.length);
        // Ground truth: the dispatcher pod never ran, no per-node Job was made, and the Job is gone.
        assert.equal(r.sim.executions().length, 0);
        assert.equal(Object.keys(r.sim.audit.jobsByNode()).length, 0);
        await r.sim.waitFor(
          () => !r.sim.get("jobs", RELEASE.namespace, "kata-deploy-install-dispatcher"),
          10_000,
        );
        console.log(`      ${what}: the rollout ended after ${seconds.toFixed(1)}s (grace 3s)`);
      });
    });
  }
});
