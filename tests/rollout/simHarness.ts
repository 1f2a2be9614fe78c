// A job-mode (or daemonset-mode) kata-deploy release on the simulator: the chart renderer's objects applied as
// helm.v4.Chart would apply them (hooks excluded), the bundled dispatcher's ConfigMap and pod-reader Role added as the
// component adds them, and the rollout's inputs built from the same values.
import { buildDispatcherBundle, type DispatcherBundle } from "../../dispatcher/bundle";
import {
  BUNDLED_DISPATCHER_IMAGE,
  dispatcherPodReaderRole,
  dispatcherPodReaderRoleBinding,
  dispatcherRecorderRbac,
  dispatcherScriptConfigMap,
  dispatcherScriptConfigMapName,
} from "../../chart/dispatcherJobs";
import type { K8sObject } from "../../chart/k8s";
import { KATA_RUNTIME_LABEL } from "../../chart/names";
import { renderChart, type RenderedChart } from "../../chart/render";
import { buildRolloutInputs, type RolloutOptions } from "../../rollout/inputs";
import type { NodeResult, RolloutInputs } from "../../rollout/types";
import { startSimulator, type RunningSimulator, type SimulatorOptions } from "../../sim";
import type { FleetFile, KubeObject, OutcomeProgram, ResourceName } from "../../sim/types";

export const RELEASE = { name: "kata", namespace: "kata-system" };
export const INSTALL_OWNER = "kata-deploy-install";
export const CLEANUP_OWNER = "kata-deploy-cleanup";
export const INSTALL_DISPATCHER_JOB = "kata-deploy-install-dispatcher";

/** The simulator resource of each kind the chart and the component render. */
export const RESOURCE_OF_KIND: Record<string, ResourceName> = {
  ConfigMap: "configmaps",
  ServiceAccount: "serviceaccounts",
  ClusterRole: "clusterroles",
  ClusterRoleBinding: "clusterrolebindings",
  Role: "roles",
  RoleBinding: "rolebindings",
  DaemonSet: "daemonsets",
  Namespace: "namespaces",
};

export interface Release {
  sim: RunningSimulator;
  rendered: RenderedChart;
  inputs: RolloutInputs;
  /** Objects applied to the simulator (kinds it does not serve, e.g. RuntimeClass, are left out). */
  applied: K8sObject[];
  values: Record<string, unknown>;
  close(): Promise<void>;
}

/** Apply objects as helm.v4.Chart would (hooks are not among `rendered.resources`). */
export function apply(sim: RunningSimulator, objects: readonly K8sObject[]): K8sObject[] {
  const applied: K8sObject[] = [];
  for (const o of objects) {
    const resource = RESOURCE_OF_KIND[o.kind];
    if (!resource) continue;
    // An upgrade replaces objects that exist.
    if (sim.get(resource, o.metadata.namespace, String(o.metadata.name)))
      sim.update(resource, o as unknown as KubeObject);
    else sim.create(resource, o as unknown as KubeObject);
    applied.push(o);
  }
  return applied;
}

export interface DeployOptions {
  values?: Record<string, unknown>;
  rollout?: RolloutOptions;
  implementation?: "bundled" | "upstream";
  rerunToken?: string;
}

/** Render a release and apply its objects (create, or replace what exists, like an upgrade); returns the inputs. */
export async function deployRelease(
  sim: RunningSimulator,
  opts: DeployOptions,
): Promise<{
  rendered: RenderedChart;
  inputs: RolloutInputs;
  applied: K8sObject[];
  values: Record<string, unknown>;
  bundle: DispatcherBundle;
}> {
  const values = { deploymentMode: "job", ...(opts.values ?? {}) };
  const rendered = renderChart(values, RELEASE);
  const bundle = await buildDispatcherBundle();
  const names = rendered.names;
  if (!sim.get("namespaces", undefined, RELEASE.namespace)) {
    sim.create("namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: RELEASE.namespace },
    });
  }
  const extra: K8sObject[] =
    rendered.mode === "job"
      ? [
          dispatcherScriptConfigMap(bundle, names, RELEASE),
          dispatcherPodReaderRole(names, RELEASE),
          dispatcherPodReaderRoleBinding(names, RELEASE),
          ...((opts.implementation ?? "bundled") === "bundled"
            ? Object.values(dispatcherRecorderRbac(names, RELEASE))
            : []),
        ]
      : [];
  const applied = apply(sim, [...rendered.resources, ...extra]);
  const inputs = buildRolloutInputs({
    namespace: RELEASE.namespace,
    releaseName: RELEASE.name,
    chart: { chart: "oci://ghcr.io/kata-containers/kata-deploy-charts/kata-deploy", version: "4.0.0" },
    rendered,
    connection: { server: sim.url, caData: sim.caPem, token: sim.adminToken },
    dispatcherImplementation: opts.implementation ?? "bundled",
    bundle: {
      configMapName: dispatcherScriptConfigMapName(names),
      entry: bundle.entry,
      sha256: bundle.sha256,
    },
    rerunToken: opts.rerunToken,
    rollout: { timeoutSeconds: 120, ...(opts.rollout ?? {}) },
  });
  return { rendered, inputs, applied, values, bundle };
}

