// Shared fixtures for the dispatcher's simulator tests: a chart-like install template, fleets, the owner Job,
// and ground-truth checks read from the simulator's store and audit log.
import { strict as assert } from "node:assert";
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import type { FleetNode, OutcomeProgram, Simulator } from "../../sim/types";
import { chartNames } from "../../chart/names";
import type { ResultsDocument } from "../../dispatcher/run";
import { tempDir } from "../tempDir";

export const NS = "kube-system";
export const PREFIX = "kata-deploy-install";
export const OWNER_JOB = "kata-deploy-install-dispatcher";

/** The shape of chart 4.0.0's install template (kata-deploy-chart.md §4), trimmed to what the simulator runs. */
export function installTemplate(
  opts: { backoffLimit?: number; tolerations?: string; ttlSeconds?: number } = {},
): string {
  return `apiVersion: batch/v1
kind: Job
metadata:
  labels:
    app.kubernetes.io/name: kata-deploy
    app.kubernetes.io/instance: kata-deploy
    kata-deploy/stage: install
spec:
  backoffLimit: ${opts.backoffLimit ?? 3}
  ttlSecondsAfterFinished: ${opts.ttlSeconds ?? 600}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: kata-deploy
        kata-deploy/stage: install
    spec:
      restartPolicy: Never
      tolerations:${opts.tolerations ?? " []"}
      initContainers:
      - name: host-check
        image: quay.io/kata-containers/kata-deploy:3.32.0
        command: ["/usr/bin/kata-deploy", "install-stage-host-check"]
      - name: artifacts
        image: quay.io/kata-containers/kata-deploy:3.32.0
        command: ["/usr/bin/kata-deploy", "install-stage-artifacts"]
      containers:
      - name: cri
        image: quay.io/kata-containers/kata-deploy:3.32.0
        command: ["/usr/bin/kata-deploy", "install-stage-cri"]
`;
}

export function writeTemplate(text: string): string {
  const dir = tempDir("dispatcher-test-");
  const file = path.join(dir, "install-job.yaml");
  writeFileSync(file, text);
  return file;
}

/** A deterministic pseudo-random generator (tests must be reproducible): the simulator's own. */
export { seededRandom as rng } from "../../sim/faults";

export function worker(
  name: string,
  outcome?: OutcomeProgram,
  labels: Record<string, string> = {},
): FleetNode {
  return {
    name,
    labels: { "kubernetes.io/os": "linux", ...labels },
    containerRuntimeVersion: "containerd://2.1.5",
    machineID: name,
    outcome,
  };
}

export function controlPlane(name: string): FleetNode {
  return {
    name,
    labels: { "kubernetes.io/os": "linux", "node-role.kubernetes.io/control-plane": "" },
    taints: [{ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" }],
  };
}

export function tainted(name: string): FleetNode {
  return {
    name,
    labels: { "kubernetes.io/os": "linux" },
    taints: [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }],
  };
}

/** The dispatcher's own Job, suspended so the simulator runs no pod for it. */
export function createOwnerJob(sim: Simulator, name = OWNER_JOB): string {
  const job = sim.create("jobs", {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name, namespace: NS, labels: { "kata-deploy/dispatcher": "install" } },
    spec: {
      suspend: true,
      backoffLimit: 0,
      template: {
        spec: { restartPolicy: "Never", containers: [{ name: "dispatcher", image: "node:22-alpine" }] },
      },
    },
  });
  return job.metadata.uid as string;
}

/** Ground truth per node from the simulator: Jobs with this owner label pinned to that node. */
export function jobsPerNode(sim: Simulator, owner = PREFIX) {
  const byNode = sim.audit.jobsByNode();
  const out = new Map<
    string,
    { jobs: { name: string; outcome: string; reason?: string }[]; maxConcurrentActive: number }
  >();
  for (const [node, report] of Object.entries(byNode)) {
    const jobs = report.jobs.filter((j) => j.owner === owner);
    if (jobs.length > 0) out.set(node, { jobs, maxConcurrentActive: report.maxConcurrentActive });
  }
  return out;
}

