// The Rollout's lifecycle as the engine drives it — Check before every Create/Update, Diff, Update, Read (refresh),
// Delete (destroy) — over gRPC, against kube-sim, run once per host: the package's plugin (plugin.test.ts) and
// @pulumi/pulumi's dynamic-provider host with the serialized provider (dynamicHost.test.ts). The inputs travel as
// the engine sends them (the connection a Pulumi secret where the host accepts secrets; `__provider` for the dynamic
// host), the outputs come back through protobuf and are sent again as olds. Ground truth: kube-sim's audit log.
import assert from "node:assert/strict";
import { decodeResults } from "../../rollout/compact";
import type { RolloutInputs } from "../../rollout/types";
import {
  INSTALL_OWNER,
  RELEASE,
  byNode,
  simJobOutcomes,
  startRelease,
  type Release,
} from "../rollout/simHarness";
import { isSecret, type ProviderClient } from "./harness";

export interface LifecycleHost {
  /** The client of the running host (available once the host's suite `before` ran). */
  client(): ProviderClient;
  urn(name: string): string;
  /** The inputs as the engine sends them to this host. */
  wire(inputs: RolloutInputs): Promise<Record<string, unknown>>;
  /** The host accepts secrets (Configure): the connection stays a Pulumi secret through Check and in the outputs. */
  secrets: boolean;
}

type Props = Record<string, unknown>;

const ID = `${RELEASE.namespace}/kata-deploy`;
const INSTALL_DISPATCHER = "kata-deploy-install-dispatcher";

function createsOf(r: Release, name: string): number {
  return r.sim.audit.transitions("jobs").filter((t) => t.kind === "created" && t.name === name).length;
}

function createdJobNames(r: Release): string[] {
  return r.sim.audit
    .transitions("jobs")
    .filter((t) => t.kind === "created")
    .map((t) => t.name);
}

/** A Ready linux node that the chart's default selection (not control plane) picks. */
export function addWorker(r: Pick<Release, "sim">, name: string): void {
  r.sim.create("nodes", {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, labels: { "kubernetes.io/os": "linux" } },
    spec: {},
    status: {
      conditions: [{ type: "Ready", status: "True" }],
      nodeInfo: { containerRuntimeVersion: "containerd://2.1.5", machineID: name, architecture: "amd64" },
    },
  });
}

