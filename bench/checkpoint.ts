// Checkpoint bytes of one rollout, measured through the provider-protocol harness: the package's plugin (run-plugin)
// constructs KataDeploy against kube-sim, the harness plays the engine (the Rollout's Check and Create go to the
// plugin over gRPC), and every copy a stack's checkpoint would hold is weighed as JSON: the Rollout's inputs and
// outputs, the component's inputs and outputs, and the stack outputs a program exports (kataNodes, summary,
// nodeOutcomes, as the README's StackReference example does).
//
//   npx ts-node --transpile-only bench/checkpoint.ts --sizes 1000,10000
import * as fs from "node:fs";
import { Command } from "commander";
import { BUNDLED_DISPATCHER_IMAGE } from "../chart/dispatcherJobs";
import type { K8sObject } from "../chart/k8s";
import { listNodeOutcomes, type NodeOutcomes } from "../rollout/outcomes";
import { startSimulator } from "../sim";
import { RELEASE, apply, deployRelease } from "../tests/rollout/simHarness";
import { EngineSide, ProviderClient, revealed, secret, startProvider } from "../tests/provider/harness";

const ROLLOUT = "kata-deploy:index:Rollout";
const COMPONENT = "kata-deploy:index:KataDeploy";

const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value ?? null));

async function main(): Promise<void> {
  const o = new Command()
    .option("--sizes <list>", "fleet sizes", "1000,10000")
    .option("--parallelism <n>", "job.parallelism", "500")
    .option("--time-scale <n>", "simulated ms per real ms", "100")
    .parse()
    .opts<{ sizes: string; parallelism: string; timeScale: string }>();
  const engine = new EngineSide();
  await engine.start();
  const plugin = await startProvider("package", {
    engineAddress: engine.address,
    startTimeoutMs: 600_000,
    env: { KATA_ROLLOUT_LOG: "quiet" },
  });
  const client = new ProviderClient(plugin, 3_600_000);
  const rows: string[] = [];
  try {
    await client.configure();
    for (const nodes of o.sizes.split(",").map(Number)) {
      const t = Date.now();
      const sim = await startSimulator({
        nodes,
        controlPlane: 0,
        seed: 1,
        timeScale: Number(o.timeScale),
        jobDurationMs: 30_000,
        execute: { nodeImages: [BUNDLED_DISPATCHER_IMAGE], timeoutMs: 3_600_000 },
      });
      try {
        const parallelism = Number(o.parallelism);
        await deployRelease(sim, { values: { job: { parallelism } } });
        let rollout: { inputs: unknown; outputs: unknown } | undefined;
        engine.onCustom = async (reg) => {
          if (reg.type === ROLLOUT) {
            const checked = await client.check(reg.urn, {}, reg.object);
            const created = await client.create(reg.urn, checked.inputs);
            rollout = { inputs: checked.inputs, outputs: created.properties };
            return { id: created.id, outputs: created.properties };
          }
          apply(sim, [revealed(reg.object) as K8sObject]);
          return { id: `${reg.name}-id`, outputs: reg.object };
        };
        const from = engine.registrations.length;
        const result = await client.construct({
          engine,
          type: COMPONENT,
          name: "kata",
          inputs: {
            deploymentMode: "job",
            namespace: RELEASE.namespace,
            releaseName: RELEASE.name,
            job: { parallelism },
            kubeconfig: secret(fs.readFileSync(sim.kubeconfigPath, "utf8")),
            rollout: { timeoutSeconds: 3600 },
          },
        });
        const component = engine.registrations.slice(from).find((r) => r.type === COMPONENT);
        const state = result.state as { kataNodes: unknown; summary: unknown; nodeOutcomes: NodeOutcomes };
        const stackOutputs = {
          kataNodes: state.kataNodes,
          kataSummary: state.summary,
          kataNodeOutcomes: state.nodeOutcomes,
        };
        const notSucceeded = listNodeOutcomes(state.nodeOutcomes).filter(
          (r) => r.outcome !== "succeeded",
        ).length;
        const parts = {
          rolloutInputs: bytes(rollout?.inputs),
          rolloutOutputs: bytes(rollout?.outputs),
          componentInputs: bytes(component?.object),
          componentOutputs: bytes(result.state),
          stackOutputs: bytes(stackOutputs),
        };
        const total = Object.values(parts).reduce((a, b) => a + b, 0);
        const row =
          `| ${nodes} | ${Object.keys(state.nodeOutcomes.nodes).length} | ${notSucceeded} | ${parts.rolloutInputs} | ${parts.rolloutOutputs} | ` +
          `${parts.componentInputs} | ${parts.componentOutputs} | ${parts.stackOutputs} | ${total} | ` +
          `${(total / nodes).toFixed(1)} | ${((Date.now() - t) / 1000).toFixed(0)} |`;
        console.log(row);
        rows.push(row);
      } finally {
        engine.onCustom = undefined;
        await sim.close();
      }
    }
  } finally {
    await plugin.stop();
    await engine.stop();
  }
  console.log(
    [
      "",
      "| nodes | results | not succeeded | rollout inputs B | rollout outputs B | component inputs B | component outputs B | stack outputs B | total B | B/node | wall s |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
      ...rows,
    ].join("\n"),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
