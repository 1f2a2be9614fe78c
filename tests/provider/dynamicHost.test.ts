// The TypeScript library's path: the rollout as a dynamic resource, run by @pulumi/pulumi's dynamic-provider host
// (`cmd/dynamic-provider`, what the engine's pulumi-resource-pulumi-nodejs starts from the program's folder) with the
// provider code the SDK serializes into `__provider`, driven over gRPC by the harness. Same CRUD as the plugin's.
import assert from "node:assert/strict";
import { decodeResults } from "../../rollout/compact";
import { BUNDLED_DISPATCHER_IMAGE } from "../../chart/dispatcherJobs";
import { startSimulator, type RunningSimulator } from "../../sim";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  CLEANUP_OWNER,
  INSTALL_OWNER,
  deployRelease,
  kataLabelledNodes,
  simJobOutcomes,
} from "../rollout/simHarness";
import { tempDir } from "../tempDir";
import { serializedProvider } from "../rollout/serialized";
import { EngineSide, ProviderClient, startProvider, type ProviderProcess } from "./harness";
import { rolloutLifecycleSuite } from "./lifecycle";

const TYPE = "pulumi-nodejs:dynamic/kata-deploy:KataRollout";

describe("the rollout through Pulumi's dynamic-provider host over gRPC (the TypeScript library's path)", function () {
  this.timeout(300_000);
  const engine = new EngineSide();
  let host: ProviderProcess;
  let client: ProviderClient;
  let sim: RunningSimulator;
  /** The host's ambient kubeconfig (its KUBECONFIG): the simulator's, copied once it runs. */
  const ambientPath = path.join(tempDir("kata-dynamic-ambient-"), "kubeconfig");
  let created: { id: string; properties: Record<string, unknown> } | undefined;

  before(async () => {
    await engine.start();
    host = await startProvider("dynamic", {
      engineAddress: engine.address,
      startTimeoutMs: 60_000,
      env: { KATA_ROLLOUT_LOG: "", KUBECONFIG: ambientPath },
    });
    client = new ProviderClient(host);
    sim = await startSimulator({
      authz: true,
      nodes: 10,
      controlPlane: 1,
      seed: 3,
      timeScale: 600,
      jobDurationMs: 30_000,
      execute: { nodeImages: [BUNDLED_DISPATCHER_IMAGE], timeoutMs: 60_000 },
    });
    fs.copyFileSync(sim.kubeconfigPath, ambientPath);
  });
  after(async () => {
    await host?.stop();
    await engine.stop();
    await sim?.close();
  });

  it("Configure refuses secrets (the engine then sends plain values); Check → Create → Diff run the serialized code", async () => {
    const configured = await client.configure();
    assert.equal(configured.getAcceptsecrets(), false);
    const { inputs } = await deployRelease(sim, { values: { job: { parallelism: 3 } } });
    const { text } = await serializedProvider();
    const urn = engine.urnOf("", TYPE, "kata-rollout");
    const news = { ...JSON.parse(JSON.stringify(inputs)), __provider: text } as Record<string, unknown>;

    const checked = await client.check(urn, {}, news);
    assert.deepEqual(checked.failures, []);
    created = await client.create(urn, checked.inputs);
    assert.equal(created.id, "kata-system/kata-deploy");
    const results = decodeResults(created.properties.results as string);
    const truth = simJobOutcomes(sim, INSTALL_OWNER);
    assert.equal(results.length, truth.size);
    for (const r of results) assert.equal(r.outcome, truth.get(r.node)?.outcome, r.node);
    // The host ran it: its stderr carries the rollout's progress.
    assert.match(
      host.stderr(),
      /\[kata-rollout\] kata-deploy kata-system\/kata install: \d+\/\d+ nodes succeeded/,
    );
    assert.equal(await client.diff(urn, created.id, created.properties, checked.inputs), "none");
  });

  it("an ambient reference (no credential in the state): the serialized code re-reads the host's KUBECONFIG at delete", async () => {
    assert.ok(created, "the previous test created the rollout");
    const urn = engine.urnOf("", TYPE, "kata-rollout");
    const { text } = await serializedProvider();
    const installed = decodeResults(created.properties.results as string)
      .filter((r) => r.outcome === "succeeded")
      .map((r) => r.node);
    // The cleanup dispatcher selects nodes labelled as having Kata: the install's label stage labelled them.
    assert.deepEqual(kataLabelledNodes(sim), [...installed].sort());
    const reference = { ambient: true, server: sim.url, context: "kube-sim", source: "$KUBECONFIG" };
    await client.delete(urn, created.id, { ...created.properties, connection: reference, __provider: text });
    assert.deepEqual([...simJobOutcomes(sim, CLEANUP_OWNER).keys()].sort(), installed.sort());
    assert.match(
      host.stderr(),
      /\[kata-rollout\] kata-deploy kata-system\/kata cleanup: \d+\/\d+ nodes succeeded/,
    );
  });

  rolloutLifecycleSuite({
    client: () => client,
    urn: (name) => engine.urnOf("", TYPE, name),
    // Configure refused secrets: the engine sends plain values, with the serialized provider as `__provider`.
    wire: async (inputs) => ({
      ...(JSON.parse(JSON.stringify(inputs)) as Record<string, unknown>),
      __provider: (await serializedProvider()).text,
    }),
    secrets: false,
  });
});
