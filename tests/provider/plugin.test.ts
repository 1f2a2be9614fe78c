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
import { startSimulator, type RunningSimulator } from "../../sim";
import type { KubeObject } from "../../sim/types";
import { BUNDLED_DISPATCHER_IMAGE } from "../../chart/dispatcherJobs";
import type { K8sObject } from "../../chart/k8s";
import { INSTALL_OWNER, RELEASE, apply, deployRelease, simJobOutcomes } from "../rollout/simHarness";
import { addWorker, rolloutLifecycleSuite } from "./lifecycle";
import {
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
const COMPONENT = "kata-deploy:index:KataDeploy";
const VERSION = (
  JSON.parse(fs.readFileSync(path.join(REPO_DIR, "package.json"), "utf8")) as { version: string }
).version;

/** The plugin takes long to start (ts-node type-checks the package), so it starts while mocha loads other files. */
const engine = new EngineSide();
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

function rolloutUrn(name: string): string {
  return engine.urnOf("", ROLLOUT, name);
}

/** Rollout inputs as the engine sends them: JSON values, the connection a Pulumi secret. */
function wireInputs(inputs: RolloutInputs): Record<string, unknown> {
  const json = JSON.parse(JSON.stringify(inputs)) as Record<string, Wire>;
  return { ...json, connection: secret(json.connection) };
}

function simFleet(sim: RunningSimulator): string[] {
  return (sim.list("nodes", {}) as unknown as KubeObject[]).map((n) => String(n.metadata?.name)).sort();
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
        const object = revealed(reg.object) as K8sObject;
        apply(sim, [object]);
        return { id: `${object.metadata?.namespace ?? ""}/${object.metadata?.name}`, outputs: reg.object };
      };
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
        "kubernetes:rbac.authorization.k8s.io/v1:Role",
        "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
      ]);
      for (const e of extras) {
        assert.equal(e.parent, component.urn);
        assert.equal(e.provider, k8sProvider, `${e.type} uses the caller's kubernetes provider`);
        assert.ok(e.dependencies.includes(chart.urn), `${e.type} after the chart`);
      }

      const rollouts = registrations.filter((r) => r.type === ROLLOUT);
      assert.equal(rollouts.length, 1);
      const rollout = rollouts[0];
      assert.ok(rollout.custom);
      assert.equal(rollout.parent, component.urn);
      assert.equal(rollout.version, VERSION, "registered against this package's provider version");
      assert.ok(!rollout.provider.includes("kubernetes"), "the rollout is not a kubernetes resource");
      for (const dep of [chart, ...extras]) assert.ok(rollout.dependencies.includes(dep.urn), dep.type);
      assert.ok(rollout.additionalSecretOutputs.includes("connection"));
      assert.ok(isSecret(rollout.object.connection), "connection sent as a secret");
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
        registrations.find((r) => r.type === ROLLOUT)!.dependencies.includes(chart.urn),
        "the Rollout still runs after the chart",
      );
      const rollout = registrations.find((r) => r.type === ROLLOUT)!;
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
});
