// One cluster by construction, and no stored credential the user did not pass (issue #13 items 1 and 7), and
// daemonset mode under the real plugin (item 2). The package's plugin runs as the engine starts it, with KUBECONFIG
// pointing at a second simulator: the "ambient" cluster. The test engine routes every Kubernetes registration as the
// engine does: to the cluster of its provider, the default provider (no provider) being the ambient one; the Rollout
// is run by the plugin (Check, Create or Diff/Update, Delete). Ground truth: each simulator's audit log.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { HELM_TEMPLATE_TOKEN } from "../../components/helmTemplate";
import { offlineHelmTemplate } from "../components/offlineTemplate";
import { KubeConfig } from "@kubernetes/client-node";
import { BUNDLED_DISPATCHER_IMAGE } from "../../chart/dispatcherJobs";
import type { K8sObject } from "../../chart/k8s";
import { decodeResults } from "../../rollout/compact";
import type { ConnectionSpec } from "../../rollout/connection";
import { readInstallPlan } from "../../rollout/installPlan";
import type { RolloutInputs } from "../../rollout/types";
import { startSimulator, type RunningSimulator } from "../../sim";
import type { KubeObject } from "../../sim/types";
import { tempDir } from "../tempDir";
import {
  CLEANUP_OWNER,
  INSTALL_OWNER,
  RELEASE,
  apply,
  deployRelease,
  simJobOutcomes,
  kataLabelledNodes,
} from "../rollout/simHarness";
import {
  afterChart,
  EngineSide,
  ProviderClient,
  initFailure,
  isSecret,
  revealed,
  secret,
  startProvider,
  type ProviderProcess,
  type Registration,
} from "./harness";

const ROLLOUT = "kata-deploy:index:Rollout";
const COMPONENT = "kata-deploy:index:KataDeploy";
const CHART = "kubernetes:helm.sh/v4:Chart";
const K8S_PROVIDER = "pulumi:providers:kubernetes";
const WRITE_VERBS = new Set(["create", "update", "patch", "delete", "deletecollection"]);

/** The plugin's ambient kubeconfig: a file whose content a test may point at another cluster. */
const ambientPath = path.join(tempDir("kata-ambient-"), "kubeconfig");
const engine = new EngineSide();
// The kubernetes provider's helm template invoke (the hooks' render), played by the offline renderer.
engine.onInvoke = (token, args) =>
  token === HELM_TEMPLATE_TOKEN ? offlineHelmTemplate(String(args.jsonOpts)) : undefined;
const started: Promise<ProviderProcess> = engine.start().then((address) =>
  startProvider("package", {
    engineAddress: address,
    startTimeoutMs: 300_000,
    env: { KATA_ROLLOUT_LOG: "", KUBECONFIG: ambientPath },
  }),
);
started.catch(() => undefined);

/** The API server a kubeconfig (document or file) reaches, read with the usual loader. */
function serverOf(kubeconfig: string): string {
  const kc = new KubeConfig();
  if (fs.existsSync(kubeconfig)) kc.loadFromFile(kubeconfig);
  else kc.loadFromString(kubeconfig);
  return String(kc.getCurrentCluster()?.server);
}

function writes(sim: RunningSimulator): string[] {
  return sim.audit
    .requests()
    .filter((r) => WRITE_VERBS.has(r.verb))
    .map((r) => `${r.verb} ${r.resource}/${r.name ?? ""}`);
}

interface RolloutRecord {
  id: string;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
}

