// The rollout survives its dispatcher, and two rollouts of one release never delete each other's work (issue #17
// item 3). Ground truth is the simulator's audit log: every per-node Job ever created, how it ended, and how many
// ran at once.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { decodeResults } from "../../rollout/compact";
import { rolloutProvider as directProvider } from "../../rollout/provider";
import type { RolloutOutputs } from "../../rollout/types";
import type { RunningSimulator } from "../../sim";
import type { RolloutProvider } from "./serialized";
import {
  INSTALL_DISPATCHER_JOB as DISPATCHER_JOB,
  INSTALL_OWNER,
  RELEASE,
  deployRelease,
  perNodeJobsCreated,
  runningDispatcherPod,
  startRelease,
  type Release,
} from "./simHarness";

const rolloutProvider = directProvider as Required<RolloutProvider>;

/**
 * Every node has exactly one Job of the owner, and it succeeded; never two at once on a node; no per-node Job was
 * deleted while it ran; never more than `parallelism` in flight.
 */
export function assertEveryNodeOnce(
  sim: RunningSimulator,
  nodes: readonly string[],
  parallelism: number,
): void {
  const byNode = sim.audit.jobsByNode();
  for (const node of nodes) {
    const jobs = (byNode[node]?.jobs ?? []).filter((j) => j.owner === INSTALL_OWNER);
    assert.deepEqual(
      jobs.map((j) => j.outcome),
      ["succeeded"],
      `node ${node}: ${JSON.stringify(jobs)}`,
    );
    assert.ok((byNode[node]?.maxConcurrentActive ?? 0) <= 1, `node ${node} ran two Jobs at once`);
  }
  const peak = sim.audit.peakActiveJobsByOwner()[INSTALL_OWNER] ?? 0;
  assert.ok(peak <= parallelism, `peak in flight ${peak} > P=${parallelism}`);
}

/** Captures the rollout's log lines (stderr) while `fn` runs. */
async function capturingLog<T>(fn: () => Promise<T>): Promise<{ value: T; lines: string[] }> {
  const saved = process.env.KATA_ROLLOUT_LOG;
  const write = process.stderr.write.bind(process.stderr);
  const lines: string[] = [];
  process.env.KATA_ROLLOUT_LOG = "";
  process.stderr.write = (chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  };
  try {
    return { value: await fn(), lines };
  } finally {
    process.stderr.write = write;
    process.env.KATA_ROLLOUT_LOG = saved;
  }
}

/**
 * Kill the dispatcher's process as the kernel's OOM killer would (SIGKILL): its pod fails (exit 137) and stays, unlike
 * a deleted pod. kube-sim runs executed pods as children of this process, in a scratch folder named kube-sim-pod-*.
 */
function killDispatcherProcess(): boolean {
  const children = execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(process.pid)], {
    encoding: "utf8",
  });
  const pid = children
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l.includes("kube-sim-pod-"))
    ?.split(/\s+/)[0];
  if (!pid) return false;
  process.kill(Number(pid), "SIGKILL");
  return true;
}

/** Pods of the dispatcher's name that belong to no live dispatcher Job (a replaced one's, orphaned by its delete). */
function strayDispatcherPods(sim: RunningSimulator): string[] {
  const live = sim.get("jobs", RELEASE.namespace, DISPATCHER_JOB)?.metadata.uid;
  return sim
    .list("pods", {
      namespace: RELEASE.namespace,
      labelSelector: `batch.kubernetes.io/job-name=${DISPATCHER_JOB}`,
    })
    .filter((p) => p.metadata.labels?.["batch.kubernetes.io/controller-uid"] !== live)
    .map((p) => `${p.metadata.name} (${String(p.status?.phase)})`);
}

