// The package's own provider plugin, started as the engine starts it (`@pulumi/pulumi/cmd/run-plugin` on this
// folder, TypeScript type-checked by ts-node as the nodejs language host does) and driven over Pulumi's gRPC provider
// protocol by tests/provider/harness.ts, which also plays the engine's ResourceMonitor. Ground truth: the simulator's
// audit log and store.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { decodeResults } from "../../rollout/compact";
import { listNodeOutcomes, nodeOutcome, type NodeOutcomes } from "../../rollout/outcomes";
import type { RolloutInputs } from "../../rollout/types";
import { withInstallPlan } from "../../rollout/installPlan";
import { startSimulator, type RunningSimulator } from "../../sim";
import type { KubeObject } from "../../sim/types";
import { BUNDLED_DISPATCHER_IMAGE } from "../../chart/dispatcherJobs";
import type { K8sObject } from "../../chart/k8s";
import { HELM_TEMPLATE_TOKEN } from "../../components/helmTemplate";
import { offlineHelmTemplate } from "../components/offlineTemplate";
import {
  INSTALL_OWNER,
  CLEANUP_OWNER,
  RELEASE,
  RESOURCE_OF_KIND,
  apply,
  deployRelease,
  simJobOutcomes,
  kataLabelledNodes,
} from "../rollout/simHarness";
import { addWorker, rolloutLifecycleSuite } from "./lifecycle";
import {
  afterChart,
  EngineSide,
  ProviderClient,
  REPO_DIR,
  initFailure,
  isSecret,
  revealed,
  secret,
  startProvider,
  type ProviderProcess,
  type Registration,
  type Wire,
} from "./harness";

const ROLLOUT = "kata-deploy:index:Rollout";
const K8S_PROVIDER = "pulumi:providers:kubernetes";
const COMPONENT = "kata-deploy:index:KataDeploy";
const VERSION = (
  JSON.parse(fs.readFileSync(path.join(REPO_DIR, "package.json"), "utf8")) as { version: string }
).version;

/** The plugin takes long to start (ts-node type-checks the package), so it starts while mocha loads other files. */
const engine = new EngineSide();
// The kubernetes provider's helm template invoke (the component renders the chart's hooks with it), played offline.
engine.onInvoke = (token, args) =>
  token === HELM_TEMPLATE_TOKEN ? offlineHelmTemplate(String(args.jsonOpts)) : undefined;
const started: Promise<ProviderProcess> = engine.start().then((address) =>
  startProvider("package", {
    engineAddress: address,
    startTimeoutMs: 300_000,
    // Progress lines on: they show where the rollout ran.
    env: { KATA_ROLLOUT_LOG: "" },
  }),
);
// Reported by `before`; keeps an early failure from being an unhandled rejection.
started.catch(() => undefined);

/** The rollout registered after the chart (not the release hooks' side, `chartSide: "before"`). */
function rolloutUrn(name: string): string {
  return engine.urnOf("", ROLLOUT, name);
}

/** Rollout inputs as the engine sends them: JSON values, the connection a Pulumi secret. */
function wireInputs(inputs: RolloutInputs): Record<string, unknown> {
  const json = JSON.parse(JSON.stringify(inputs)) as Record<string, Wire>;
  return { ...json, connection: secret(json.connection) };
}

function simFleet(sim: RunningSimulator): string[] {
  return sim
    .list("nodes", {})
    .map((n) => String(n.metadata?.name))
    .sort();
}

function installJobsPerNode(sim: RunningSimulator, owner = INSTALL_OWNER): Map<string, number> {
  const count = new Map<string, number>();
  for (const [node, report] of Object.entries(sim.audit.jobsByNode()))
    for (const j of report.jobs) if (j.owner === owner) count.set(node, (count.get(node) ?? 0) + 1);
  return count;
}

