// The TypeScript library's path: the rollout as a dynamic resource, run by @pulumi/pulumi's dynamic-provider host
// (`cmd/dynamic-provider`, what the engine's pulumi-resource-pulumi-nodejs starts from the program's folder) with the
// provider code the SDK serializes into `__provider`, driven over gRPC by the harness. Same CRUD as the plugin's.
import assert from "node:assert/strict";
import { decodeResults } from "../../rollout/compact";
import { BUNDLED_DISPATCHER_IMAGE } from "../../chart/dispatcherJobs";
import { startSimulator, type RunningSimulator } from "../../sim";
import { INSTALL_OWNER, deployRelease, simJobOutcomes } from "../rollout/simHarness";
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
  let configured: Awaited<ReturnType<ProviderClient["configure"]>>;

  before(async () => {
    await engine.start();
    host = await startProvider("dynamic", {
      engineAddress: engine.address,
      startTimeoutMs: 60_000,
      env: { KATA_ROLLOUT_LOG: "" },
    });
    client = new ProviderClient(host);
    configured = await client.configure();
    sim = await startSimulator({
      authz: true,
      nodes: 10,
      controlPlane: 1,
      seed: 3,
      timeScale: 600,
      jobDurationMs: 30_000,
      execute: { nodeImages: [BUNDLED_DISPATCHER_IMAGE], timeoutMs: 60_000 },
    });
  });
  after(async () => {
    await host?.stop();
    await engine.stop();
    await sim?.close();
  });

  it("Configure refuses secrets (the engine then sends plain values); Check → Create → Diff run the serialized code", async () => {
    assert.equal(configured.getAcceptsecrets(), false);
    const { inputs } = await deployRelease(sim, { values: { job: { parallelism: 3 } } });
    const { text } = await serializedProvider();
    const urn = engine.urnOf("", TYPE, "kata-rollout");
    const news = { ...JSON.parse(JSON.stringify(inputs)), __provider: text } as Record<string, unknown>;

    const checked = await client.check(urn, {}, news);
    assert.deepEqual(checked.failures, []);
    const created = await client.create(urn, checked.inputs);
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