describe("the rollout survives its dispatcher; concurrent rollouts of one release (simulator)", function () {
  // Bounds for a busy machine; each run takes a few seconds on an idle one.
  this.timeout(180_000);

  describe("the dispatcher pod killed twice mid-run", () => {
    const P = 4;
    let r: Release;
    let outs: RolloutOutputs;
    let lines: string[] = [];
    const kills: number[] = [];
    before(async () => {
      process.env.KATA_ROLLOUT_LOG = "quiet";
      r = await startRelease({
        sim: { nodes: 24, seed: 31, timeScale: 1000, jobDurationMs: 200_000 },
        values: { job: { parallelism: P, ttlSecondsAfterFinished: 50_000_000 } },
        rollout: { timeoutSeconds: 150 },
      });
      const run = capturingLog(() => rolloutProvider.create(r.inputs));
      for (const threshold of [4, 12]) {
        await r.sim.waitFor(
          () => perNodeJobsCreated(r.sim) >= threshold && !!runningDispatcherPod(r.sim),
          60_000,
        );
        kills.push(perNodeJobsCreated(r.sim));
        r.sim.delete("pods", RELEASE.namespace, runningDispatcherPod(r.sim) ?? "");
      }
      const done = await run;
      outs = done.value.outs as RolloutOutputs;
      lines = done.lines;
    });
    after(async () => r?.close());

    it("the same create succeeds on every node, with exactly one successful Job per node and never more than P", () => {
      const results = decodeResults(outs.results);
      assert.equal(results.length, 24);
      assert.deepEqual(
        results.filter((x) => x.outcome !== "succeeded").map((x) => `${x.node}: ${x.reason}`),
        [],
      );
      assertEveryNodeOnce(
        r.sim,
        results.map((x) => x.node),
        P,
      );
      assert.ok(
        kills.every((k) => k < 24),
        `both kills landed mid-run (${kills.join(", ")} Jobs created)`,
      );
    });

    it("replaced the dispatcher Job twice, orphaning (never deleting) the per-node Jobs, and says so", () => {
      const created = r.sim.audit
        .transitions("jobs")
        .filter((t) => t.kind === "created" && t.name === DISPATCHER_JOB).length;
      assert.equal(created, 3, "the dispatcher Job was created once and replaced twice");
      const deletedPerNode = Object.values(r.sim.audit.jobsByNode())
        .flatMap((x) => x.jobs)
        .filter((j) => j.owner === INSTALL_OWNER && j.outcome === "deleted");
      assert.deepEqual(deletedPerNode, []);
      assert.equal(
        lines.filter((l) => /install: dispatcher replaced \(attempt [12]\)/.test(l)).length,
        2,
        lines.join(""),
      );
    });

    it("leaves no pod of a replaced dispatcher behind", async () => {
      await r.sim.waitFor(() => strayDispatcherPods(r.sim).length === 0, 30_000).catch(() => undefined);
      assert.deepEqual(strayDispatcherPods(r.sim), [], "pods of replaced dispatcher Jobs");
    });
  });

  describe("job.ttlSecondsAfterFinished: 0 and the dispatcher pod killed twice mid-run", () => {
    // TTL 0 removes the failed dispatcher Job at once, and garbage collection then takes its per-node Jobs, running ones
    // included, before the rollout can orphan them: no success may turn into a failure, no outcome may be lost.
    const P = 4;
    let r: Release;
    let outs: RolloutOutputs;
    const kills: number[] = [];
    before(async () => {
      process.env.KATA_ROLLOUT_LOG = "quiet";
      r = await startRelease({
        sim: { nodes: 24, seed: 37, timeScale: 1000, jobDurationMs: 200_000 },
        values: { job: { parallelism: P, ttlSecondsAfterFinished: 0 } },
        rollout: { timeoutSeconds: 150 },
      });
      const run = rolloutProvider.create(r.inputs);
      run.catch(() => undefined);
      for (const threshold of [4, 12]) {
        await r.sim.waitFor(
          () => perNodeJobsCreated(r.sim) >= threshold && !!runningDispatcherPod(r.sim),
          60_000,
        );
        kills.push(perNodeJobsCreated(r.sim));
        r.sim.delete("pods", RELEASE.namespace, runningDispatcherPod(r.sim) ?? "");
      }
      outs = (await run).outs as RolloutOutputs;
    });
    after(async () => r?.close());

    it("the same create succeeds on every node: each has one successful Job, none failed, none reported unknown", () => {
      const results = decodeResults(outs.results);
      assert.equal(results.length, 24);
      assert.deepEqual(
        results.filter((x) => x.outcome !== "succeeded").map((x) => `${x.node}: ${x.outcome} ${x.reason}`),
        [],
      );
      assert.equal(outs.summary.unknown ?? 0, 0);
      assert.ok(
        kills.every((k) => k < 24),
        `both kills landed mid-run (${kills.join(", ")} Jobs created)`,
      );
      // Ground truth: per node, exactly one Job ran to the end and it succeeded; a Job garbage collection took while
      // it ran (its dispatcher Job gone by TTL) is the only other kind; never two at once; never more than P.
      const byNode = r.sim.audit.jobsByNode();
      let collected = 0;
      for (const x of results) {
        const jobs = (byNode[x.node]?.jobs ?? []).filter((j) => j.owner === INSTALL_OWNER);
        const finished = jobs.filter((j) => j.outcome !== "deleted");
        assert.deepEqual(
          finished.map((j) => j.outcome),
          ["succeeded"],
          `node ${x.node}: ${JSON.stringify(jobs)}`,
        );
        collected += jobs.length - finished.length;
        assert.ok((byNode[x.node]?.maxConcurrentActive ?? 0) <= 1, `node ${x.node} ran two Jobs at once`);
      }
      const peak = r.sim.audit.peakActiveJobsByOwner()[INSTALL_OWNER] ?? 0;
      assert.ok(peak <= P, `peak in flight ${peak} > P=${P}`);
      console.log(
        `      TTL 0, 2 kills: 24/24 succeeded; ${collected} per-node Job(s) taken mid-install by garbage collection and run again`,
      );
    });
  });

  describe("the dispatcher's process killed twice (SIGKILL, as an OOM kill): its failed pods stay behind", () => {
    const P = 4;
    let r: Release;
    let outs: RolloutOutputs;
    let lines: string[] = [];
    before(async () => {
      process.env.KATA_ROLLOUT_LOG = "quiet";
      r = await startRelease({
        sim: { nodes: 24, seed: 43, timeScale: 1000, jobDurationMs: 200_000 },
        values: { job: { parallelism: P, ttlSecondsAfterFinished: 50_000_000 } },
        rollout: { timeoutSeconds: 150 },
      });
      const run = capturingLog(() => rolloutProvider.create(r.inputs));
      for (const threshold of [4, 12]) {
        await r.sim.waitFor(
          () => perNodeJobsCreated(r.sim) >= threshold && !!runningDispatcherPod(r.sim),
          60_000,
        );
        assert.ok(killDispatcherProcess(), "found the dispatcher's process");
        // The next kill waits for the replacement's pod, not this one's last breath.
        await r.sim.waitFor(() => !runningDispatcherPod(r.sim), 60_000);
      }
      const done = await run;
      outs = done.value.outs as RolloutOutputs;
      lines = done.lines;
    });
    after(async () => r?.close());

    it("succeeds on every node, and leaves no pod of a replaced dispatcher behind (the audit shows it deleted)", async () => {
      const results = decodeResults(outs.results);
      assert.deepEqual(
        results.filter((x) => x.outcome !== "succeeded").map((x) => `${x.node}: ${x.reason}`),
        [],
      );
      assertEveryNodeOnce(
        r.sim,
        results.map((x) => x.node),
        P,
      );
      assert.equal(
        lines.filter((l) => /install: dispatcher replaced \(attempt [12]\)/.test(l)).length,
        2,
        lines.join(""),
      );
      await r.sim.waitFor(() => strayDispatcherPods(r.sim).length === 0, 30_000).catch(() => undefined);
      assert.deepEqual(strayDispatcherPods(r.sim), [], "pods of replaced dispatcher Jobs");
      const podDeletes = r.sim.audit
        .requests({ verb: "delete", resource: "pods" })
        .filter((q) => q.code === 200);
      assert.equal(podDeletes.length, 2, "the rollout deleted each failed pod of a replaced dispatcher");
    });
  });

  describe("two rollouts of one release at once", () => {
    const P = 3;
    let r: Release;

    beforeEach(async () => {
      process.env.KATA_ROLLOUT_LOG = "quiet";
      r = await startRelease({
        sim: { nodes: 12, seed: 41, timeScale: 1000, jobDurationMs: 200_000 },
        values: { job: { parallelism: P, ttlSecondsAfterFinished: 50_000_000 } },
        rollout: { timeoutSeconds: 150 },
      });
    });
    afterEach(async () => r?.close());

    it("same inputs: the second adopts the first's dispatcher and says so; both report the one Job per node", async () => {
      const first = rolloutProvider.create(r.inputs);
      await r.sim.waitFor(() => perNodeJobsCreated(r.sim) >= 2, 60_000);
      const second = await capturingLog(() => rolloutProvider.create(r.inputs));
      const a = decodeResults(((await first).outs as RolloutOutputs).results);
      const b = decodeResults((second.value.outs as RolloutOutputs).results);
      assert.ok(
        second.lines.some((l) => /adopted the running dispatcher Job/.test(l)),
        second.lines.join(""),
      );
      assert.deepEqual(b, a);
      assertEveryNodeOnce(
        r.sim,
        a.map((x) => x.node),
        P,
      );
    });

    it("new inputs: the second waits for the first to end instead of deleting its work, then runs its own", async () => {
      const first = rolloutProvider.create(r.inputs);
      await r.sim.waitFor(() => perNodeJobsCreated(r.sim) >= 2, 60_000);
      const next = await deployRelease(r.sim, {
        values: { job: { parallelism: P, ttlSecondsAfterFinished: 50_000_000 } },
        rollout: { timeoutSeconds: 150 },
        rerunToken: "second",
      });
      assert.notEqual(next.inputs.runKey, r.inputs.runKey);
      const second = await capturingLog(() => rolloutProvider.create(next.inputs));
      const a = decodeResults(((await first).outs as RolloutOutputs).results);
      const b = decodeResults((second.value.outs as RolloutOutputs).results);
      assert.ok(
        second.lines.some((l) => /of another rollout .* is running; waiting for it to end/.test(l)),
        second.lines.join(""),
      );
      assert.ok(a.length === 12 && a.every((x) => x.outcome === "succeeded"));
      assert.ok(b.length === 12 && b.every((x) => x.outcome === "succeeded"));
      // Per node: the first run's Job succeeded before the second run removed it; the second's succeeded too. No
      // per-node Job was deleted while it ran, and the two runs never overlapped on a node.
      const byNode = r.sim.audit.jobsByNode();
      for (const x of a) {
        const jobs = (byNode[x.node]?.jobs ?? []).filter((j) => j.owner === INSTALL_OWNER);
        assert.deepEqual(
          jobs.map((j) => j.outcome),
          ["succeeded", "succeeded"],
          `node ${x.node}: ${JSON.stringify(jobs)}`,
        );
        assert.ok(jobs[1].createdAt >= (jobs[0].finishedAt ?? Infinity), `node ${x.node}: runs overlapped`);
      }
      const peak = r.sim.audit.peakActiveJobsByOwner()[INSTALL_OWNER] ?? 0;
      assert.ok(peak <= P, `peak ${peak}`);
    });
  });
});
