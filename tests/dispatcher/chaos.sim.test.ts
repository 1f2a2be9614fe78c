// Chaos and RBAC: API faults, dropped watches, a dispatcher killed and restarted mid-rollout, and exactly the chart
// 4.0.0 dispatcher permissions. The invariants are read from the simulator's audit log.
import { strict as assert } from "node:assert";
import { KubeConfig } from "@kubernetes/client-node";
import { startSimulator } from "../../sim";
import type { FleetNode } from "../../sim/types";
import { chartNames } from "../../chart/names";
import { silentLogger } from "../../dispatcher/log";
import { runDispatcher, type DispatcherOptions, type ResultsDocument } from "../../dispatcher/run";
import {
  assertCoveredExactlyOnce,
  assertResultsMatchTruth,
  createOwnerJob,
  grantChartRbac,
  installTemplate,
  NS,
  OWNER_JOB,
  PREFIX,
  rng,
  worker,
  writeTemplate,
} from "./helpers";

function kubeConfigOf(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

const names = chartNames();

function options(template: string, extra: Partial<DispatcherOptions> = {}): DispatcherOptions {
  return {
    jobTemplate: template,
    namePrefix: PREFIX,
    ownerJobName: OWNER_JOB,
    namespace: NS,
    parallelism: 20,
    stuckAfterSecs: 600,
    ...extra,
  };
}

describe("dispatcher chaos and RBAC against the simulator", function () {
  this.timeout(300_000);

  it("survives 5% API errors, dropped watches and three kills: every node exactly once, never over parallelism", async () => {
    const random = rng(11);
    const fleet: FleetNode[] = Array.from({ length: 400 }, (_, i) =>
      worker(`c-${String(i).padStart(3, "0")}`, {
        kind: "succeed",
        durationMs: 20_000 + Math.floor(random() * 100_000),
      }),
    );
    const sim = await startSimulator({
      fleet: { nodes: fleet },
      timeScale: 3000,
      podStartDelayMs: 500,
      faults: {
        seed: 5,
        rules: [
          { errorRate: 0.05, errorCodes: [500, 429], retryAfterSeconds: 1 },
          // kube-apiserver's flow control answers 429 in plain text; and some connections just die.
          {
            verbs: ["create"],
            resources: ["jobs"],
            errorRate: 0.02,
            errorCodes: [429],
            plainText429: true,
            retryAfterSeconds: 1,
          },
          { resetRate: 0.01 },
        ],
        dropWatchEverySeconds: 2,
      },
    });
    try {
      createOwnerJob(sim);
      // The chart's TTL (600 s) is 0.2 s here. A Job that vanishes before a restarted dispatcher lists it looks
      // like a node never installed, and one that vanishes in a watch gap is reported JobDeleted: both depend on
      // how fast this machine is, not on the dispatcher. This test is about faults and kills, so Jobs outlive it.
      const template = writeTemplate(installTemplate({ ttlSeconds: 50_000_000 }));
      const kubeConfig = kubeConfigOf(sim.kubeconfigPath);
      const killAt = [40, 150, 260].map((n) => n + Math.floor(random() * 40));
      const docs: ResultsDocument[] = [];
      for (const threshold of killAt) {
        const kill = new AbortController();
        const doc = await runDispatcher(options(template), {
          kubeConfig,
          logger: silentLogger,
          killSignal: kill.signal,
          retry: { baseDelayMs: 20, maxDelayMs: 400 },
          onProgress: (p) => {
            if (p.done >= threshold) kill.abort(new Error("killed by the test"));
          },
        });
        docs.push(doc);
        assert.equal(doc.exitCode, 1, "a killed run never reports success");
      }
      const final = await runDispatcher(options(template), {
        kubeConfig,
        logger: silentLogger,
        retry: { baseDelayMs: 20, maxDelayMs: 400 },
      });
      assert.equal(
        final.exitCode,
        0,
        final.error ?? JSON.stringify(final.nodes.filter((n) => n.outcome !== "succeeded").slice(0, 3)),
      );
      assert.equal(final.counts.succeeded, 400);
      assertCoveredExactlyOnce(
        sim,
        fleet.map((n) => n.name),
      );
      assertResultsMatchTruth(sim, final);
      const peak = sim.audit.peakActiveJobsByOwner()[PREFIX];
      assert.ok(peak <= 20, `peak active ${peak} > 20`);
      const injected = sim.faults.injected();
      assert.ok(
        Object.keys(injected).some((k) => k.startsWith("error:")),
        JSON.stringify(injected),
      );
      assert.ok((injected["watch-drop"] ?? 0) > 0, JSON.stringify(injected));
      assert.ok((injected.reset ?? 0) > 0, JSON.stringify(injected));
      // The killed runs really stopped mid-way (each one left work for the next).
      assert.ok(docs.every((d) => d.counts.succeeded < 400));
    } finally {
      await sim.close();
    }
  });

  it("succeeds with exactly chart 4.0.0's dispatcher RBAC, without pods access", async () => {
    const fleet = [
      ...Array.from({ length: 20 }, (_, i) => worker(`p-${i}`)),
      worker("bad", { kind: "fail", failure: { container: "host-check", message: "boom" } }),
    ];
    const sim = await startSimulator({ fleet: { nodes: fleet }, timeScale: 6000, authz: true });
    try {
      createOwnerJob(sim);
      grantChartRbac(sim);
      const kubeConfig = kubeConfigOf(sim.kubeconfigFor(NS, names.dispatcherServiceAccount));
      const doc = await runDispatcher(options(writeTemplate(installTemplate({ backoffLimit: 1 }))), {
        kubeConfig,
        logger: silentLogger,
      });
      assert.equal(doc.exitCode, 1, doc.error);
      assert.equal(doc.counts.succeeded, 20);
      const bad = doc.nodes.find((n) => n.node === "bad");
      assert.equal(bad?.reason, "BackoffLimitExceeded");
      assert.match(bad?.message ?? "", /\[BackoffLimitExceeded\]$/);
      assert.doesNotMatch(bad?.message ?? "", /boom/, "pods are not readable with the chart's RBAC");
      const denied = sim.audit
        .requests()
        .filter((r) => r.user.includes(names.dispatcherServiceAccount) && r.code === 403);
      const record = (r: (typeof denied)[number]) =>
        (r.resource === "nodes" && r.verb === "patch") || (r.resource === "events" && r.verb === "create");
      // Pods are optional; so are the outcome records (node patch, Events in default): each is tried once, then
      // left alone for the run.
      assert.ok(
        denied.every((r) => r.resource === "pods" || record(r)),
        `denied: ${JSON.stringify(denied.filter((r) => r.resource !== "pods").slice(0, 3))}`,
      );
      assert.ok(denied.filter(record).length <= 2, "each kind of record is tried once");
      assert.equal(
        sim.audit.requests({ verb: "get", resource: "nodes" }).length,
        0,
        "nodes are never read by GET",
      );
    } finally {
      await sim.close();
    }
  });

  it("reads failure reasons from pods when the component's extra pods Role is granted", async () => {
    const fleet = [
      worker("q-0"),
      worker("bad", {
        kind: "fail",
        failure: { container: "host-check", exitCode: 3, message: "no usable virtualization backend" },
      }),
    ];
    const sim = await startSimulator({ fleet: { nodes: fleet }, timeScale: 6000, authz: true });
    try {
      createOwnerJob(sim);
      grantChartRbac(sim, { pods: true });
      const kubeConfig = kubeConfigOf(sim.kubeconfigFor(NS, names.dispatcherServiceAccount));
      const doc = await runDispatcher(options(writeTemplate(installTemplate({ backoffLimit: 0 }))), {
        kubeConfig,
        logger: silentLogger,
      });
      const bad = doc.nodes.find((n) => n.node === "bad");
      assert.equal(
        bad?.message,
        "container host-check exited 3: no usable virtualization backend [BackoffLimitExceeded]",
      );
    } finally {
      await sim.close();
    }
  });

  for (const [what, grant, pattern] of [
    [
      "watch on jobs",
      { jobVerbs: ["create", "get", "list", "delete"] },
      /missing permission: watch jobs\.batch in namespace kube-system/,
    ],
    [
      "create on jobs",
      { jobVerbs: ["get", "list", "watch", "delete"] },
      /missing permission: create jobs\.batch in namespace kube-system/,
    ],
    ["list on nodes", { nodeVerbs: ["get"] }, /missing permission: list nodes \(cluster-wide\)/],
    [
      "get on jobs (the owner Job)",
      { jobVerbs: ["create", "list", "watch", "delete"] },
      /missing permission: get jobs\.batch in namespace kube-system/,
    ],
  ] as const) {
    it(`fails with exit 2 naming the missing permission without ${what}`, async () => {
      const sim = await startSimulator({
        fleet: { nodes: [worker("z-0"), worker("z-1")] },
        timeScale: 6000,
        authz: true,
      });
      try {
        createOwnerJob(sim);
        grantChartRbac(sim, grant);
        const kubeConfig = kubeConfigOf(sim.kubeconfigFor(NS, names.dispatcherServiceAccount));
        const doc = await runDispatcher(options(writeTemplate(installTemplate())), {
          kubeConfig,
          logger: silentLogger,
        });
        assert.equal(doc.exitCode, 2, doc.error);
        assert.match(doc.error ?? "", pattern);
        assert.equal(
          sim.list("jobs", { namespace: NS, labelSelector: `kata-deploy-job-dispatcher/owner=${PREFIX}` })
            .length,
          0,
        );
      } finally {
        await sim.close();
      }
    });
  }
});
