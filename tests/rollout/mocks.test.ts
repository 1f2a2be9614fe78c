// KataRollout under Pulumi's mock runtime: what is registered, and that credentials stay secret.
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { renderChart } from "../../chart/render";
import { encodeResults } from "../../rollout/compact";
import { buildRolloutInputs, KataRollout, rolloutResourceOptions } from "../../rollout/index";
import type { RolloutInputs } from "../../rollout/types";

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const BUNDLE = {
  configMapName: "kata-deploy-dispatcher-script",
  entry: "dispatcher.js",
  sha256: "a".repeat(64),
};
const CONNECTION = {
  server: "https://10.0.0.1:6443",
  token: "super-secret-token-value",
  caData: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
};

interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}

const value = <T>(o: pulumi.Output<T>) => new Promise<T>((r) => o.apply(r));

function isSecret(v: unknown): v is { value: unknown } {
  return !!v && typeof v === "object" && (v as Record<string, unknown>)[SECRET_SIG] !== undefined;
}

describe("KataRollout under mocks", function () {
  this.timeout(300_000);
  const registered: Registered[] = [];

  before(async () => {
    await pulumi.runtime.setMocks(
      {
        newResource: (args) => {
          registered.push({ type: args.type, name: args.name, inputs: args.inputs });
          // The engine would run create; the mock returns what create returns for one node.
          const state = {
            ...args.inputs,
            // A provider receives and returns plaintext (acceptSecrets=false); the wrapper must re-mark it secret.
            connection: CONNECTION,
            results: encodeResults(
              [
                { node: "w1", outcome: "succeeded", attempts: 1, job: "kata-deploy-install-w1" },
                { node: "w0", outcome: "failed", attempts: 4, reason: "BackoffLimitExceeded" },
                { node: "w2", outcome: "succeeded", attempts: 1 },
              ],
              "kata-deploy-install",
            ),
            summary: { total: 3, succeeded: 2, failed: 1, skipped: 0, durationSeconds: 12 },
            runId: "20261125T140000Z-abcdef01",
          };
          return { id: "kata-deploy/kata-deploy", state };
        },
        call: (args) => args.inputs,
      },
      "project",
      "stack",
      false,
    );
  });

  function jobModeInputs(extra: Partial<RolloutInputs> = {}): RolloutInputs {
    const values = { deploymentMode: "job" };
    const release = { name: "kata", namespace: "kube-system" };
    return {
      ...buildRolloutInputs({
        namespace: release.namespace,
        releaseName: release.name,
        chart: { chart: "oci://ghcr.io/kata-containers/kata-deploy-charts/kata-deploy", version: "4.0.0" },
        rendered: renderChart(values, release),
        connection: CONNECTION,
        bundle: BUNDLE,
      }),
      ...extra,
    };
  }

  it("registers the dynamic resource with the install dispatcher Job, its owner and selection, and a secret connection", async () => {
    const r = new KataRollout("kata-rollout", jobModeInputs());
    const results = await value(r.nodeResults);
    assert.deepEqual(
      results.map((x) => [x.node, x.outcome]),
      [
        ["w1", "succeeded"],
        ["w0", "failed"],
        ["w2", "succeeded"],
      ],
    );
    assert.equal(
      results[0].job,
      "kata-deploy-install-w1",
      "the documented shape is exposed, not the compact one",
    );
    assert.deepEqual(await value(r.kataNodes), ["w1", "w2"]);
    assert.deepEqual(await value(r.summary), {
      total: 3,
      succeeded: 2,
      failed: 1,
      skipped: 0,
      durationSeconds: 12,
    });
    const reg = registered.find((x) => x.name === "kata-rollout");
    assert.ok(reg);
    assert.equal(reg.type, "pulumi-nodejs:dynamic/kata-deploy:KataRollout");
    assert.ok(isSecret(reg.inputs.connection), "connection must be a secret input");
    assert.deepEqual(reg.inputs.connection.value, CONNECTION);
    const install = reg.inputs.install as {
      job: {
        metadata: { name: string };
        spec: { template: { spec: { serviceAccountName: string; containers: { command: string[] }[] } } };
      };
      ownerValue: string;
      selection: unknown;
    };
    assert.equal(install.job.metadata.name, "kata-deploy-install-dispatcher");
    assert.equal(install.job.spec.template.spec.serviceAccountName, "kata-deploy-dispatcher-sa");
    assert.deepEqual(install.job.spec.template.spec.containers[0].command.slice(0, 2), [
      "node",
      "/opt/kata-dispatcher/dispatcher.js",
    ]);
    assert.equal(install.ownerValue, "kata-deploy-install");
    assert.deepEqual(install.selection, {
      selectors: ["!node-role.kubernetes.io/control-plane,!node-role.kubernetes.io/master"],
    });
    assert.equal((reg.inputs.cleanup as { ownerValue: string }).ownerValue, "kata-deploy-cleanup");
    assert.equal(reg.inputs.mode, "job");
    assert.match(String(reg.inputs.runKey), /^v1:[0-9a-f]{64}$/);
    // The serialized provider rides along; it must not have captured any credential.
    const providerText = String(reg.inputs.__provider);
    assert.ok(providerText.length > 1000);
    assert.ok(!providerText.includes(CONNECTION.token), "the provider code must not capture the token");
    // Nothing but the secret-wrapped connection carries the token.
    const plain = JSON.stringify({ ...reg.inputs, connection: undefined });
    assert.ok(!plain.includes(CONNECTION.token));
  });

  it("asks the engine to mark the connection output secret (additionalSecretOutputs), keeping the caller's options", () => {
    // The mock monitor does not apply additionalSecretOutputs (the engine does), so the options themselves are checked.
    assert.deepEqual(rolloutResourceOptions().additionalSecretOutputs, ["connection"]);
    const merged = rolloutResourceOptions({
      additionalSecretOutputs: ["summary", "connection"],
      protect: true,
    });
    assert.deepEqual(merged.additionalSecretOutputs, ["summary", "connection"]);
    assert.equal(merged.protect, true);
  });

  it("takes the whole input object as an Output (as the component will pass it)", async () => {
    const r = new KataRollout(
      "kata-rollout-3",
      pulumi.output(jobModeInputs({ timeoutSeconds: 120, healDrift: false })),
    );
    await value(r.runId);
    const reg = registered.find((x) => x.name === "kata-rollout-3");
    assert.equal(reg?.inputs.timeoutSeconds, 120);
    assert.equal(reg?.inputs.healDrift, false);
    assert.ok(isSecret(reg?.inputs.connection));
  });

  it("builds daemonset-mode inputs that wait for the chart's DaemonSet", () => {
    const release = { name: "kata", namespace: "kube-system" };
    const inputs = buildRolloutInputs({
      namespace: "kube-system",
      releaseName: "kata",
      chart: { chart: "oci://x/kata-deploy", version: "4.0.0" },
      rendered: renderChart({}, release),
      connection: CONNECTION,
    });
    assert.equal(inputs.mode, "daemonset");
    assert.deepEqual(inputs.daemonSet?.podSelector, { name: "kata-deploy" });
    assert.equal(inputs.install, undefined);
  });

  it("re-run rule: the run key moves with values that reach the Jobs, the implementation and rerunToken only", () => {
    const release = { name: "kata", namespace: "kube-system" };
    const key = (
      values: Record<string, unknown>,
      extra: { rerunToken?: string; impl?: "bundled" | "upstream"; sha?: string } = {},
    ) =>
      buildRolloutInputs({
        namespace: "kube-system",
        releaseName: "kata",
        chart: { chart: "oci://x/kata-deploy", version: "4.0.0" },
        rendered: renderChart(values, release),
        connection: CONNECTION,
        bundle: { ...BUNDLE, sha256: extra.sha ?? BUNDLE.sha256 },
        dispatcherImplementation: extra.impl,
        rerunToken: extra.rerunToken,
        rollout: { timeoutSeconds: 99 },
      }).runKey;
    const k = key({ deploymentMode: "job" });
    assert.equal(key({ deploymentMode: "job" }), k);
    assert.notEqual(
      key({ deploymentMode: "job", job: { backoffLimit: 5 } }),
      k,
      "per-node Job template value",
    );
    assert.notEqual(key({ deploymentMode: "job", job: { parallelism: 7 } }), k, "dispatcher value");
    assert.notEqual(key({ deploymentMode: "job" }, { rerunToken: "again" }), k);
    assert.notEqual(key({ deploymentMode: "job" }, { impl: "upstream" }), k);
    assert.notEqual(key({ deploymentMode: "job" }, { sha: "b".repeat(64) }), k, "script hash");
    // A value that reaches neither (the monitor DaemonSet) does not re-run the install.
    assert.equal(key({ deploymentMode: "job", monitor: { enabled: true } }), k);
  });
});