export async function startRelease(opts: DeployOptions & { sim: SimulatorOptions }): Promise<Release> {
  const sim = await startSimulator({
    authz: true,
    execute: { nodeImages: [BUNDLED_DISPATCHER_IMAGE], timeoutMs: 120_000 },
    ...opts.sim,
  });
  try {
    const { rendered, inputs, applied, values } = await deployRelease(sim, opts);
    return {
      sim,
      rendered,
      inputs,
      applied,
      values,
      close: () => sim.close(),
    };
  } catch (err) {
    await sim.close();
    throw err;
  }
}

/** Ground truth from the simulator: per node, the newest Job of an owner, and how it ended. */
export function simJobOutcomes(
  sim: RunningSimulator,
  owner: string,
): Map<string, { job: string; outcome: string; reason?: string }> {
  const out = new Map<string, { job: string; outcome: string; reason?: string; createdAt: number }>();
  for (const [node, report] of Object.entries(sim.audit.jobsByNode())) {
    for (const j of report.jobs) {
      if (j.owner !== owner) continue;
      const prev = out.get(node);
      if (!prev || j.createdAt >= prev.createdAt)
        out.set(node, { job: j.name, outcome: j.outcome, reason: j.reason, createdAt: j.createdAt });
    }
  }
  return out;
}

/** The error the provider throws for a failed run: message plus the recorded outputs (pulumi-facts §4.1). */
export interface InitFailure {
  message: string;
  id: string;
  properties: Record<string, unknown> & { results: string };
}

export async function expectInitFailure(p: Promise<unknown>): Promise<InitFailure> {
  try {
    await p;
  } catch (err) {
    const e = err as InitFailure;
    if (!e.id || !e.properties) throw err;
    return e;
  }
  throw new Error("expected the rollout to fail with recorded outputs");
}

export function byNode(results: readonly NodeResult[]): Map<string, NodeResult> {
  return new Map(results.map((r) => [r.node, r]));
}

/** Per-node Jobs of the install owner the audit has seen created so far. */
/** Sorted names of the nodes labelled as having Kata (what the simulated label stage sets, the unlabel stage removes). */
export function kataLabelledNodes(sim: RunningSimulator): string[] {
  return sim
    .list("nodes", { labelSelector: `${KATA_RUNTIME_LABEL}=true` })
    .map((n) => n.metadata.name as string)
    .sort();
}

export function perNodeJobsCreated(sim: RunningSimulator): number {
  let n = 0;
  for (const r of Object.values(sim.audit.jobsByNode()))
    n += r.jobs.filter((j) => j.owner === INSTALL_OWNER).length;
  return n;
}

/** The install dispatcher's pod that is running now, if any (to kill it). */
export function runningDispatcherPod(sim: RunningSimulator): string | undefined {
  return sim
    .list("pods", { namespace: RELEASE.namespace })
    .find(
      (p) =>
        p.metadata.ownerReferences?.some((o) => o.name === INSTALL_DISPATCHER_JOB) &&
        p.status?.phase === "Running" &&
        !p.metadata.deletionTimestamp,
    )?.metadata.name;
}

/** A fleet of Linux workers by name, each its own machine; `outcomes` gives some of them another program. */
export function workerFleet(
  names: readonly string[],
  outcomes: Record<string, OutcomeProgram> = {},
): FleetFile {
  return {
    nodes: names.map((name) => ({
      name,
      labels: { "kubernetes.io/os": "linux" },
      containerRuntimeVersion: "containerd://2.1.5",
      machineID: name,
      ...(outcomes[name] ? { outcome: outcomes[name] } : {}),
    })),
  };
}
