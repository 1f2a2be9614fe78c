import assert from "node:assert/strict";
import { renderChart, withoutHookAnnotations } from "../../chart/render";
import { UnsupportedOperatorError } from "../../chart/selectors";
import type { Job } from "../../chart/k8s";

// Expectations by hand from kata-deploy-chart.md §2.3, §2.4 (t63 names), §3.4 (selector compilation, OLD
// precedence), §5 (OLD dispatcher Job spec) and design.md §1 (the 4.0.0 cleanup dispatcher).
const release = { name: "kata", namespace: "kube-system" };

function hooks(values: Record<string, unknown> = {}) {
  return renderChart({ deploymentMode: "job", ...values }, release).hooks;
}
function install(values: Record<string, unknown> = {}): Job {
  const job = hooks(values).installDispatcher;
  assert.ok(job);
  return job;
}
function cleanup(values: Record<string, unknown> = {}): Job {
  const job = hooks(values).cleanupDispatcher;
  assert.ok(job);
  return job;
}
const command = (job: Job) => job.spec.template.spec.containers[0].command;
const selectionFlags = (job: Job) =>
  (command(job) ?? []).filter((a) => a.startsWith("--nodes=") || a.startsWith("--node-selector="));

describe("chart/render: install dispatcher hook", () => {
  it("defaults: the full command line", () => {
    assert.deepEqual(command(install()), [
      "/usr/bin/kata-deploy-job-dispatcher",
      "--job-template=/etc/kata-job/install-job.yaml",
      "--name-prefix=kata-deploy-install",
      "--owner-job-name=kata-deploy-install-dispatcher",
      "--parallelism=100",
      "--node-selector=!node-role.kubernetes.io/control-plane,!node-role.kubernetes.io/master",
    ]);
  });

  it("job.nodes wins over every selector", () => {
    assert.deepEqual(
      selectionFlags(install({ job: { nodes: ["worker-1", "worker-2"], nodeSelector: { a: "b" } } })),
      ["--nodes=worker-1,worker-2"],
    );
  });

  it("custom nodeSelector (sorted keys, first) and expressions (in order)", () => {
    const job = install({
      job: {
        nodeSelector: { "kata-containers": "enabled", "disk-type": "ssd" },
        nodeSelectorExpressions: [
          { key: "kubernetes.io/os", operator: "In", values: ["linux"] },
          { key: "tier", operator: "NotIn", values: ["a", "b"] },
          { key: "gpu", operator: "Exists" },
        ],
      },
    });
    assert.deepEqual(selectionFlags(job), [
      "--node-selector=disk-type=ssd,kata-containers=enabled,kubernetes.io/os in (linux),tier notin (a,b),gpu",
    ]);
  });

  it("nodeSelectorExpressions [] (or null) and no nodeSelector: no selection flag at all (every node)", () => {
    assert.deepEqual(selectionFlags(install({ job: { nodeSelectorExpressions: [] } })), []);
    assert.deepEqual(selectionFlags(install({ job: { nodeSelectorExpressions: null } })), []);
  });

  it("an unsupported operator fails with the chart's message, even when job.nodes is set", () => {
    const bad = { nodeSelectorExpressions: [{ key: "cpu", operator: "Gt", values: ["4"] }] };
    assert.throws(() => install({ job: bad }), UnsupportedOperatorError);
    assert.throws(
      () => install({ job: { ...bad, nodes: ["n1"] } }),
      /nodeSelectorExpressions: unsupported operator "Gt" for key "cpu" \(use In, NotIn, Exists, DoesNotExist\)/,
    );
  });

  it("a non-string equality value renders Go's marker, as Helm does", () => {
    assert.deepEqual(
      selectionFlags(install({ job: { nodeSelector: { a: true }, nodeSelectorExpressions: [] } })),
      ["--node-selector=a=%!s(bool=true)"],
    );
  });

  it("parallelism is printed as Go prints a float64 (1e+06 from 1000000)", () => {
    assert.ok(command(install({ job: { parallelism: 7 } }))?.includes("--parallelism=7"));
    assert.ok(command(install({ job: { parallelism: 1000000 } }))?.includes("--parallelism=1e+06"));
  });

  it("multiInstallSuffix: names, prefix, owner, SA and ConfigMap", () => {
    const job = install({ env: { multiInstallSuffix: "dev" } });
    assert.equal(job.metadata.name, "kata-deploy-dev-install-dispatcher");
    assert.deepEqual(command(job)?.slice(1, 4), [
      "--job-template=/etc/kata-job/install-job.yaml",
      "--name-prefix=kata-deploy-dev-install",
      "--owner-job-name=kata-deploy-dev-install-dispatcher",
    ]);
    assert.equal(job.spec.template.spec.serviceAccountName, "kata-deploy-dispatcher-sa-dev");
    assert.deepEqual(job.spec.template.spec.volumes, [
      { name: "job-templates", configMap: { name: "kata-deploy-dev-job-templates" } },
    ]);
  });

  it("a 46-character suffix: the Job and ConfigMap names are t63, the prefix and SA are not", () => {
    const s = "s".repeat(46);
    const job = install({ env: { multiInstallSuffix: s } });
    assert.equal(job.metadata.name, `kata-deploy-${s}-inst`);
    assert.ok(command(job)?.includes(`--name-prefix=kata-deploy-${s}-install`));
    assert.ok(command(job)?.includes(`--owner-job-name=kata-deploy-${s}-inst`));
    assert.equal(job.spec.template.spec.serviceAccountName, `kata-deploy-dispatcher-sa-${s}`);
    assert.equal(job.spec.template.spec.volumes?.[0].configMap?.name, `kata-deploy-${s}-job`);
  });

  it("the whole Job: labels, hook annotations, pod and container security, env, mount", () => {
    const job = install({ imagePullSecrets: [{ name: "regcred" }], tolerations: [{ operator: "Exists" }] });
    const labels = {
      "app.kubernetes.io/name": "kata-deploy",
      "app.kubernetes.io/instance": "kata",
      "kata-deploy/dispatcher": "install",
    };
    assert.deepEqual(job.metadata, {
      name: "kata-deploy-install-dispatcher",
      namespace: "kube-system",
      labels,
      annotations: {
        "helm.sh/hook": "post-install,post-upgrade",
        "helm.sh/hook-weight": "5",
        "helm.sh/hook-delete-policy": "before-hook-creation",
      },
    });
    assert.equal(job.spec.backoffLimit, 0);
    assert.equal(job.spec.ttlSecondsAfterFinished, 600);
    assert.deepEqual(job.spec.template.metadata, { labels });
    const pod = job.spec.template.spec;
    assert.deepEqual(pod.imagePullSecrets, [{ name: "regcred" }]);
    assert.equal(pod.restartPolicy, "Never");
    assert.deepEqual(pod.securityContext, {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      seccompProfile: { type: "RuntimeDefault" },
    });
    assert.deepEqual(pod.tolerations, [{ operator: "Exists" }]);
    assert.equal(pod.priorityClassName, "system-node-critical");
    const c = pod.containers[0];
    assert.equal(c.name, "dispatcher");
    assert.equal(c.image, "quay.io/kata-containers/kata-deploy-job-dispatcher:4.0.0");
    assert.equal(c.imagePullPolicy, "Always");
    assert.deepEqual(c.securityContext, {
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    assert.deepEqual(c.env, [
      { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    ]);
    assert.deepEqual(c.volumeMounts, [{ name: "job-templates", mountPath: "/etc/kata-job", readOnly: true }]);
    assert.equal(c.args, undefined);
  });

  it("the dispatcher image: tag, and a digest used verbatim", () => {
    assert.equal(
      install({ job: { dispatcherImage: { tag: "v9" } } }).spec.template.spec.containers[0].image,
      "quay.io/kata-containers/kata-deploy-job-dispatcher:v9",
    );
    assert.equal(
      install({ job: { dispatcherImage: { reference: "r/d@sha256:1" } } }).spec.template.spec.containers[0]
        .image,
      "r/d@sha256:1",
    );
  });
});

describe("chart/render: cleanup dispatcher hook (chart 4.0.0)", () => {
  it("defaults: pre-delete hook, label, full command line", () => {
    const job = cleanup();
    assert.equal(job.metadata.name, "kata-deploy-cleanup-dispatcher");
    assert.equal(job.metadata.labels?.["kata-deploy/dispatcher"], "cleanup");
    assert.equal(job.spec.template.metadata.labels?.["kata-deploy/dispatcher"], "cleanup");
    assert.deepEqual(job.metadata.annotations, {
      "helm.sh/hook": "pre-delete",
      "helm.sh/hook-weight": "5",
      "helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded",
    });
    assert.deepEqual(command(job), [
      "/usr/bin/kata-deploy-job-dispatcher",
      "--job-template=/etc/kata-job/cleanup-job.yaml",
      "--name-prefix=kata-deploy-cleanup",
      "--owner-job-name=kata-deploy-cleanup-dispatcher",
      "--parallelism=100",
      "--node-selector=katacontainers.io/kata-runtime",
    ]);
  });

  it("reads job.cleanup.*, not the install selection", () => {
    assert.deepEqual(selectionFlags(cleanup({ job: { nodes: ["a"], cleanup: { nodes: ["b", "c"] } } })), [
      "--nodes=b,c",
    ]);
    assert.deepEqual(
      selectionFlags(
        cleanup({
          job: {
            nodeSelector: { x: "y" },
            cleanup: {
              nodeSelector: { "katacontainers.io/kata-runtime": "true" },
              nodeSelectorExpressions: [],
            },
          },
        }),
      ),
      ["--node-selector=katacontainers.io/kata-runtime=true"],
    );
    assert.deepEqual(selectionFlags(cleanup({ job: { cleanup: { nodeSelectorExpressions: [] } } })), []);
  });

  it("shares SA, security contexts and the ConfigMap mount with the install dispatcher", () => {
    const a = install().spec.template.spec;
    const b = cleanup().spec.template.spec;
    assert.equal(b.serviceAccountName, a.serviceAccountName);
    assert.deepEqual(b.securityContext, a.securityContext);
    assert.deepEqual(b.containers[0].securityContext, a.containers[0].securityContext);
    assert.deepEqual(b.volumes, a.volumes);
    assert.deepEqual(b.containers[0].volumeMounts, a.containers[0].volumeMounts);
  });
});

describe("chart/render: hooks per mode, and withoutHookAnnotations", () => {
  it("daemonset mode and an unknown mode render no dispatcher; job mode renders no hook inside resources", () => {
    const noDispatcher = (h: object) => Object.keys(h).filter((k) => k.endsWith("Dispatcher"));
    assert.deepEqual(noDispatcher(renderChart({}, release).hooks), []);
    const bogus = renderChart({ deploymentMode: "Job" }, release);
    assert.equal(bogus.mode, "none");
    assert.deepEqual(noDispatcher(bogus.hooks), []);
    assert.equal(
      bogus.resources.some((o) => o.kind === "DaemonSet" || o.metadata.name?.endsWith("job-templates")),
      false,
    );
    const job = renderChart({ deploymentMode: "job" }, release);
    assert.equal(
      job.resources.some((o) => o.metadata.annotations?.["helm.sh/hook"] !== undefined),
      false,
    );
  });

  it("strips exactly the three hook annotations and returns a copy", () => {
    const job = install();
    job.metadata.annotations = { ...job.metadata.annotations, "example.com/keep": "yes" };
    const stripped = withoutHookAnnotations(job);
    assert.deepEqual(stripped.metadata.annotations, { "example.com/keep": "yes" });
    assert.equal(job.metadata.annotations["helm.sh/hook"], "post-install,post-upgrade");
    const bare = withoutHookAnnotations(install());
    assert.equal("annotations" in bare.metadata, false);
    assert.deepEqual(
      { ...bare, metadata: { ...bare.metadata, annotations: install().metadata.annotations } },
      install(),
    );
  });
});
