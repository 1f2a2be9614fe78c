import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { renderChart } from "../../chart/render";
import type { Job, RoleLike } from "../../chart/k8s";
import { tempDir } from "../tempDir";

// kata-deploy-chart.md §2.1 and §6: the post-delete hooks that remove the RBAC Helm keeps.
const release = { name: "kata", namespace: "kube-system" };

describe("chart/render: post-delete RBAC cleanup hooks", () => {
  it("SA, ClusterRole, ClusterRoleBinding at weight -5, then the Job at weight 0, in both modes", () => {
    for (const mode of ["daemonset", "job"]) {
      const objects = renderChart({ deploymentMode: mode, env: { multiInstallSuffix: "dev" } }, release).hooks
        .postDeleteRbacCleanup;
      assert.deepEqual(
        objects.map((o) => [
          o.kind,
          o.metadata.name,
          o.metadata.annotations?.["helm.sh/hook"],
          o.metadata.annotations?.["helm.sh/hook-weight"],
          o.metadata.annotations?.["helm.sh/hook-delete-policy"],
        ]),
        [
          [
            "ServiceAccount",
            "kata-deploy-sa-cleanup-dev",
            "post-delete",
            "-5",
            "before-hook-creation,hook-succeeded",
          ],
          [
            "ClusterRole",
            "kata-deploy-cleanup-role-dev",
            "post-delete",
            "-5",
            "before-hook-creation,hook-succeeded",
          ],
          [
            "ClusterRoleBinding",
            "kata-deploy-cleanup-rb-dev",
            "post-delete",
            "-5",
            "before-hook-creation,hook-succeeded",
          ],
          ["Job", "kata-deploy-rb-cleanup-dev", "post-delete", "0", "before-hook-creation,hook-succeeded"],
        ],
      );
      assert.deepEqual((objects[1] as RoleLike).rules, [
        {
          apiGroups: ["rbac.authorization.k8s.io"],
          resources: ["clusterroles", "clusterrolebindings", "roles", "rolebindings"],
          verbs: ["delete"],
        },
        { apiGroups: [""], resources: ["serviceaccounts"], verbs: ["delete"] },
      ]);
      const job = objects[3] as Job;
      assert.equal(job.spec.backoffLimit, 3);
      assert.equal(job.spec.ttlSecondsAfterFinished, 300);
      assert.deepEqual(job.spec.template.metadata, { labels: { name: "kata-deploy-rb-cleanup-dev" } });
      const pod = job.spec.template.spec;
      assert.equal(pod.restartPolicy, "OnFailure");
      assert.equal(pod.serviceAccountName, "kata-deploy-sa-cleanup-dev");
      assert.equal(pod.containers[0].image, "quay.io/kata-containers/kubectl:latest");
      assert.deepEqual(pod.containers[0].env, [
        { name: "NAMESPACE", value: "kube-system" },
        { name: "DAEMONSET_POD_LABEL", value: "name=kata-deploy-dev" },
        { name: "CLUSTER_ROLE_BINDING_NAME", value: "kata-deploy-rb-dev" },
        { name: "CLUSTER_ROLE_NAME", value: "kata-deploy-role-dev" },
        { name: "SERVICE_ACCOUNT_NAME", value: "kata-deploy-sa-dev" },
        ...(mode === "job"
          ? [
              { name: "DISPATCHER_SERVICE_ACCOUNT_NAME", value: "kata-deploy-dispatcher-sa-dev" },
              { name: "DISPATCHER_NODE_ROLE_NAME", value: "kata-deploy-dispatcher-noderole-dev" },
              { name: "DISPATCHER_NODE_ROLE_BINDING_NAME", value: "kata-deploy-dispatcher-noderb-dev" },
              { name: "DISPATCHER_ROLE_NAME", value: "kata-deploy-dispatcher-role-dev" },
              { name: "DISPATCHER_ROLE_BINDING_NAME", value: "kata-deploy-dispatcher-rb-dev" },
            ]
          : []),
      ]);
    }
    const plain = renderChart({}, release).hooks.postDeleteRbacCleanup[3] as Job;
    assert.equal("metadata" in plain.spec.template, false);
  });

  const runScript = (job: Job): string[] => {
    const container = job.spec.template.spec.containers[0];
    const dir = tempDir("rb-cleanup-");
    try {
      const log = path.join(dir, "calls.log");
      // A fake kubectl: records its arguments; `get pods` finds none.
      fs.writeFileSync(path.join(dir, "kubectl"), `#!/bin/sh\necho "$*" >> "${log}"\nexit 0\n`, {
        mode: 0o755,
      });
      const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? ""]));
      const [shell, flag, script] = container.command ?? [];
      const run = spawnSync(shell, [flag, script], {
        env: { ...env, PATH: `${dir}:${process.env.PATH}` },
        encoding: "utf8",
        // A bound, not an expectation: the script runs in milliseconds, but a machine at load 18 once took over 8 s.
        timeout: 60_000,
      });
      assert.equal(run.status, 0, `${run.signal ?? ""} ${run.stderr}`);
      return fs.readFileSync(log, "utf8").trim().split("\n");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
  const KEPT = [
    "get pods -n kube-system -l name=kata-deploy -o name",
    "delete clusterrolebinding kata-deploy-rb --ignore-not-found --wait=false",
    "delete clusterrole kata-deploy-role --ignore-not-found --wait=false",
    "delete serviceaccount kata-deploy-sa -n kube-system --ignore-not-found --wait=false",
  ];

  it("the cleanup script deletes the binding, the role and the SA, in that order, once no DaemonSet pod is left", function () {
    this.timeout(300_000);
    assert.deepEqual(runScript(renderChart({}, release).hooks.postDeleteRbacCleanup[3] as Job), KEPT);
  });

  it("in job mode it also deletes the dispatcher's RoleBinding, Role, ClusterRoleBinding, ClusterRole and SA (as chart 4.0.0 does)", function () {
    this.timeout(300_000);
    const job = renderChart({ deploymentMode: "job" }, release).hooks.postDeleteRbacCleanup[3] as Job;
    assert.deepEqual(runScript(job), [
      ...KEPT,
      "delete rolebinding kata-deploy-dispatcher-rb -n kube-system --ignore-not-found --wait=false",
      "delete role kata-deploy-dispatcher-role -n kube-system --ignore-not-found --wait=false",
      "delete clusterrolebinding kata-deploy-dispatcher-noderb --ignore-not-found --wait=false",
      "delete clusterrole kata-deploy-dispatcher-noderole --ignore-not-found --wait=false",
      "delete serviceaccount kata-deploy-dispatcher-sa -n kube-system --ignore-not-found --wait=false",
    ]);
  });
});