describe("the package's provider plugin over gRPC (run-plugin, as the engine starts it)", function () {
  this.timeout(300_000);
  let plugin: ProviderProcess;
  let client: ProviderClient;

  before(async function () {
    this.timeout(330_000);
    const t = Date.now();
    plugin = await started;
    console.log(`      plugin ready (port announced) ${Date.now() - t} ms after this suite began waiting`);
    client = new ProviderClient(plugin);
    const configured = await client.configure();
    assert.equal(configured.getAcceptsecrets(), true);
  });
  afterEach(function () {
    // What the plugin said, for a failed test (its progress lines and errors).
    if (this.currentTest?.state === "failed") console.log(plugin?.stderr().slice(-4_000));
  });
  after(async () => {
    if (engine.unserved.length)
      console.log(`      engine methods the plugin called unserved: ${engine.unserved}`);
    await plugin?.stop();
    await engine.stop();
  });

  it("GetPluginInfo and GetSchema: the KataDeploy component and the Rollout resource with its outputs", async () => {
    assert.equal(await client.pluginInfo(), VERSION);
    const schema = (await client.getSchema()) as {
      name: string;
      version: string;
      resources: Record<
        string,
        {
          isComponent?: boolean;
          inputProperties: Record<string, { secret?: boolean }>;
          properties: Record<string, { $ref?: string; type?: string }>;
          required?: string[];
        }
      >;
      types: Record<string, unknown>;
    };
    assert.equal(schema.name, "kata-deploy");
    assert.equal(schema.version, VERSION);
    assert.equal(schema.resources[COMPONENT].isComponent, true);
    const rollout = schema.resources[ROLLOUT];
    assert.ok(rollout, "Rollout resource in the schema");
    assert.ok(!rollout.isComponent);
    assert.equal(rollout.inputProperties.connection.secret, true);
    for (const output of ["results", "summary", "runId", "lastRunKey"]) {
      assert.ok(rollout.properties[output], output);
      assert.ok(rollout.required?.includes(output), `${output} required`);
    }
    const summaryRef = rollout.properties.summary.$ref ?? "";
    assert.ok(schema.types[summaryRef.replace("#/types/", "")], `${summaryRef} is a type of the schema`);
  });

  describe("Construct KataDeploy against kube-sim: the rollout is this package's resource and runs in the plugin", () => {
    let sim: RunningSimulator;
    before(async () => {
      sim = await startSimulator({
        authz: true,
        nodes: 12,
        controlPlane: 1,
        seed: 5,
        // Jobs of 50 ms: fast, yet slow enough for the dispatcher to see each one finish.
        timeScale: 600,
        jobDurationMs: 30_000,
        execute: { nodeImages: [BUNDLED_DISPATCHER_IMAGE], timeoutMs: 120_000 },
      });
    });
    after(async () => {
      engine.onCustom = undefined;
      engine.onRead = undefined;
      await sim?.close();
    });

    /** The engine for one construct: kubernetes objects applied to the simulator, the Rollout run by the plugin. */
    function engineDrivesPlugin(): void {
      engine.onCustom = async (reg: Registration) => {
        if (reg.type === ROLLOUT) {
          const checked = await client.check(reg.urn, {}, reg.object);
          assert.deepEqual(checked.failures, []);
          const created = await client.create(reg.urn, checked.inputs);
          return { id: created.id, outputs: created.properties };
        }
        if (reg.type === K8S_PROVIDER) return { id: reg.name, outputs: reg.object };
        const object = revealed(reg.object) as K8sObject;
        apply(sim, [object]);
        return { id: `${object.metadata?.namespace ?? ""}/${object.metadata?.name}`, outputs: reg.object };
      };
      // The caller's provider reads the cluster's identity (kube-system) from the simulator.
      engine.onRead = async (read) =>
        sim.get("namespaces", undefined, read.id) as unknown as Record<string, unknown>;
    }

    async function construct(name: string, mode: "job" | "daemonset") {
      // helm.v4.Chart's objects, as the kubernetes provider would apply them (the chart is a remote component the
      // test engine does not render).
      await deployRelease(sim, { values: { deploymentMode: mode, job: { parallelism: 4 } } });
      engineDrivesPlugin();
      const from = engine.registrations.length;
      const k8sProviderUrn = "urn:pulumi:dev::proj::pulumi:providers:kubernetes::cluster";
      engine.resources.set(k8sProviderUrn, { id: "provider-id", state: {} });
      const k8sProvider = `${k8sProviderUrn}::provider-id`;
      const result = await client.construct({
        engine,
        type: COMPONENT,
        name,
        inputs: {
          deploymentMode: mode,
          namespace: RELEASE.namespace,
          releaseName: RELEASE.name,
          job: { parallelism: 4 },
          kubeconfig: secret(fs.readFileSync(sim.kubeconfigPath, "utf8")),
          rollout: { timeoutSeconds: 120 },
        },
        providers: { kubernetes: k8sProvider },
      });
      return { result, registrations: engine.registrations.slice(from), k8sProvider };
    }

    it("job mode: chart, extras and Rollout with the right parents, dependencies, providers and secrets; per-node results", async () => {
      const { result, registrations, k8sProvider } = await construct("kata", "job");
      const component = registrations.find((r) => r.type === COMPONENT)!;
      assert.ok(component, "component registered");
      assert.equal(result.urn, component.urn);
      assert.ok(isSecret(component.object.kubeconfig), "the kubeconfig is stored as a secret input");

      // No dynamic resource anywhere: a Python/YAML consumer needs no node_modules.
      assert.deepEqual(
        registrations.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic")),
        [],
        "no pulumi-nodejs:dynamic registration",
      );
      const chart = registrations.find((r) => r.type === "kubernetes:helm.sh/v4:Chart")!;
      assert.ok(chart.remote && !chart.custom);
      assert.equal(chart.parent, component.urn);
      assert.equal(chart.providers.kubernetes ?? chart.provider, k8sProvider);
      const extras = registrations.filter((r) => r.custom && r.type.startsWith("kubernetes:"));
      assert.deepEqual(extras.map((r) => r.type).sort(), [
        "kubernetes:core/v1:ConfigMap",
        // The node recorder's: nodes patch cluster-wide, events create in default.
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
        "kubernetes:rbac.authorization.k8s.io/v1:Role",
        "kubernetes:rbac.authorization.k8s.io/v1:Role",
        "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
        "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
      ]);
      for (const e of extras) {
        assert.equal(e.parent, component.urn);
        assert.equal(e.provider, k8sProvider, `${e.type} uses the caller's kubernetes provider`);
        assert.ok(e.dependencies.includes(chart.urn), `${e.type} after the chart`);
      }

      // Two rollout resources: the release hooks' side before the chart, and the rollout after it.
      const rollouts = registrations.filter((r) => r.type === ROLLOUT);
      assert.equal(rollouts.length, 2);
      const rollout = afterChart(rollouts);
      assert.ok(rollout.custom);
      assert.equal(rollout.parent, component.urn);
      assert.equal(rollout.version, VERSION, "registered against this package's provider version");
      assert.ok(!rollout.provider.includes("kubernetes"), "the rollout is not a kubernetes resource");
      for (const dep of [chart, ...extras]) assert.ok(rollout.dependencies.includes(dep.urn), dep.type);
      assert.ok(rollout.additionalSecretOutputs.includes("connection"));
      assert.ok(isSecret(rollout.object.connection), "connection sent as a secret");
      assert.equal(
        (revealed(rollout.object) as { clusterUid?: string }).clusterUid,
        (sim.get("namespaces", undefined, "kube-system") as KubeObject).metadata?.uid,
        "the caller's provider read the cluster's identity, which the rollout checks",
      );
      assert.ok(!("__provider" in rollout.object), "no serialized provider code");

      // The create ran inside the plugin process (its progress went to the plugin's stderr) against kube-sim.
      const truth = simJobOutcomes(sim, INSTALL_OWNER);
      assert.match(
        plugin.stderr(),
        new RegExp(
          `\\[kata-rollout\\] kata-deploy kata-system/kata install: ${truth.size}/${truth.size} nodes succeeded`,
        ),
      );
      const state = result.state as {
        nodeOutcomes: NodeOutcomes;
        summary: { total: number; succeeded: number };
        kataNodes: string[];
      };
      assert.deepEqual(Object.keys(state.nodeOutcomes.nodes).sort(), [...truth.keys()].sort());
      for (const [node, t] of truth)
        assert.equal(nodeOutcome(state.nodeOutcomes, node)?.outcome, t.outcome, node);
      // The Job names are in the Rollout's own state (its compact results), not in the component's outputs.
      const rolloutState = engine.resources.get(rollout.urn)?.state as { results: string };
      for (const r of decodeResults(rolloutState.results))
        assert.equal(r.job, truth.get(r.node)?.job, r.node);
      assert.deepEqual(state.kataNodes, [...truth.keys()].sort());
      assert.equal(state.summary.succeeded, truth.size);
      assert.ok(!JSON.stringify(result.state).includes(sim.adminToken), "no credential among the outputs");
      // The component's outputs were registered with the engine too.
      assert.ok(engine.outputs.get(component.urn)?.summary);
    });

    it("daemonset mode: no job-mode extras; the Rollout waits for the DaemonSet's pods in the plugin", async () => {
      const { result, registrations } = await construct("kata-ds", "daemonset");
      assert.deepEqual(
        registrations.filter((r) => r.custom && r.type.startsWith("kubernetes:")).map((r) => r.type),
        [],
      );
      // The chart is registered so that the kubernetes provider does not await its DaemonSet's pods: the Rollout's
      // per-node wait decides, and a stuck node cannot block the chart (and with it every result).
      const chart = registrations.find((r) => r.type === "kubernetes:helm.sh/v4:Chart")!;
      assert.equal(
        (revealed(chart.object) as { skipAwait?: unknown }).skipAwait,
        true,
        "registered with skipAwait",
      );
      assert.ok(
        afterChart(registrations.filter((r) => r.type === ROLLOUT)).dependencies.includes(chart.urn),
        "the Rollout still runs after the chart",
      );
      const rollout = afterChart(registrations.filter((r) => r.type === ROLLOUT));
      assert.equal((revealed(rollout.object) as { mode: string }).mode, "daemonset");
      const state = result.state as { nodeOutcomes: NodeOutcomes };
      assert.deepEqual(Object.keys(state.nodeOutcomes.nodes).sort(), simFleet(sim));
      // Ground truth: the nodes where the simulator runs a Ready pod of the DaemonSet.
      const pods = sim.list("pods", {
        namespace: RELEASE.namespace,
        labelSelector: "name=kata-deploy",
      }) as unknown as {
        spec?: { nodeName?: string };
        status?: { conditions?: { type: string; status: string }[] };
      }[];
      const ready = pods
        .filter((p) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"))
        .map((p) => String(p.spec?.nodeName))
        .sort();
      assert.ok(ready.length > 0);
      assert.deepEqual(
        listNodeOutcomes(state.nodeOutcomes)
          .filter((r) => r.outcome === "succeeded")
          .map((r) => r.node)
          .sort(),
        ready,
      );
    });
  });

  rolloutLifecycleSuite({
    client: () => client,
    urn: rolloutUrn,
    wire: async (inputs) => wireInputs(inputs),
    secrets: true,
  });

  describe("Cancel during a 500-node rollout", () => {
    let sim: RunningSimulator;
    before(async () => {
      sim = await startSimulator({
        authz: true,
        nodes: 500,
        controlPlane: 0,
        seed: 21,
        timeScale: 60,
        jobDurationMs: 30_000,
        execute: { nodeImages: [BUNDLED_DISPATCHER_IMAGE], timeoutMs: 300_000 },
      });
    });
    after(async () => sim?.close());

    it("returns within 10 s, the dispatcher keeps running, and the next Create adopts its Jobs: one Job per node", async () => {
      const { inputs } = await deployRelease(sim, {
        // A TTL far beyond the test (simulated seconds): the chart's 600 s is 10 s of real time here, and a Job that
        // ends and is removed between the Cancel and the next call is unknown to it (NotObserved), not "one Job".
        values: { job: { parallelism: 25, ttlSecondsAfterFinished: 50_000_000 } },
        rollout: { timeoutSeconds: 600 },
      });
      const urn = rolloutUrn("cancelled");
      const first = client.create(urn, wireInputs(inputs)).then(
        () => new Error("the create finished before the cancel"),
        (e: unknown) => e as Error,
      );
      // Cancel once the dispatcher has fanned out some Jobs (bounded wait on the audit log).
      const waitUntil = Date.now() + 120_000;
      while (installJobsPerNode(sim).size < 50) {
        assert.ok(Date.now() < waitUntil, "the dispatcher created no 50 per-node Jobs within 120 s");
        await new Promise((r) => setTimeout(r, 50));
      }
      const t = Date.now();
      await client.cancel();
      const err = await first;
      const elapsed = Date.now() - t;
      console.log(
        `      cancel → create failed in ${elapsed} ms, ${installJobsPerNode(sim).size}/500 nodes had a Job`,
      );
      assert.ok(elapsed < 10_000, `create returned ${elapsed} ms after Cancel`);
      assert.match(err.message, /cancelled/);
      assert.equal(initFailure(err), undefined, "nothing recorded: the next up creates again");
      const dispatcher = sim.get("jobs", RELEASE.namespace, inputs.installDispatcherJobName) as KubeObject;
      assert.ok(dispatcher && !dispatcher.metadata?.deletionTimestamp, "the dispatcher Job keeps running");

      const again = await client.create(urn, wireInputs(inputs));
      const results = decodeResults(again.properties.results as string);
      assert.equal(results.length, 500);
      assert.ok(results.every((r) => r.outcome === "succeeded"));
      const perNode = installJobsPerNode(sim);
      assert.equal(perNode.size, 500);
      for (const [node, n] of perNode) assert.equal(n, 1, `${node} got ${n} Jobs`);
      const dispatcherCreates = sim.audit
        .transitions("jobs")
        .filter((x) => x.kind === "created" && x.name === inputs.installDispatcherJobName).length;
      assert.equal(dispatcherCreates, 1, "the dispatcher Job was adopted, not created again");
    });
  });

  describe("up → destroy → up on one cluster, as helm install / uninstall / install (both modes)", () => {
    let sim: RunningSimulator;
    before(async () => {
      sim = await startSimulator({
        authz: true,
        nodes: 6,
        controlPlane: 1,
        seed: 13,
        timeScale: 600,
        jobDurationMs: 30_000,
        execute: { nodeImages: [BUNDLED_DISPATCHER_IMAGE], timeoutMs: 120_000 },
      });
    });
    after(async () => {
      engine.onCustom = undefined;
      await sim?.close();
    });

    const KEEP = "helm.sh/resource-policy";
    type Created = { reg: Registration; id: string; outputs: Record<string, unknown> };

    /** `pulumi up`: the chart's objects applied as helm.v4.Chart would, the component constructed by the plugin. */
    async function up(mode: "job" | "daemonset", stackName: string) {
      const { applied: chartObjects } = await deployRelease(sim, {
        values: { deploymentMode: mode, job: { parallelism: 3 } },
      });
      const created: Created[] = [];
      const extras: K8sObject[] = [];
      engine.onCustom = async (reg: Registration) => {
        if (reg.type === ROLLOUT) {
          const checked = await client.check(reg.urn, {}, reg.object);
          assert.deepEqual(checked.failures, []);
          const c = await client.create(reg.urn, checked.inputs);
          created.push({ reg, id: c.id, outputs: c.properties });
          return { id: c.id, outputs: c.properties };
        }
        // The component's own Kubernetes provider (from the kubeconfig argument): nothing to apply.
        if (reg.type === K8S_PROVIDER) return { id: reg.name, outputs: reg.object };
        const object = revealed(reg.object) as K8sObject;
        apply(sim, [object]);
        extras.push(object);
        return { id: `${object.metadata?.namespace ?? ""}/${object.metadata?.name}`, outputs: reg.object };
      };
      const from = engine.registrations.length;
      const result = await client.construct({
        engine,
        type: COMPONENT,
        name: stackName,
        inputs: {
          deploymentMode: mode,
          namespace: RELEASE.namespace,
          releaseName: RELEASE.name,
          job: { parallelism: 3 },
          kubeconfig: secret(fs.readFileSync(sim.kubeconfigPath, "utf8")),
          rollout: { timeoutSeconds: 120 },
        },
      });
      return { result, created, chartObjects, extras, registrations: engine.registrations.slice(from) };
    }

    /**
     * `pulumi destroy`, in the engine's order (dependents first): the rollout (pre-delete hooks), the component's
     * extras and the chart's objects as the kubernetes provider deletes them (`keep` ones retained, as helm.v4.Chart
     * registers them with retainOnDelete), then the release hooks' side (post-delete hooks, kept objects).
     */
    async function destroy(u: Awaited<ReturnType<typeof up>>) {
      const side = (s: "before" | "after") =>
        u.created.find(
          (c) => ((revealed(c.reg.object) as { chartSide?: string }).chartSide ?? "after") === s,
        )!;
      const after = side("after");
      const before = side("before");
      await client.delete(after.reg.urn, after.id, after.outputs);
      // The test's chart objects include the component's extras (deployRelease applies both): each is deleted once.
      const seen = new Set<string>();
      for (const o of [...u.extras, ...[...u.chartObjects].reverse()]) {
        const key = `${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;
        if (o.metadata?.annotations?.[KEEP] === "keep" || seen.has(key)) continue;
        seen.add(key);
        sim.delete(RESOURCE_OF_KIND[o.kind], o.metadata?.namespace, String(o.metadata?.name), {
          propagationPolicy: "Background",
        });
      }
      await client.delete(before.reg.urn, before.id, before.outputs);
    }

    /** Every object of the release still in the cluster (ServiceAccount `default` is the namespace's own). */
    function leftovers(): string[] {
      const ns = RELEASE.namespace;
      const names = (resource: Parameters<RunningSimulator["list"]>[0], namespace?: string) =>
        sim
          .list(resource, namespace ? { namespace } : {})
          .map((o) => `${resource}/${String(o.metadata?.name)}`);
      return [
        ...names("jobs", ns),
        ...names("pods", ns),
        ...names("configmaps", ns),
        ...names("serviceaccounts", ns).filter((n) => n !== "serviceaccounts/default"),
        ...names("roles", ns),
        ...names("rolebindings", ns),
        ...names("daemonsets", ns),
        ...names("controllerrevisions", ns),
        ...names("clusterroles").filter((n) => n.includes("kata-deploy")),
        ...names("clusterrolebindings").filter((n) => n.includes("kata-deploy")),
      ];
    }

    for (const mode of ["job", "daemonset"] as const) {
      it(`${mode} mode: destroy runs pre-delete, then the chart's deletion, then post-delete and removes the kept objects; the next up succeeds`, async () => {
        const first = await up(mode, `kata-${mode}`);
        const component = first.registrations.find((r) => r.type === COMPONENT)!;
        const chart = first.registrations.find((r) => r.type === "kubernetes:helm.sh/v4:Chart")!;
        const rollouts = first.registrations.filter((r) => r.type === ROLLOUT);
        const before = rollouts.find(
          (r) => (revealed(r.object) as { chartSide?: string }).chartSide === "before",
        )!;
        const after = rollouts.find((r) => r !== before)!;
        assert.ok(before && after, "two rollout resources: one on each side of the chart");
        assert.equal(before.parent, component.urn);
        assert.ok(chart.dependencies.includes(before.urn), "the chart depends on the release hooks' side");
        assert.ok(after.dependencies.includes(chart.urn), "the rollout depends on the chart");
        type Summary = { summary: { total: number; succeeded: number; failed: number } };
        const state = first.result.state as Summary;
        assert.ok(state.summary.succeeded > 0 && state.summary.failed === 0, JSON.stringify(state.summary));
        // The kept objects exist (the chart applied them).
        const kept = first.chartObjects.filter((o) => o.metadata?.annotations?.[KEEP] === "keep");
        assert.deepEqual(kept.map((o) => `${o.kind}/${o.metadata?.name}`).sort(), [
          "ClusterRole/kata-deploy-role",
          "ClusterRoleBinding/kata-deploy-rb",
          "ServiceAccount/kata-deploy-sa",
        ]);
        if (mode === "job") {
          // The cleanup dispatcher's default selection: nodes labelled as having Kata (the install's label stage).
          assert.deepEqual(
            kataLabelledNodes(sim),
            [...(first.result.state as { kataNodes: string[] }).kataNodes].sort(),
          );
        }

        const mark = sim.audit.transitions().length;
        await destroy(first);
        await sim.waitFor(() => leftovers().length === 0, 60_000).catch(() => undefined);
        assert.deepEqual(leftovers(), [], "no object of the release is left after destroy");

        // Ground truth for the order: the simulator's transitions during the destroy.
        const t = sim.audit.transitions().slice(mark);
        const at = (kind: string, resource: string, name: string) =>
          t.findIndex((x) => x.kind === kind && x.resource === resource && x.name === name);
        const chartGone = Math.max(
          ...first.chartObjects
            .filter((o) => o.metadata?.annotations?.[KEEP] !== "keep")
            .map((o) => at("deleted", RESOURCE_OF_KIND[o.kind], String(o.metadata?.name))),
        );
        const postDeleteJob = at("created", "jobs", "kata-deploy-rb-cleanup");
        assert.ok(postDeleteJob > chartGone, "post-delete hooks run after the chart's objects are gone");
        assert.ok(
          at("created", "clusterrolebindings", "kata-deploy-cleanup-rb") < postDeleteJob,
          "weight -5 first",
        );
        const postDeleteJobDeleted = at("deleted", "jobs", "kata-deploy-rb-cleanup");
        assert.ok(postDeleteJobDeleted > postDeleteJob, "hook-succeeded: the post-delete Job is deleted");
        for (const o of kept)
          assert.ok(
            at("deleted", RESOURCE_OF_KIND[o.kind], String(o.metadata?.name)) > postDeleteJobDeleted,
            `${o.kind}/${o.metadata?.name} removed after the post-delete hooks`,
          );
        if (mode === "job") {
          const cleanup = at("created", "jobs", "kata-deploy-cleanup-dispatcher");
          assert.ok(
            cleanup >= 0 && cleanup < chartGone,
            "pre-delete cleanup dispatcher before the chart's deletion",
          );
          assert.ok(simJobOutcomes(sim, CLEANUP_OWNER).size > 0, "the cleanup dispatcher cleaned nodes");
        }

        // The next up on the same cluster: nothing left to collide with; the install runs again and succeeds.
        const second = await up(mode, `kata-${mode}`);
        const again = second.result.state as Summary;
        assert.deepEqual(again.summary, { ...again.summary, succeeded: state.summary.succeeded, failed: 0 });
        // Leave the cluster clean for the next mode.
        await destroy(second);
        await sim.waitFor(() => leftovers().length === 0, 60_000).catch(() => undefined);
        assert.deepEqual(leftovers(), []);
      });
    }
  });

  describe("Cancel during a drift-heal Update", () => {
    let sim: RunningSimulator;
    before(async () => {
      sim = await startSimulator({
        authz: true,
        nodes: 100,
        controlPlane: 0,
        seed: 22,
        timeScale: 60,
        jobDurationMs: 30_000,
        execute: { nodeImages: [BUNDLED_DISPATCHER_IMAGE], timeoutMs: 300_000 },
      });
    });
    after(async () => sim?.close());

    it("returns within 10 s, the heal dispatcher keeps running, and the next Update adopts it: one Job per node", async () => {
      const { inputs } = await deployRelease(sim, {
        // A TTL far beyond the test (simulated seconds): the chart's 600 s is 10 s of real time here, and a Job that
        // ends and is removed between the Cancel and the next call is unknown to it (NotObserved), not "one Job".
        values: { job: { parallelism: 25, ttlSecondsAfterFinished: 50_000_000 } },
        rollout: { timeoutSeconds: 600 },
      });
      const urn = rolloutUrn("heal-cancelled");
      const checked = (await client.check(urn, {}, wireInputs(inputs))).inputs;
      const created = await client.create(urn, checked);
      assert.equal(decodeResults(created.properties.results as string).length, 100);

      // 300 nodes join: the heal Update installs just them (same run key), the others keep their one Job.
      const joined = Array.from({ length: 300 }, (_, i) => `joined-${String(i).padStart(3, "0")}`);
      for (const name of joined) addWorker({ sim }, name);
      const news = (await client.check(urn, checked, wireInputs(inputs))).inputs;
      assert.equal(await client.diff(urn, created.id, created.properties, news), "some");
      const dispatcherCreates = () =>
        sim.audit
          .transitions("jobs")
          .filter((x) => x.kind === "created" && x.name === inputs.installDispatcherJobName).length;
      const heal = client.update(urn, created.id, created.properties, news).then(
        () => new Error("the heal finished before the cancel"),
        (e: unknown) => e as Error,
      );
      const healing = () => joined.filter((n) => installJobsPerNode(sim).has(n)).length;
      const waitUntil = Date.now() + 120_000;
      while (healing() < 50) {
        assert.ok(Date.now() < waitUntil, "the heal dispatcher created no 50 per-node Jobs within 120 s");
        await new Promise((r) => setTimeout(r, 50));
      }
      const t = Date.now();
      await client.cancel();
      const err = await heal;
      const elapsed = Date.now() - t;
      console.log(
        `      cancel → heal update failed in ${elapsed} ms, ${healing()}/300 joined nodes had a Job`,
      );
      assert.ok(elapsed < 10_000, `update returned ${elapsed} ms after Cancel`);
      assert.match(err.message, /cancelled/);
      assert.equal(initFailure(err), undefined, "nothing recorded: the state keeps the create's outputs");
      assert.equal(dispatcherCreates(), 2, "the create's dispatcher, then the heal's");
      const dispatcher = sim.get("jobs", RELEASE.namespace, inputs.installDispatcherJobName) as KubeObject;
      assert.ok(dispatcher && !dispatcher.metadata?.deletionTimestamp, "the heal dispatcher keeps running");
      assert.match(
        JSON.stringify(dispatcher.spec),
        /--nodes=joined-/,
        "it is the heal's (its --nodes names the joined nodes)",
      );

      // The engine's next `up`: the same olds (the cancelled Update recorded nothing), the same heal.
      const again = await client.update(urn, created.id, created.properties, news);
      assert.equal(dispatcherCreates(), 2, "the heal dispatcher was adopted, not created again");
      assert.match(plugin.stderr(), /adopted the running dispatcher Job/);
      const results = decodeResults(again.results as string);
      assert.deepEqual(results.map((r) => r.node).sort(), [...simFleet(sim)]);
      assert.ok(
        results.every((r) => r.outcome === "succeeded"),
        "every node of the fleet succeeded",
      );
      const perNode = installJobsPerNode(sim);
      assert.equal(perNode.size, 400);
      for (const [node, n] of perNode) assert.equal(n, 1, `${node} got ${n} Jobs`);
    });
  });
  describe("install only what needs installing (300 nodes; #13): each node carries the payload it got", () => {
    let sim: RunningSimulator;
    before(async () => {
      sim = await startSimulator({
        authz: true,
        nodes: 300,
        controlPlane: 0,
        seed: 31,
        timeScale: 60,
        jobDurationMs: 30_000,
        execute: { nodeImages: [BUNDLED_DISPATCHER_IMAGE], timeoutMs: 300_000 },
      });
    });
    after(async () => sim?.close());

    it("a parallelism change creates no per-node Job, 5 joined nodes get exactly 5, a new image all 305, a rerunToken all again", async () => {
      const urn = rolloutUrn("payload-records");
      const installJobs = () => [...installJobsPerNode(sim).values()].reduce((a, b) => a + b, 0);
      // The inputs as the component registers them: with the install plan read from the nodes at program time.
      const release = async (values: Record<string, unknown>, rerunToken?: string) => {
        const built = await deployRelease(sim, { values, rerunToken, rollout: { timeoutSeconds: 600 } });
        return (await withInstallPlan(built.inputs, "test")).inputs;
      };
      const step = async (
        olds: { id: string; properties: Record<string, unknown> } | undefined,
        inputs: RolloutInputs,
      ) => {
        const checked = (await client.check(urn, olds?.properties ?? {}, wireInputs(inputs))).inputs;
        if (!olds) return client.create(urn, checked);
        // The preview: the plan is among the inputs the engine compares, and the diff reads no node.
        assert.deepEqual(checked.plan, inputs.plan);
        const before = sim.audit.requests({ resource: "nodes" }).length;
        assert.equal(await client.diff(urn, olds.id, olds.properties, checked), "some");
        assert.equal(sim.audit.requests({ resource: "nodes" }).length, before, "the diff reads no node");
        return { id: olds.id, properties: await client.update(urn, olds.id, olds.properties, checked) };
      };
      const outcomes = (props: Record<string, unknown>) => decodeResults(props.results as string);
      const payloadOnNodes = () =>
        new Set(
          sim.list("nodes", {}).map((n) => n.metadata?.annotations?.["kata-deploy-job-dispatcher/payload"]),
        );

      const job = { parallelism: 50, ttlSecondsAfterFinished: 50_000_000 };
      const nodeReads = sim.audit.requests({ resource: "nodes" }).length;
      const first = await release({ job });
      assert.ok(first.install?.payload, "the bundled dispatcher's stage carries the payload digest");
      assert.equal(first.plan?.selected, 300);
      assert.equal(first.plan?.install, 300);
      assert.match(first.plan?.new ?? "", / and 250 more$/);
      assert.equal((first.plan?.new ?? "").split(", ").length, 50, "the first 50 names, then a count");
      // Metadata only, paged: the records are labels and annotations; full objects only for the nodes to install.
      const reads = sim.audit.requests({ resource: "nodes" }).slice(nodeReads);
      assert.ok(reads.some((q) => q.verb === "list" && q.as === "PartialObjectMetadataList"));
      assert.ok(reads.every((q) => q.as === "PartialObjectMetadataList" || q.verb === "list"));
      let state = await step(undefined, first);
      assert.equal(installJobs(), 300);
      assert.deepEqual([...payloadOnNodes()], [first.install?.payload], "every node records what it got");

      // Pacing only: a new run key, a new dispatcher run, no per-node Job.
      const paced = await release({ job: { ...job, parallelism: 80 } });
      assert.notEqual(paced.runKey, first.runKey);
      assert.equal(paced.install?.payload, first.install?.payload);
      assert.deepEqual(paced.plan, { selected: 300, install: 0 }, "the preview says: no node to install");
      const metadataOnly = sim.audit.requests({ resource: "nodes" }).slice(-1)[0];
      assert.equal(metadataOnly?.as, "PartialObjectMetadataList", "nothing to install: no full Node read");
      state = await step(state, paced);
      assert.equal(installJobs(), 300, "no per-node Job for a parallelism change");
      const unchanged = outcomes(state.properties);
      assert.equal(unchanged.length, 300);
      assert.ok(
        unchanged.every((r) => r.outcome === "succeeded" && r.reason === "Unchanged"),
        "each node reported succeeded, Unchanged",
      );

      // Five nodes join: drift healing installs exactly them.
      const joined = ["joined-1", "joined-2", "joined-3", "joined-4", "joined-5"];
      for (const name of joined) addWorker({ sim }, name);
      // A sixth joins with a taint the per-node Jobs do not tolerate: the plan leaves it out and says so.
      sim.create("nodes", {
        apiVersion: "v1",
        kind: "Node",
        metadata: { name: "joined-tainted", labels: { "kubernetes.io/os": "linux" } },
        spec: { taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }] },
        status: { conditions: [{ type: "Ready", status: "True" }] },
      });
      const grown = await release({ job: { ...job, parallelism: 80 } });
      assert.deepEqual(grown.plan, {
        selected: 306,
        install: 5,
        new: joined.join(", "),
        blocked: "joined-tainted",
      });
      assert.equal(grown.runKey, paced.runKey);
      state = await step(state, grown);
      assert.equal(installJobs(), 305);
      assert.deepEqual(
        joined.map((n) => installJobsPerNode(sim).get(n)),
        [1, 1, 1, 1, 1],
      );

      // A new kata-deploy image is a new payload: every node again.
      const image = await release({
        job: { ...job, parallelism: 80 },
        image: { reference: "quay.io/kata-containers/kata-deploy", tag: "4.0.0-patched" },
      });
      assert.notEqual(image.install?.payload, first.install?.payload);
      assert.equal(image.plan?.install, 305);
      assert.match(image.plan?.changed ?? "", / and 255 more$/);
      state = await step(state, image);
      assert.equal(installJobs(), 610);
      const [tainted, ...installed] = [...outcomes(state.properties)].sort((a) =>
        a.node === "joined-tainted" ? -1 : 1,
      );
      assert.deepEqual(
        [tainted.node, tainted.outcome, tainted.reason],
        ["joined-tainted", "skipped", "Tainted"],
      );
      assert.ok(
        installed.every((r) => r.outcome === "succeeded" && r.reason === undefined),
        "each other node installed by a Job of this run",
      );
      assert.deepEqual([...payloadOnNodes()].sort(), [image.install?.payload, undefined]);

      // A rerunToken forces every node, payload unchanged.
      const forced = await release(
        {
          job: { ...job, parallelism: 80 },
          image: { reference: "quay.io/kata-containers/kata-deploy", tag: "4.0.0-patched" },
        },
        "again",
      );
      assert.equal(forced.plan?.install, 0, "the records match; the rerunToken input is what forces the run");
      state = await step(state, forced);
      assert.equal(installJobs(), 915);

      // Nothing changed: the preview shows no diff, and the program read metadata only.
      const same = await release(
        {
          job: { ...job, parallelism: 80 },
          image: { reference: "quay.io/kata-containers/kata-deploy", tag: "4.0.0-patched" },
        },
        "again",
      );
      const checked = (await client.check(urn, state.properties, wireInputs(same))).inputs;
      assert.equal(await client.diff(urn, state.id, state.properties, checked), "none");
      console.log(
        `      per-node Jobs after each step: 300, +0 (parallelism), +5 (joined), +305 (image), +305 (rerunToken)`,
      );
    });
  });
});