describe("one cluster, by construction, and credentials (issue #13 items 1, 7) through the package's plugin", function () {
  this.timeout(300_000);
  let plugin: ProviderProcess;
  let client: ProviderClient;
  /** The cluster the user names (kubeconfig argument). */
  let target: RunningSimulator;
  /** The cluster of the plugin's KUBECONFIG. */
  let ambient: RunningSimulator;
  let sims: RunningSimulator[] = [];
  const byProvider = new Map<string, RunningSimulator>();
  const rollouts = new Map<string, RolloutRecord>();
  /** Rollouts whose Create or Update failed with their outputs kept, by name. */
  /** The error of every Rollout operation that failed, by name. */
  const rolloutErrors = new Map<string, string>();
  const failedRollouts = new Map<string, { reasons: string[]; outputs: Record<string, unknown> }>();
  /** Chart values of the construct in progress (the test engine applies the chart's objects with them). */
  let chartValues: Record<string, unknown> = {};

  const simReaching = (server: string) => {
    const sim = sims.find((s) => s.url === server);
    assert.ok(sim, `no simulator at ${server}`);
    return sim;
  };
  /** The cluster a Kubernetes registration goes to: its provider's, or the default provider's (ambient). */
  const clusterOf = (reg: Registration) => {
    const ref = reg.provider || reg.providers.kubernetes;
    if (!ref) return simReaching(serverOf(fs.readFileSync(ambientPath, "utf8")));
    const sim = byProvider.get(ref);
    assert.ok(sim, `${reg.type} ${reg.name}: provider ${ref} unknown to the test engine`);
    return sim;
  };

  async function runRollout(reg: Registration): Promise<{ id: string; outputs: Record<string, unknown> }> {
    const prior = rollouts.get(reg.urn);
    const checked = await client.check(reg.urn, prior?.inputs ?? {}, reg.object);
    assert.deepEqual(checked.failures, []);
    try {
      if (!prior) {
        const created = await client.create(reg.urn, checked.inputs);
        rollouts.set(reg.urn, { id: created.id, inputs: checked.inputs, outputs: created.properties });
        return { id: created.id, outputs: created.properties };
      }
      const changes = await client.diff(reg.urn, prior.id, prior.outputs, checked.inputs);
      const outputs =
        changes === "none"
          ? prior.outputs
          : await client.update(reg.urn, prior.id, prior.outputs, checked.inputs);
      rollouts.set(reg.urn, { id: prior.id, inputs: checked.inputs, outputs });
      return { id: prior.id, outputs };
    } catch (err) {
      rolloutErrors.set(reg.name, (err as Error).message);
      // Created (or updated) but failed: the engine keeps the outputs, and the registration fails.
      const failed = initFailure(err);
      if (failed) {
        rollouts.set(reg.urn, { id: failed.id, inputs: checked.inputs, outputs: failed.properties });
        failedRollouts.set(reg.name, { reasons: failed.reasons, outputs: failed.properties });
      }
      throw err;
    }
  }

  before(async function () {
    this.timeout(330_000);
    const simOptions = {
      authz: true,
      nodes: 12,
      controlPlane: 1,
      timeScale: 600,
      jobDurationMs: 30_000,
      execute: { nodeImages: [BUNDLED_DISPATCHER_IMAGE], timeoutMs: 120_000 },
    };
    [target, ambient] = await Promise.all([
      startSimulator({ ...simOptions, seed: 31 }),
      startSimulator({ ...simOptions, seed: 32 }),
    ]);
    sims = [target, ambient];
    fs.copyFileSync(ambient.kubeconfigPath, ambientPath);
    plugin = await started;
    client = new ProviderClient(plugin);
    await client.configure();
    engine.onComponent = async (reg) => {
      if (reg.type !== CHART) return;
      // helm.v4.Chart's objects, applied by the kubernetes provider the chart was registered with.
      await deployRelease(clusterOf(reg), { values: chartValues });
    };
    engine.onRead = async (read) => {
      const sim = byProvider.get(read.provider);
      assert.ok(sim, `ReadResource ${read.type}: provider ${read.provider} unknown to the test engine`);
      return sim.get("namespaces", undefined, read.id) as unknown as Record<string, unknown>;
    };
    engine.onCustom = async (reg) => {
      if (reg.type === ROLLOUT) return runRollout(reg);
      if (reg.type === K8S_PROVIDER) {
        const id = `${reg.name}-id`;
        const kubeconfig = (revealed(reg.object) as { kubeconfig?: string }).kubeconfig;
        assert.ok(kubeconfig, "the component's provider has a kubeconfig");
        byProvider.set(`${reg.urn}::${id}`, simReaching(serverOf(kubeconfig)));
        return { id, outputs: reg.object };
      }
      const object = revealed(reg.object) as K8sObject;
      apply(clusterOf(reg), [object]);
      return { id: `${object.metadata?.namespace ?? ""}/${object.metadata?.name}`, outputs: reg.object };
    };
  });
  afterEach(function () {
    if (this.currentTest?.state === "failed") console.log(plugin?.stderr().slice(-4_000));
  });
  after(async () => {
    await plugin?.stop();
    await engine.stop();
    await Promise.all(sims.map((s) => s.close()));
  });

  async function construct(name: string, mode: "job" | "daemonset", extra: Record<string, unknown>) {
    chartValues = { deploymentMode: mode, job: { parallelism: 4 } };
    const from = engine.registrations.length;
    const result = await client.construct({
      engine,
      type: COMPONENT,
      name,
      inputs: {
        deploymentMode: mode,
        namespace: RELEASE.namespace,
        releaseName: RELEASE.name,
        job: { parallelism: 4 },
        rollout: { timeoutSeconds: 120 },
        ...extra,
      },
    });
    return { result, registrations: engine.registrations.slice(from) };
  }

  /** The nodes the install succeeded on, which its label stage labelled: the cleanup dispatcher selects them. */
  function labelInstalled(sim: RunningSimulator, outputs: Record<string, unknown>): string[] {
    const installed = decodeResults(outputs.results as string)
      .filter((r) => r.outcome === "succeeded")
      .map((r) => r.node);
    assert.deepEqual(kataLabelledNodes(sim), [...installed].sort());
    return installed;
  }

  it("kubeconfig argument: up (daemonset), mode switch (job) and destroy touch only its cluster; the ambient one sees no write", async () => {
    const ambientTransitions = ambient.audit.transitions().length;
    const kubeconfig = secret(fs.readFileSync(target.kubeconfigPath, "utf8"));

    const up = await construct("kata", "daemonset", { kubeconfig });
    const component = up.registrations.find((r) => r.type === COMPONENT)!;
    // The component built its own Kubernetes provider from the kubeconfig argument, kept secret.
    const providers = up.registrations.filter((r) => r.type === K8S_PROVIDER);
    assert.equal(providers.length, 1);
    assert.equal(providers[0].parent, component.urn);
    assert.ok(isSecret(providers[0].object.kubeconfig), "the provider's kubeconfig is a secret input");
    const chart = up.registrations.find((r) => r.type === CHART)!;
    assert.equal(clusterOf(chart), target, "the chart goes to the kubeconfig argument's cluster");
    assert.equal(
      (revealed(chart.object) as { skipAwait?: unknown }).skipAwait,
      true,
      "the chart is registered so that the kubernetes provider does not await its DaemonSet",
    );
    const rollout = afterChart(up.registrations.filter((r) => r.type === ROLLOUT));
    assert.ok(isSecret(rollout.object.connection), "a connection the user passed is secret");
    assert.equal((revealed(rollout.object.connection) as ConnectionSpec).server, target.url);
    const dsRecord = rollouts.get(rollout.urn)!;
    assert.ok(isSecret(dsRecord.outputs.connection), "and secret among the outputs");
    const dsResults = decodeResults(dsRecord.outputs.results as string);
    assert.equal(dsResults.length, 12);
    assert.equal(
      dsResults.filter((r) => r.outcome === "succeeded").length,
      11,
      "every worker (1 control plane)",
    );

    // Mode switch: the rollout deletes the DaemonSet (Helm's upgrade order) and installs with Jobs, on the target.
    const switched = await construct("kata", "job", { kubeconfig });
    for (const r of switched.registrations.filter((x) => x.custom && x.type.startsWith("kubernetes:")))
      assert.equal(clusterOf(r), target, `${r.type} ${r.name} goes to the target`);
    const jobRecord = rollouts.get(rollout.urn)!;
    assert.equal(jobRecord.outputs.mode, "job");
    const truth = simJobOutcomes(target, INSTALL_OWNER);
    assert.equal(truth.size, 11);
    assert.ok(
      target.audit.transitions("daemonsets").some((t) => t.kind === "deleted" && t.name === "kata-deploy"),
      "the DaemonSet was deleted on the target",
    );

    // Destroy: the cleanup dispatcher runs on the target's nodes that have Kata.
    const installed = labelInstalled(target, jobRecord.outputs);
    await client.delete(rollout.urn, jobRecord.id, jobRecord.outputs);
    rollouts.delete(rollout.urn);
    assert.deepEqual([...simJobOutcomes(target, CLEANUP_OWNER).keys()].sort(), installed.sort());

    assert.deepEqual(writes(ambient), [], "no write request reached the ambient cluster");
    assert.equal(
      ambient.audit.transitions().length,
      ambientTransitions,
      "nothing changed in the ambient cluster",
    );
  });

  it("an explicit provider without the kubeconfig argument is refused before anything is registered", async () => {
    const urn = "urn:pulumi:dev::proj::pulumi:providers:kubernetes::theirs";
    engine.resources.set(urn, { id: "theirs-id", state: {} });
    const from = engine.registrations.length;
    await assert.rejects(
      client.construct({
        engine,
        type: COMPONENT,
        name: "kata-refused",
        inputs: { deploymentMode: "job", namespace: RELEASE.namespace },
        providers: { kubernetes: `${urn}::theirs-id` },
      }),
      (e: Error) => /kubeconfig: required with an explicit Kubernetes provider/.test(e.message),
    );
    assert.deepEqual(
      engine.registrations.slice(from).map((r) => r.type),
      [],
      "nothing registered, not even the component",
    );
  });

  it("ambient: chart and rollout both reach the plugin's KUBECONFIG; the state holds no credential; identity is no diff; destroy re-reads it", async () => {
    const up = await construct("kata-ambient", "job", {});
    const chart = up.registrations.find((r) => r.type === CHART)!;
    assert.equal(clusterOf(chart), ambient, "the chart goes to the default provider: the ambient cluster");
    assert.deepEqual(
      up.registrations.filter((r) => r.type === K8S_PROVIDER),
      [],
      "no provider of the component's own",
    );
    const rollout = afterChart(up.registrations.filter((r) => r.type === ROLLOUT));
    const record = rollouts.get(rollout.urn)!;
    const truth = simJobOutcomes(ambient, INSTALL_OWNER);
    assert.equal(truth.size, 11, "the rollout ran on the ambient cluster");
    // The component read the install plan at program time, through the plugin's ambient kubeconfig.
    const planned = (revealed(rollout.object) as RolloutInputs).plan;
    assert.deepEqual([planned?.selected, planned?.install], [11, 11]);
    assert.deepEqual(
      decodeResults(record.outputs.results as string)
        .map((r) => r.node)
        .sort(),
      [...truth.keys()].sort(),
    );

    // The state: the registered inputs, the checked inputs and the outputs hold a reference, no credential.
    const reference = { ambient: true, server: ambient.url, context: "kube-sim", source: "$KUBECONFIG" };
    for (const [what, props] of [
      ["registered inputs", rollout.object],
      ["checked inputs", record.inputs],
      ["outputs", record.outputs],
    ] as const) {
      const connection = revealed(props.connection) as Record<string, unknown>;
      assert.deepEqual(Object.keys(connection).sort(), Object.keys(reference).sort(), what);
      assert.equal(connection.ambient, true, what);
      assert.equal(connection.server, ambient.url, what);
      const text = JSON.stringify(revealed(props));
      assert.ok(!text.includes(ambient.adminToken), `${what}: no token`);
      assert.ok(!/PRIVATE KEY|BEGIN CERTIFICATE/.test(text), `${what}: no key or certificate`);
    }
    const component = up.registrations.find((r) => r.type === COMPONENT)!;
    assert.ok(!JSON.stringify(revealed(component.object)).includes(ambient.adminToken));

    // Identity is not a diff: the same cluster through an explicit connection (another user, token) changes nothing.
    // The next preview's inputs carry the plan read then: every node carries the install now.
    const connection = {
      server: ambient.url,
      caData: ambient.caPem,
      token: ambient.tokenFor("kube-system", "default"),
    };
    const now = await readInstallPlan({
      ...(revealed(record.inputs) as RolloutInputs),
      connection: { server: ambient.url, caData: ambient.caPem, token: ambient.adminToken },
    });
    assert.deepEqual(now?.plan, { selected: 11, install: 0 });
    const explicit = { ...record.inputs, connection: secret(connection), plan: now?.plan };
    assert.equal(await client.diff(rollout.urn, record.id, record.outputs, explicit), "none");
    const elsewhere = { ...record.inputs, connection: secret({ ambient: true, server: target.url }) };
    assert.equal(
      await client.diff(rollout.urn, record.id, record.outputs, elsewhere),
      "some",
      "another cluster is",
    );

    // Destroy with KUBECONFIG now reaching the target: refused before any request to it.
    const installed = labelInstalled(ambient, record.outputs);
    const targetRequests = target.audit.requests().length;
    fs.copyFileSync(target.kubeconfigPath, ambientPath);
    try {
      await assert.rejects(
        client.delete(rollout.urn, record.id, record.outputs),
        (e: Error) =>
          e.message.includes(`installed through ${ambient.url}`) &&
          e.message.includes(`now reaches ${target.url}`),
      );
    } finally {
      fs.copyFileSync(ambient.kubeconfigPath, ambientPath);
    }
    assert.equal(target.audit.requests().length, targetRequests, "the target was not contacted");
    // Back on the ambient cluster (its credentials as they are now): the cleanup runs there.
    await client.delete(rollout.urn, record.id, record.outputs);
    rollouts.delete(rollout.urn);
    assert.deepEqual([...simJobOutcomes(ambient, CLEANUP_OWNER).keys()].sort(), installed.sort());
  });

  it("a caller's provider with the kubeconfig of another cluster: the rollout refuses before it changes anything", async () => {
    // The caller's provider reaches the ambient cluster; the kubeconfig argument names the target.
    const urn = "urn:pulumi:dev::proj::pulumi:providers:kubernetes::elsewhere";
    engine.resources.set(urn, { id: "elsewhere-id", state: {} });
    byProvider.set(`${urn}::elsewhere-id`, ambient);
    const targetWrites = writes(target).length;
    chartValues = { deploymentMode: "job", job: { parallelism: 4 } };
    let settled = "";
    void client
      .construct({
        engine,
        type: COMPONENT,
        name: "kata-mismatch",
        inputs: {
          deploymentMode: "job",
          namespace: RELEASE.namespace,
          releaseName: RELEASE.name,
          job: { parallelism: 4 },
          kubeconfig: secret(fs.readFileSync(target.kubeconfigPath, "utf8")),
        },
        providers: { kubernetes: `${urn}::elsewhere-id` },
      })
      .then(
        () => (settled = "the construct succeeded"),
        (e: Error) => (settled = e.message),
      );
    const waitUntil = Date.now() + 280_000;
    let message: string | undefined;
    while (!(message = rolloutErrors.get("kata-mismatch-rollout"))) {
      assert.ok(Date.now() < waitUntil && settled !== "the construct succeeded", `no refusal (${settled})`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const kubeSystem = (c: RunningSimulator) =>
      String((c.get("namespaces", undefined, "kube-system") as KubeObject).metadata.uid);
    assert.ok(
      message.includes(`reaches ${target.url}`) &&
        message.includes(kubeSystem(target)) &&
        message.includes(kubeSystem(ambient)) &&
        message.includes("pass that provider's kubeconfig"),
      message,
    );
    assert.ok(engine.reads.some((r) => r.provider === `${urn}::elsewhere-id` && r.id === "kube-system"));
    assert.equal(writes(target).length, targetWrites, "no write reached the kubeconfig argument's cluster");
    assert.ok(![...rollouts.keys()].some((u) => u.endsWith("::kata-mismatch-rollout")), "nothing recorded");
  });

  describe("daemonset mode on 200 nodes, 3 failing and 2 tainted (item 2)", () => {
    let fleet: RunningSimulator;
    before(async () => {
      fleet = await startSimulator({
        authz: true,
        nodes: 200,
        controlPlane: 0,
        tainted: 2,
        seed: 33,
        timeScale: 20_000,
        jobDurationMs: 60_000,
      });
      sims.push(fleet);
    });

    it("the rollout runs to the end and names the 3 failures with reasons and the 2 skips", async function () {
      // 200 DaemonSet pods and the plugin's render on a loaded machine: from 50 s to 150 s seen.
      this.timeout(600_000);
      const nodes = fleet.list("nodes");
      const tainted = nodes
        .filter((n) => ((n.spec as { taints?: unknown[] } | undefined)?.taints ?? []).length > 0)
        .map((n) => String(n.metadata.name));
      assert.equal(tainted.length, 2);
      const broken = nodes
        .map((n) => String(n.metadata.name))
        .filter((n) => !tainted.includes(n))
        .slice(0, 3);
      for (const node of broken)
        fleet.setOutcome(node, { kind: "imagePullError", message: `manifest unknown on ${node}` });

      // The engine answers a failed registration with nothing (it ends the deployment), so the construct does not
      // return: wait (bounded) for the Rollout's "created but failed" answer, as the engine records it.
      let settled = "";
      void construct("kata-fleet", "daemonset", {
        kubeconfig: secret(fs.readFileSync(fleet.kubeconfigPath, "utf8")),
        rollout: { timeoutSeconds: 120, stuckGraceSeconds: 1 },
      }).then(
        () => (settled = "the construct succeeded although 3 nodes failed"),
        (e: Error) => (settled = e.message),
      );
      const t0 = Date.now();
      const waitUntil = t0 + 540_000;
      let failure: { reasons: string[]; outputs: Record<string, unknown> } | undefined;
      while (!(failure = failedRollouts.get("kata-fleet-rollout"))) {
        // The construct's own call may hit its gRPC deadline meanwhile (the plugin waits for an answer that never comes).
        assert.ok(
          Date.now() < waitUntil && !settled.startsWith("the construct succeeded"),
          `no failed Rollout (${settled})`,
        );
        await new Promise((r) => setTimeout(r, 100));
      }
      console.log(
        `      the Rollout's create failed, outputs kept, ${Date.now() - t0} ms after the construct began`,
      );
      const outputs = failure.outputs;
      const message = failure.reasons.join("\n");
      const chart = engine.registrations.find((r) => r.type === CHART && r.name === "kata-fleet")!;
      assert.equal((revealed(chart.object) as { skipAwait?: unknown }).skipAwait, true);

      const results = decodeResults(outputs.results as string);
      assert.equal(results.length, 200);
      const failed = results.filter((r) => r.outcome === "failed");
      assert.deepEqual(failed.map((r) => r.node).sort(), [...broken].sort());
      for (const r of failed) {
        assert.equal(r.reason, "Stuck", r.node);
        assert.match(r.message ?? "", /ImagePullBackOff|ErrImagePull/, r.node);
        assert.ok(message.includes(`${r.node} (Stuck`), `the error names ${r.node}: ${message}`);
      }
      const skipped = results.filter((r) => r.outcome === "skipped");
      assert.deepEqual(skipped.map((r) => r.node).sort(), [...tainted].sort());
      for (const r of skipped) assert.equal(r.reason, "Tainted", r.node);
      assert.equal(results.filter((r) => r.outcome === "succeeded").length, 195);
      assert.deepEqual(outputs.summary, {
        ...(outputs.summary as object),
        total: 200,
        failed: 3,
        skipped: 2,
        succeeded: 195,
      });
    });
  });
});
