// Real execution of a Node.js Job pod: ConfigMap volumes materialized, mount paths rewritten, env and
// a ServiceAccount kubeconfig given, exit code → pod outcome, output kept, SIGTERM on delete.
import * as k8s from "@kubernetes/client-node";
import assert from "node:assert/strict";
import { Clients, jobBody, startWithClients } from "./helpers";

// Talks to the API with nothing but Node built-ins, as the dispatcher bundle does.
const CLIENT_SCRIPT = `
const fs = require("node:fs");
const https = require("node:https");
const settings = JSON.parse(fs.readFileSync(process.argv[2].replace("--config=", ""), "utf8"));
const kubeconfig = fs.readFileSync(process.env.KUBECONFIG, "utf8");
const server = /server: (\\S+)/.exec(kubeconfig)[1];
const token = /token: (\\S+)/.exec(kubeconfig)[1];
const ca = Buffer.from(/certificate-authority-data: (\\S+)/.exec(kubeconfig)[1], "base64").toString();
const body = { metadata: { name: "result" }, data: { greeting: settings.greeting, node: process.env.NODE_NAME, pod: process.env.POD_NAME } };
const req = https.request(server + "/api/v1/namespaces/" + process.env.POD_NAMESPACE + "/configmaps", {
  method: "POST",
  ca,
  headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
}, (r) => {
  console.log("created result:", r.statusCode);
  r.resume();
  r.on("end", () => process.exit(r.statusCode === 201 ? 0 : 2));
});
req.end(JSON.stringify(body));
`;

const FAILING_SCRIPT = `
console.log("checking host");
for (let i = 0; i < 100; i++) console.error("noise line " + i);
console.error("fatal: no usable virtualization backend");
process.exit(3);
`;

const SLEEPING_SCRIPT = `
process.on("SIGTERM", () => { console.log("got SIGTERM"); process.exit(143); });
console.log("sleeping");
setInterval(() => {}, 1000);
`;

function nodeJob(name: string, args: string[] = []): k8s.V1Job {
  const body = jobBody(name, "exec-node", {
    containers: [
      {
        name: "run",
        image: "node:22-slim",
        command: ["node", "/opt/scripts/main.js", ...args],
        volumeMounts: [
          { name: "scripts", mountPath: "/opt/scripts" },
          { name: "settings", mountPath: "/etc/settings" },
        ],
      },
    ],
  });
  body.spec!.template.spec!.serviceAccountName = "runner";
  body.spec!.template.spec!.volumes = [
    { name: "scripts", configMap: { name: `${name}-script` } },
    { name: "settings", configMap: { name: "settings" } },
  ];
  return body;
}

describe("kube-sim real execution of Node.js Job pods", function () {
  this.timeout(300_000);
  let c: Clients;
  before(async () => {
    c = await startWithClients({
      fleet: { nodes: [{ name: "exec-node" }] },
      execute: { nodeImages: ["node:22*"] },
      podStartDelayMs: 0,
    });
    await c.core.createNamespacedServiceAccount({
      namespace: "default",
      body: { metadata: { name: "runner" } },
    });
    await c.core.createNamespacedConfigMap({
      namespace: "default",
      body: {
        metadata: { name: "settings" },
        data: { "settings.json": JSON.stringify({ greeting: "hello" }) },
      },
    });
    for (const [name, script] of [
      ["ok", CLIENT_SCRIPT],
      ["bad", FAILING_SCRIPT],
      ["sleep", SLEEPING_SCRIPT],
    ]) {
      await c.core.createNamespacedConfigMap({
        namespace: "default",
        body: { metadata: { name: `${name}-script` }, data: { "main.js": script } },
      });
    }
  });
  after(() => c.sim.close());

  const finished = (name: string) =>
    c.sim.waitFor(() => {
      const conds =
        (c.sim.get("jobs", "default", name)?.status?.conditions as
          { type: string; status: string }[] | undefined) ?? [];
      return conds.some((x) => (x.type === "Complete" || x.type === "Failed") && x.status === "True");
    }, 20_000);

  it("runs the command with the ConfigMap files, env and the ServiceAccount's kubeconfig; exit 0 completes the Job", async () => {
    await c.batch.createNamespacedJob({
      namespace: "default",
      body: nodeJob("ok", ["--config=/etc/settings/settings.json"]),
    });
    await finished("ok");
    const job = await c.batch.readNamespacedJob({ name: "ok", namespace: "default" });
    assert.ok(
      job.status?.conditions?.some((x) => x.type === "Complete" && x.status === "True"),
      JSON.stringify(c.sim.executions()),
    );
    const result = await c.core.readNamespacedConfigMap({ name: "result", namespace: "default" });
    assert.equal(result.data?.greeting, "hello");
    assert.equal(result.data?.node, "exec-node");
    const [exec] = c.sim.executions().filter((e) => e.job === "ok");
    assert.equal(exec.exitCode, 0);
    assert.equal(exec.command[0], process.execPath);
    assert.ok(
      !exec.command.some((a) => a.startsWith("/opt/scripts") || a.includes("=/etc/settings")),
      "mount paths rewritten",
    );
    assert.match(exec.stdout, /created result: 201/);
    assert.equal(result.data?.pod, exec.pod);
    const creator = c.sim.audit
      .requests({ verb: "create", resource: "configmaps" })
      .find((r) => r.name === undefined && r.code === 201 && r.user.includes("runner"));
    assert.equal(creator?.user, "system:serviceaccount:default:runner");
    const log = await c.core.readNamespacedPodLog({ name: exec.pod, namespace: "default" });
    assert.match(log, /created result: 201/);
  });

  it("a non-zero exit fails the container with the log tail as termination message", async () => {
    await c.batch.createNamespacedJob({ namespace: "default", body: nodeJob("bad") });
    await finished("bad");
    const job = await c.batch.readNamespacedJob({ name: "bad", namespace: "default" });
    assert.equal(job.status?.conditions?.find((x) => x.type === "Failed")?.reason, "BackoffLimitExceeded");
    const [exec] = c.sim.executions().filter((e) => e.job === "bad");
    assert.equal(exec.exitCode, 3);
    const pod = await c.core.readNamespacedPod({ name: exec.pod, namespace: "default" });
    assert.equal(pod.status?.phase, "Failed");
    const terminated = pod.status?.containerStatuses?.[0].state?.terminated;
    assert.equal(terminated?.exitCode, 3);
    assert.equal(terminated?.reason, "Error");
    const message = terminated?.message ?? "";
    assert.ok(message.endsWith("fatal: no usable virtualization backend"), message.slice(-200));
    assert.equal(message.split("\n").length, 80, "the last 80 lines of the log");
    assert.ok(!message.includes("checking host"));
  });

  it("SIGTERMs the process when its Job is deleted", async () => {
    await c.batch.createNamespacedJob({ namespace: "default", body: nodeJob("sleep") });
    await c.sim.waitFor(
      () => c.sim.executions().some((e) => e.job === "sleep" && e.stdout.includes("sleeping")),
      10_000,
    );
    await c.batch.deleteNamespacedJob({
      name: "sleep",
      namespace: "default",
      propagationPolicy: "Background",
    });
    await c.sim.waitFor(
      () => c.sim.executions().some((e) => e.job === "sleep" && e.finishedAt !== undefined),
      10_000,
    );
    const [exec] = c.sim.executions().filter((e) => e.job === "sleep");
    assert.match(exec.stdout, /got SIGTERM/);
    assert.equal(exec.exitCode, 143);
  });
});