/** Defines the suite; call inside the host's `describe` (after its `before` starts the host). */
export function rolloutLifecycleSuite(host: LifecycleHost): void {
  describe("the Rollout's lifecycle through the host: re-run rule, drift, refresh, destroy (kube-sim)", () => {
    let r: Release;
    let outs: Props;
    /** The inputs of the last successful step: what the engine sends to Check as olds. */
    let oldInputs: Props = {};
    const urn = () => host.urn("lifecycle");
    /** Check, then the checked inputs, as the engine's step executor does before Diff/Create/Update. */
    const checked = async (inputs: RolloutInputs): Promise<Props> => {
      const c = await host.client().check(urn(), oldInputs, await host.wire(inputs));
      assert.deepEqual(c.failures, []);
      return c.inputs;
    };
    /** A step succeeded: its outputs and inputs are the state now. */
    const recorded = (properties: Props, inputs: Props) => {
      outs = properties;
      oldInputs = inputs;
    };
    before(async () => {
      r = await startRelease({
        sim: { nodes: 24, controlPlane: 1, seed: 5, timeScale: 20_000, jobDurationMs: 60_000 },
        values: { job: { parallelism: 10, ttlSecondsAfterFinished: 50_000_000 } },
        rollout: { timeoutSeconds: 240 },
      });
    });
    after(async () => r?.close());

    it("Check rejects a bad field by name; Check → Create installs every selected node with the documented outputs", async () => {
      const bad = await host.client().check(urn(), {}, { ...(await host.wire(r.inputs)), mode: "bogus" });
      assert.deepEqual(
        bad.failures.map((f) => f.property),
        ["mode"],
      );
      const news = await checked(r.inputs);
      assert.equal(isSecret(news.connection), host.secrets, "checked inputs: the connection as it was sent");
      const created = await host.client().create(urn(), news);
      assert.equal(created.id, ID);
      assert.equal(isSecret(created.properties.connection), host.secrets, "the connection output");
      recorded(created.properties, news);
      const truth = simJobOutcomes(r.sim, INSTALL_OWNER);
      assert.equal(truth.size, 23);
      const summary = outs.summary as { total: number; succeeded: number };
      assert.equal(summary.total, 23);
      assert.equal(summary.succeeded, 23);
      assert.deepEqual(
        decodeResults(outs.results as string).map((x) => [x.node, x.job, x.outcome]),
        [...truth].sort(([a], [b]) => (a < b ? -1 : 1)).map(([node, t]) => [node, t.job, t.outcome]),
      );
      assert.match(String(outs.runId), /^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{8}-[0-9a-f]{16}$/);
    });

    it("chart 4.1.0 and later: Check refuses a change of the mode or the suffix, naming both values; 4.0.0 does not", async () => {
      const v41 = { ...r.inputs, identityImmutable: true };
      const refused = async (news: RolloutInputs) =>
        (await host.client().check(urn(), await host.wire(v41), await host.wire(news))).failures;
      const mode = await refused({
        ...v41,
        mode: "daemonset",
        daemonSet: { name: v41.daemonSetName, podSelector: { name: v41.daemonSetName } },
      });
      assert.deepEqual(
        mode.map((f) => f.property),
        ["mode"],
      );
      assert.match(
        mode[0].reason,
        /deploymentMode is immutable .*it was "job", now "daemonset"\. Keep "job", or destroy/,
      );
      const suffix = await refused({ ...v41, daemonSetName: "kata-deploy-blue" });
      assert.deepEqual(
        suffix.map((f) => f.property),
        ["daemonSetName"],
      );
      assert.match(suffix[0].reason, /multiInstallSuffix is immutable .*it was "", now "blue"/);
      const allowed = await host
        .client()
        .check(
          urn(),
          await host.wire(r.inputs),
          await host.wire({ ...r.inputs, daemonSetName: "kata-deploy-blue" }),
        );
      assert.deepEqual(
        allowed.failures,
        [],
        "chart 4.0.0 has no such guard: the rollout is replaced instead",
      );
    });

    it("no re-run without a run-key change: Diff is empty and Update keeps the recorded run", async () => {
      const before = createsOf(r, INSTALL_DISPATCHER);
      assert.equal(await host.client().diff(urn(), ID, outs, await checked(r.inputs)), "none");
      const news = await checked({ ...r.inputs, timeoutSeconds: 241 });
      assert.equal(await host.client().diff(urn(), ID, outs, news), "some", "a setting changed");
      const updated = await host.client().update(urn(), ID, outs, news);
      assert.equal(createsOf(r, INSTALL_DISPATCHER), before, "no dispatcher Job created");
      assert.equal(updated.results, outs.results);
      assert.equal(updated.runId, outs.runId);
      assert.equal(updated.timeoutSeconds, 241);
      recorded(updated, news);
      r.inputs = { ...r.inputs, timeoutSeconds: 241 };
    });

    it("a new namespace, release name or suffix answers replace, old one deleted first (its cleanup, then the new install)", async () => {
      const suffixed = {
        daemonSetName: `${r.inputs.daemonSetName}-b`,
        installDispatcherJobName: r.inputs.installDispatcherJobName.replace(/-install-/, "-b-install-"),
      };
      const cases: [Partial<RolloutInputs>, string[]][] = [
        [{ namespace: "kata-elsewhere" }, ["namespace"]],
        [{ releaseName: "kata-2" }, ["releaseName"]],
        [suffixed, ["daemonSetName", "installDispatcherJobName"]],
      ];
      for (const [change, replaces] of cases) {
        const answer = await host
          .client()
          .diffResponse(urn(), ID, outs, await checked({ ...r.inputs, ...change }));
        assert.deepEqual(
          answer,
          { changes: "some", replaces, deleteBeforeReplace: true },
          JSON.stringify(change),
        );
      }
    });

    it("re-runs when the run key changes (rerunToken): the old hook Job is replaced, per-node Jobs recreated", async () => {
      // What a new rerunToken does to the inputs (the token is part of the run key, and forces every node).
      const inputs = { ...r.inputs, rerunToken: "rerun", runKey: `${r.inputs.runKey}-rerun` };
      const news = await checked(inputs);
      assert.equal(await host.client().diff(urn(), ID, outs, news), "some");
      const before = createsOf(r, INSTALL_DISPATCHER);
      const jobsBefore = createdJobNames(r).length;
      const updated = await host.client().update(urn(), ID, outs, news);
      assert.equal(createsOf(r, INSTALL_DISPATCHER), before + 1);
      assert.equal(createdJobNames(r).length - jobsBefore, 1 + 23, "one dispatcher and one Job per node");
      assert.equal(updated.lastRunKey, inputs.runKey);
      assert.notEqual(updated.runId, outs.runId);
      recorded(updated, news);
      r.inputs = inputs;
    });

    it("drift: a new matching node makes Diff propose an update; the Update installs only that node", async () => {
      addWorker(r, "late-joiner");
      const off = { ...r.inputs, healDrift: false };
      assert.equal(
        await host.client().diff(urn(), ID, { ...outs, healDrift: false }, await checked(off)),
        "none",
        "switchable",
      );
      const news = await checked(r.inputs);
      assert.equal(await host.client().diff(urn(), ID, outs, news), "some");
      const jobsBefore = createdJobNames(r).length;
      const updated = await host.client().update(urn(), ID, outs, news);
      assert.deepEqual(createdJobNames(r).slice(jobsBefore).sort(), [
        INSTALL_DISPATCHER,
        "kata-deploy-install-late-joiner",
      ]);
      const dispatcher = r.sim.get("jobs", RELEASE.namespace, INSTALL_DISPATCHER) as unknown as {
        spec: { template: { spec: { containers: { command: string[] }[] } } };
      };
      assert.equal(dispatcher.spec.template.spec.containers[0].command.at(-1), "--nodes=late-joiner");
      const results = decodeResults(updated.results as string);
      assert.equal(results.length, 24);
      assert.equal(byNode(results).get("late-joiner")?.outcome, "succeeded");
      assert.equal((updated.summary as { succeeded: number }).succeeded, 24);
      assert.equal(await host.client().diff(urn(), ID, updated, news), "none", "healed");
      recorded(updated, news);
    });

    it("Read (refresh) keeps recorded results for Jobs that are gone, and re-reads live ones", async () => {
      // The heal run replaced the hook Job, and garbage collection took the per-node Jobs it owned (as after a TTL):
      // only late-joiner's Job is left. Make it tell a different story, as if it had been re-run by hand and failed.
      const all = r.sim.list("jobs", {
        namespace: RELEASE.namespace,
        labelSelector: `kata-deploy-job-dispatcher/owner=${INSTALL_OWNER}`,
      });
      assert.deepEqual(
        all.map((j) => j.metadata.name),
        ["kata-deploy-install-late-joiner"],
      );
      const at = new Date(r.sim.now()).toISOString().replace(/\.\d+Z$/, "Z");
      r.sim.patch("jobs", RELEASE.namespace, "kata-deploy-install-late-joiner", {
        status: {
          succeeded: 0,
          failed: 1,
          completionTime: null,
          conditions: [
            {
              type: "Failed",
              status: "True",
              reason: "DeadlineExceeded",
              message: "Job was active longer than specified deadline",
              lastTransitionTime: at,
            },
          ],
        },
      });
      const read = await host.client().read(urn(), ID, outs);
      assert.equal(read.id, ID);
      const before = byNode(decodeResults(outs.results as string));
      const after = byNode(decodeResults(read.properties.results as string));
      assert.equal(after.size, 24);
      for (const [node, result] of before) {
        if (node !== "late-joiner")
          assert.deepEqual(after.get(node), result, `${node}: its Job is gone, its recorded result stays`);
      }
      assert.equal(after.get("late-joiner")?.outcome, "failed", "a live Job is re-read");
      assert.equal(after.get("late-joiner")?.reason, "DeadlineExceeded");
      assert.equal((read.properties.summary as { failed: number }).failed, 1);
    });

    it("Delete (destroy) runs the cleanup dispatcher and removes its hook Job", async () => {
      const before = createsOf(r, "kata-deploy-cleanup-dispatcher");
      await host.client().delete(urn(), ID, { ...outs, cleanupOnDestroy: true });
      assert.equal(createsOf(r, "kata-deploy-cleanup-dispatcher"), before + 1);
      assert.equal(r.sim.get("jobs", RELEASE.namespace, "kata-deploy-cleanup-dispatcher"), undefined);
    });
  });
}
