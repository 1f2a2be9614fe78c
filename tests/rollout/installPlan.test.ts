import { strict as assert } from "node:assert";
import * as net from "node:net";
import { encodeResults } from "../../rollout/compact";
import {
  describeInstallPlan,
  installPlanOf,
  PLAN_NAMES_SHOWN,
  readInstallPlan,
} from "../../rollout/installPlan";
import type { RolloutInputs, RolloutOutputs } from "../../rollout/types";
import { nodeWithRecord } from "./nodeRecords";
import { serializedProvider } from "./serialized";

const PAYLOAD = "p1:0123456789abcdef0123456789abcdef";
const NAMESPACE = "kube-system";
const INSTALL = "kata-deploy-install";
const CLEANUP = "kata-deploy-cleanup";

const inputs: RolloutInputs = {
  connection: { server: "https://127.0.0.1:1" },
  namespace: NAMESPACE,
  mode: "job",
  runKey: "key",
  install: { job: {}, ownerValue: INSTALL, selection: {}, tolerations: [], payload: PAYLOAD },
  cleanup: { job: {}, ownerValue: CLEANUP, selection: {} },
  daemonSetName: "kata-deploy",
  installDispatcherJobName: "kata-deploy-install-dispatcher",
  timeoutSeconds: 60,
  healDrift: true,
  cleanupOnDestroy: true,
};

const installed = (name: string, payload = PAYLOAD) =>
  nodeWithRecord(name, NAMESPACE, { owner: INSTALL, outcome: "succeeded", payload });
const tainted = (name: string) => ({
  metadata: { name },
  spec: { taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" as const }] },
});

/** A port nothing listens on: connections to it are refused at once. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("rollout: the install plan a preview shows (issue #13 item 5)", () => {
  it("says per node why the next run installs it, from its record, as --skip-installed-nodes will decide", () => {
    const listed = [
      installed("carries"),
      installed("other-payload", "p1:ffffffffffffffffffffffffffffffff"),
      nodeWithRecord("failed", NAMESPACE, { owner: INSTALL, outcome: "failed", payload: PAYLOAD }),
      nodeWithRecord("cleaned", NAMESPACE, { owner: CLEANUP, outcome: "succeeded" }),
      { metadata: { name: "joined" } },
      { metadata: { name: "gpu" } },
      { metadata: { name: "deleted-meanwhile" } },
    ];
    // Full objects are read only for the nodes that need an install; one was deleted before that read.
    const full = listed.filter((n) => !["carries", "deleted-meanwhile"].includes(n.metadata.name));
    const reading = installPlanOf(
      inputs,
      [listed],
      full.map((n) => (n.metadata.name === "gpu" ? tainted("gpu") : n)),
    );
    assert.deepEqual(reading.plan, {
      selected: 7,
      install: 4,
      new: "cleaned, joined",
      changed: "other-payload",
      failed: "failed",
      blocked: "gpu",
    });
    assert.equal(
      describeInstallPlan("KataDeploy", reading),
      "KataDeploy: the next run installs 4 of 7 selected node(s): new (2): cleaned, joined; another payload (1): other-payload; failed before (1): failed; left out for taints (1): gpu",
    );
  });

  it("names the first 50 nodes of a reason and counts the rest; the log line names them all", () => {
    const names = Array.from({ length: 60 }, (_, i) => `n${String(i).padStart(2, "0")}`);
    const nodes = names.map((name) => ({ metadata: { name } }));
    const reading = installPlanOf(inputs, [nodes], nodes);
    assert.equal(reading.plan.install, 60);
    assert.equal(reading.plan.new, `${names.slice(0, PLAN_NAMES_SHOWN).join(", ")} and 10 more`);
    assert.ok(describeInstallPlan("k", reading).endsWith(names.join(", ")));
  });

  it("plans nothing where records say nothing: daemonset mode, the upstream dispatcher, drift healing off", async () => {
    assert.equal(await readInstallPlan({ ...inputs, healDrift: false }), undefined);
    assert.equal(
      await readInstallPlan({ ...inputs, install: { ...inputs.install!, payload: undefined } }),
      undefined,
    );
    assert.equal(await readInstallPlan({ ...inputs, mode: "daemonset" }), undefined);
  });

  it("an unreadable cluster is a plan that says so, and the diff shows the update (never a silent no-change)", async () => {
    const server = `https://127.0.0.1:${await closedPort()}`;
    const reading = await readInstallPlan({ ...inputs, connection: { server } });
    assert.match(
      reading?.plan.unreadable ?? "",
      new RegExp(`^cannot read the nodes at ${server}.*ECONNREFUSED`),
    );
    assert.equal(reading?.plan.install, undefined);

    const { provider } = await serializedProvider();
    const olds: RolloutOutputs = {
      ...inputs,
      results: encodeResults([{ node: "failed", outcome: "failed", attempts: 3 }], INSTALL),
      summary: { total: 1, succeeded: 0, failed: 1, skipped: 0, durationSeconds: 1 },
      runId: "run",
      lastRunKey: inputs.runKey,
    };
    const diff = (plan: RolloutInputs["plan"]) => provider.diff!("id", olds, { ...inputs, plan });
    assert.deepEqual(await diff(reading?.plan), { changes: true });
    assert.deepEqual(await diff({ selected: 3, install: 1, failed: "failed" }), { changes: true });
    // The records are the truth: the node the last run failed on carries the payload now (installed since).
    assert.deepEqual(await diff({ selected: 3, install: 0 }), { changes: false });
  });
});
