// The benchmark's reproduction of the upstream poll algorithm, checked against the simulator's audit log: it must
// pace and poll like upstream (dispatcher-reference.md §2.8) and end like upstream when a Job vanishes (404).
import { strict as assert } from "node:assert";
import { KubeConfig } from "@kubernetes/client-node";
import { runPollDispatcher } from "../../bench/pollDispatcher";
import { clientNodeApi } from "../../dispatcher/kubeApi";
import { ownerValue } from "../../dispatcher/naming";
import { parseJobTemplate } from "../../dispatcher/template";
import { startSimulator } from "../../sim";
import { installTemplate, NS, PREFIX } from "../dispatcher/helpers";

const TIME_SCALE = 1000; // a 120 s Job lasts 120 ms

async function pollRun(opts: { nodes: number; parallelism: number; ttlSeconds: number; pollSimMs: number }) {
  const sim = await startSimulator({ nodes: opts.nodes, timeScale: TIME_SCALE, podStartDelayMs: 0 });
  try {
    const kc = new KubeConfig();
    kc.loadFromFile(sim.kubeconfigPath);
    const results = await runPollDispatcher({
      api: clientNodeApi(kc),
      template: parseJobTemplate(installTemplate({ ttlSeconds: opts.ttlSeconds }), "install-job.yaml"),
      namePrefix: PREFIX,
      namespace: NS,
      parallelism: opts.parallelism,
      pollIntervalMs: opts.pollSimMs / TIME_SCALE,
      readErrorBudgetMs: 300_000 / TIME_SCALE,
    });
    return {
      results,
      byNode: sim.audit.jobsByNode(),
      peak: sim.audit.peakActiveJobsByOwner()[ownerValue(PREFIX)] ?? 0,
      counts: sim.audit.requestCounts(),
    };
  } finally {
    await sim.close();
  }
}

describe("bench: the upstream poll algorithm, reproduced", () => {
  it("runs every node once, never more than P at a time, and learns each outcome by GETting the Job", async () => {
    const { results, byNode, peak, counts } = await pollRun({
      nodes: 24,
      parallelism: 5,
      // The Jobs outlive the run: a 600 s TTL is 600 ms real, which a busy machine's polls can miss (the case the
      // next test makes on purpose).
      ttlSeconds: 50_000_000,
      pollSimMs: 5000,
    });
    assert.equal(results.length, 24);
    assert.deepEqual(
      results.filter((r) => r.outcome !== "succeeded"),
      [],
    );
    assert.equal(Object.keys(byNode).length, 24);
    for (const [node, report] of Object.entries(byNode))
      assert.equal(report.jobs.filter((j) => j.outcome === "succeeded").length, 1, node);
    assert.ok(peak <= 5 && peak >= 1, `peak active ${peak}`);
    assert.equal(counts["create jobs"], 24);
    assert.ok(
      (counts["get jobs"] ?? 0) >= 24,
      `every Job is polled at least once: ${counts["get jobs"]} GETs`,
    );
    assert.equal(counts["watch jobs"] ?? 0, 0, "the upstream algorithm never watches");
  });

  it("fails the node when its Job vanished before a poll saw it finish (TTL race, 404), and still ends", async () => {
    // TTL 0 against a 1,000 s poll (120 s Jobs): every Job is gone by the time it is polled. The poller and the
    // simulator share one event loop, so the Job's end and its TTL deletion (timers due at 120 ms) run before the
    // poll (due at 1 s) however busy the machine is.
    const { results, byNode } = await pollRun({
      nodes: 6,
      parallelism: 3,
      ttlSeconds: 0,
      pollSimMs: 1_000_000,
    });
    assert.equal(results.length, 6);
    for (const r of results) {
      assert.equal(r.outcome, "failed", r.node);
      assert.equal(r.reason, "JobDeleted", r.node);
    }
    // Ground truth: the Jobs did succeed; only the poll could not tell.
    for (const [node, report] of Object.entries(byNode))
      assert.equal(report.jobs.filter((j) => j.outcome === "succeeded").length, 1, node);
  });
});
