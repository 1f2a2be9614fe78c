// A real Helm 4 binary against kube-sim with the kubeconfig the simulator writes and default flags: install,
// upgrade and uninstall of a small chart this test writes, with a pre-install/pre-upgrade hook Job Helm waits
// for and deletes, release storage in Secrets, and resources applied server-side (Helm 4's default).
// Outcomes are checked in the simulator's store and audit log.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { RunningSimulator, startSimulator } from "../../sim";
import { layerBinary, requireBinary } from "../realBinaries";
import { ClientEnv, clientEnv, ok } from "./run";

function writeChart(dir: string): void {
  fs.mkdirSync(path.join(dir, "templates"), { recursive: true });
  fs.writeFileSync(path.join(dir, "Chart.yaml"), "apiVersion: v2\nname: demo\nversion: 0.1.0\n");
  fs.writeFileSync(path.join(dir, "values.yaml"), "greeting: hello\n");
  fs.writeFileSync(
    path.join(dir, "templates", "settings.yaml"),
    `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
  labels:
    app.kubernetes.io/instance: {{ .Release.Name }}
data:
  greeting: {{ .Values.greeting | quote }}
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-token
stringData:
  token: "not-a-real-token"
`,
  );
  // Kinds a real chart brings besides ConfigMaps: a Namespace (client-side validated against OpenAPI v2), a
  // Service and a DaemonSet.
  fs.writeFileSync(
    path.join(dir, "templates", "workload.yaml"),
    `apiVersion: v1
kind: Namespace
metadata:
  name: {{ .Release.Name }}-space
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-web
spec:
  selector:
    app: {{ .Release.Name }}-agent
  ports:
    - port: 80
      targetPort: 8080
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {{ .Release.Name }}-agent
spec:
  selector:
    matchLabels:
      app: {{ .Release.Name }}-agent
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}-agent
    spec:
      containers:
        - name: agent
          image: agent:{{ .Values.greeting }}
`,
  );
  fs.writeFileSync(
    path.join(dir, "templates", "hook.yaml"),
    `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-prepare
  annotations:
    "helm.sh/hook": pre-install,pre-upgrade
    "helm.sh/hook-delete-policy": before-hook-creation,hook-succeeded
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      nodeSelector:
        node-role.kubernetes.io/worker: ""
      containers:
        - name: prepare
          image: busybox:1.36
          command: ["true"]
`,
  );
}

describe("real Helm 4 against kube-sim", function () {
  this.timeout(300_000);
  let helm: string;
  let sim: RunningSimulator;
  let env: ClientEnv;
  let chart: string;
  const h = (...args: string[]): Promise<string> => ok(helm, args, env);

  before(async function () {
    helm = await requireBinary(this, "Helm 4 (layer)", () => layerBinary("helm"));
    sim = await startSimulator({ nodes: 2, controlPlane: 1, seed: 3, timeScale: 1000, jobDurationMs: 5_000 });
    env = clientEnv(sim.kubeconfigPath);
    chart = path.join(env.home, "demo");
    writeChart(chart);
  });
  after(async () => {
    env?.close();
    await sim?.close();
  });

  const releaseSecrets = (): string[] =>
    sim
      .list("secrets", { namespace: "default", labelSelector: "owner=helm,name=demo" })
      .map((s) => s.metadata.name as string)
      .sort();

  it("installs: the pre-install hook Job runs to completion and is deleted before the chart's objects exist", async () => {
    const out = await h("install", "demo", chart);
    assert.match(out, /STATUS: deployed/);
    assert.deepEqual(sim.get("configmaps", "default", "demo-settings")?.data, { greeting: "hello" });
    const secret = sim.get("secrets", "default", "demo-token");
    assert.equal(secret?.type, "Opaque");
    assert.deepEqual(releaseSecrets(), ["sh.helm.release.v1.demo.v1"]);
    assert.equal(sim.get("secrets", "default", "sh.helm.release.v1.demo.v1")?.type, "helm.sh/release.v1");
    const t = sim.audit.transitions();
    const hookDone = t.findIndex((x) => x.kind === "jobComplete" && x.name === "demo-prepare");
    const hookGone = t.findIndex(
      (x) => x.resource === "jobs" && x.kind === "deleted" && x.name === "demo-prepare",
    );
    const settings = t.findIndex((x) => x.resource === "configmaps" && x.name === "demo-settings");
    assert.ok(hookDone >= 0, "the hook Job completed");
    assert.ok(hookGone > hookDone, "hook-succeeded: Helm deleted the hook Job after it completed");
    assert.ok(settings > hookDone, "the chart's objects come after the pre-install hook");
    const managers = (
      sim.get("configmaps", "default", "demo-settings")?.metadata.managedFields as { operation: string }[]
    ).map((m) => m.operation);
    assert.deepEqual(managers, ["Apply"], "Helm 4 applies server-side");
    assert.equal(sim.get("namespaces", undefined, "demo-space")?.status?.phase, "Active");
    assert.deepEqual((sim.get("services", "default", "demo-web")?.spec as { ports: unknown[] }).ports, [
      { port: 80, targetPort: 8080 },
    ]);
    assert.ok(sim.get("daemonsets", "default", "demo-agent"));
  });

  it("upgrades: the hook runs again, the object changes, a second release revision is stored", async () => {
    const out = await h("upgrade", "demo", chart, "--set", "greeting=bonjour");
    assert.match(out, /REVISION: 2/);
    assert.deepEqual(sim.get("configmaps", "default", "demo-settings")?.data, { greeting: "bonjour" });
    assert.deepEqual(releaseSecrets(), ["sh.helm.release.v1.demo.v1", "sh.helm.release.v1.demo.v2"]);
    const hookRuns = sim.audit.transitions("jobs").filter((x) => x.kind === "jobComplete");
    assert.equal(hookRuns.length, 2);
    assert.match(await h("list"), /^demo\s+default\s+2\s+.*deployed/m);
  });

  it("uninstalls: the chart's objects and the release Secrets are gone", async () => {
    assert.match(await h("uninstall", "demo"), /release "demo" uninstalled/);
    assert.equal(sim.get("configmaps", "default", "demo-settings"), undefined);
    assert.equal(sim.get("secrets", "default", "demo-token"), undefined);
    assert.equal(sim.get("services", "default", "demo-web"), undefined);
    assert.equal(sim.get("daemonsets", "default", "demo-agent"), undefined);
    const space = sim.get("namespaces", undefined, "demo-space");
    assert.ok(!space || space.metadata.deletionTimestamp, "the chart's Namespace is gone or going");
    assert.deepEqual(releaseSecrets(), []);
  });
});