/** Every expected node has exactly one Job that succeeded, never two at once; no other node got a Job. */
export function assertCoveredExactlyOnce(sim: Simulator, expected: readonly string[], owner = PREFIX): void {
  const truth = jobsPerNode(sim, owner);
  const missing = expected.filter((n) => !truth.has(n));
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} selected node(s) without a Job`);
  const extra = [...truth.keys()].filter((n) => !expected.includes(n));
  assert.deepEqual(extra.slice(0, 10), [], `${extra.length} unselected node(s) got a Job`);
  for (const node of expected) {
    const report = truth.get(node);
    assert.equal(report?.jobs.length, 1, `node ${node}: ${report?.jobs.length} Jobs`);
    assert.equal(report?.jobs[0].outcome, "succeeded", `node ${node}: ${JSON.stringify(report?.jobs[0])}`);
    assert.ok((report?.maxConcurrentActive ?? 0) <= 1, `node ${node} ran two Jobs at once`);
  }
}

/** The results document agrees with the simulator's record for every node it names. */
export function assertResultsMatchTruth(sim: Simulator, doc: ResultsDocument, owner = PREFIX): void {
  const truth = jobsPerNode(sim, owner);
  for (const r of doc.nodes) {
    const record = truth.get(r.node);
    if (r.outcome === "skipped") {
      assert.equal(record, undefined, `skipped node ${r.node} has a Job`);
      continue;
    }
    const last = record?.jobs[record.jobs.length - 1];
    assert.equal(last?.name, r.job, `node ${r.node}: results name Job ${r.job}, simulator has ${last?.name}`);
    if (r.outcome === "succeeded") assert.equal(last?.outcome, "succeeded", `node ${r.node}`);
    if (r.reason === "BackoffLimitExceeded") assert.equal(last?.outcome, "failed", `node ${r.node}`);
  }
}

export function countsOf(doc: ResultsDocument): string {
  return `${doc.counts.succeeded}/${doc.counts.failed}/${doc.counts.skipped}`;
}

/** Chart 4.0.0's dispatcher RBAC (kata-deploy-chart.md §2.3, §6), optionally with verbs removed or pods added. */
const chartRbacNames = chartNames();

export function grantChartRbac(
  sim: Simulator,
  opts: { jobVerbs?: readonly string[]; nodeVerbs?: readonly string[]; pods?: boolean } = {},
): void {
  const sa = chartRbacNames.dispatcherServiceAccount;
  sim.create("serviceaccounts", {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: sa, namespace: NS },
  });
  sim.create("clusterroles", {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: chartRbacNames.dispatcherNodeClusterRole },
    rules: [{ apiGroups: [""], resources: ["nodes"], verbs: opts.nodeVerbs ?? ["list"] }],
  });
  sim.create("clusterrolebindings", {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name: chartRbacNames.dispatcherNodeClusterRoleBinding },
    roleRef: {
      apiGroup: "rbac.authorization.k8s.io",
      kind: "ClusterRole",
      name: chartRbacNames.dispatcherNodeClusterRole,
    },
    subjects: [{ kind: "ServiceAccount", name: sa, namespace: NS }],
  });
  const rules: Record<string, unknown>[] = [
    {
      apiGroups: ["batch"],
      resources: ["jobs"],
      verbs: opts.jobVerbs ?? ["create", "get", "list", "watch", "delete"],
    },
  ];
  if (opts.pods) rules.push({ apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] });
  sim.create("roles", {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { name: chartRbacNames.dispatcherRole, namespace: NS },
    rules,
  });
  sim.create("rolebindings", {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name: chartRbacNames.dispatcherRoleBinding, namespace: NS },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: chartRbacNames.dispatcherRole },
    subjects: [{ kind: "ServiceAccount", name: sa, namespace: NS }],
  });
}
