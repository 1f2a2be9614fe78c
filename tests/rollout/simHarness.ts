// A job-mode (or daemonset-mode) kata-deploy release on the simulator: the chart renderer's objects applied as
// helm.v4.Chart would apply them (hooks excluded), the bundled dispatcher's ConfigMap and pod-reader Role added as the
// component adds them, and the rollout's inputs built from the same values.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { buildDispatcherBundle, type DispatcherBundle } from "../../dispatcher/bundle";
import {
  BUNDLED_DISPATCHER_IMAGE,
  dispatcherPodReaderRole,
  dispatcherPodReaderRoleBinding,
  dispatcherScriptConfigMap,
  dispatcherScriptConfigMapName,
} from "../../components/chart/dispatcherJobs";
import type { K8sObject } from "../../components/chart/k8s";
import { renderChart, type RenderedChart } from "../../components/chart/render";
import { buildRolloutInputs, type RolloutOptions } from "../../rollout/inputs";
import type { NodeResult, RolloutInputs } from "../../rollout/types";
import { startSimulator, type RunningSimulator, type SimulatorOptions } from "../../sim";
import type { KubeObject, ResourceName } from "../../sim/types";

export const RELEASE = { name: "kata", namespace: "kata-system" };
export const INSTALL_OWNER = "kata-deploy-install";
export const CLEANUP_OWNER = "kata-deploy-cleanup";

const RESOURCE_OF_KIND: Record<string, ResourceName> = {
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
  /** How dispatcher pods were run: "simulator" (its kubelet executed them) or "harness-fallback" (see below). */
  dispatcherRuns: { pod: string; via: "simulator" | "harness-fallback"; exitCode: number | null }[];
  close(): Promise<void>;
}

/**
 * FALLBACK, clearly labelled: the simulator has no scheduler, so a dispatcher pod (not node-pinned) stays Pending.
 * Until it has one, the harness plays scheduler and kubelet for dispatcher pods only: it runs the pod's real command
 * (the bundled dispatcher script from the ConfigMap, with the job-templates ConfigMap materialized) as a child
 * process with the pod's ServiceAccount kubeconfig, then writes the pod's terminal status, from which the
 * simulator's Job controller finishes the dispatcher Job. Per-node Jobs are node-pinned and run in the simulator.
 */
function runUnscheduledDispatcherPods(
  sim: RunningSimulator,
  bundle: DispatcherBundle,
  runs: Release["dispatcherRuns"],
): () => void {
  const handled = new Set<string>();
  let stopped = false;
  const children = new Set<ReturnType<typeof spawn>>();
  const tick = () => {
    if (stopped) return;
    for (const pod of sim.list("pods", {
      namespace: RELEASE.namespace,
      labelSelector: "kata-deploy/dispatcher",
    })) {
      const spec = pod.spec as {
        nodeName?: string;
        serviceAccountName?: string;
        containers: { command: string[] }[];
        volumes?: { name: string; configMap?: { name: string } }[];
      };
      const uid = String(pod.metadata.uid);
      if (
        spec.nodeName ||
        handled.has(uid) ||
        (pod.status as { phase?: string } | undefined)?.phase !== "Pending"
      )
        continue;
      if (pod.metadata.deletionTimestamp) continue;
      handled.add(uid);
      const podName = String(pod.metadata.name);
      const dir = mkdtempSync(path.join(tmpdir(), "dispatcher-pod-"));
      const mounts: [string, string][] = [];
      for (const v of spec.volumes ?? []) {
        if (!v.configMap) continue;
        const cm = sim.get("configmaps", RELEASE.namespace, v.configMap.name) as
          { data?: Record<string, string> } | undefined;
        const target = path.join(dir, v.name);
        mkdirSync(target);
        for (const [k, text] of Object.entries(cm?.data ?? {})) writeFileSync(path.join(target, k), text);
        mounts.push([v.name === "job-templates" ? "/etc/kata-job" : "/opt/kata-dispatcher", target]);
      }
      const rewrite = (a: string) => mounts.reduce((x, [from, to]) => x.split(from).join(to), a);
      const [, script, ...flags] = spec.containers[0].command.map(rewrite);
      void bundle;
      const child = spawn(process.execPath, [script, ...flags], {
        env: {
          PATH: process.env.PATH ?? "",
          POD_NAMESPACE: RELEASE.namespace,
          POD_NAME: podName,
          KUBECONFIG: sim.kubeconfigFor(RELEASE.namespace, spec.serviceAccountName ?? "default"),
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      children.add(child);
      let log = "";
      child.stdout?.on("data", (c) => (log += c));
      child.stderr?.on("data", (c) => (log += c));
      sim.patch("pods", RELEASE.namespace, podName, {
        status: {
          phase: "Running",
          startTime: new Date(sim.now()).toISOString(),
          containerStatuses: [
            {
              name: "dispatcher",
              ready: true,
              restartCount: 0,
              state: { running: { startedAt: new Date(sim.now()).toISOString() } },
            },
          ],
        },
      });
      child.on("exit", (code) => {
        children.delete(child);
        runs.push({ pod: podName, via: "harness-fallback", exitCode: code });
        if (stopped) return;
        const at = new Date(sim.now()).toISOString();
        const tail = log.split("\n").filter(Boolean).slice(-20).join("\n").slice(-2048);
        try {
          sim.patch("pods", RELEASE.namespace, podName, {
            status: {
              phase: code === 0 ? "Succeeded" : "Failed",
              containerStatuses: [
                {
                  name: "dispatcher",
                  ready: false,
                  restartCount: 0,
                  state: {
                    terminated: {
                      exitCode: code ?? 137,
                      reason: code === 0 ? "Completed" : "Error",
                      message: tail,
                      startedAt: at,
                      finishedAt: at,
                    },
                  },
                },
              ],
            },
          });
        } catch {
          // The pod was deleted meanwhile (a new run replaced the dispatcher Job).
        }
      });
    }
  };
  const timer = setInterval(tick, 100);
  return () => {
    stopped = true;
    clearInterval(timer);
    for (const c of children) c.kill("SIGKILL");
  };
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
    } as KubeObject);
  }
  const extra: K8sObject[] =
    rendered.mode === "job"
      ? [
          dispatcherScriptConfigMap(bundle, names, RELEASE),
          dispatcherPodReaderRole(names, RELEASE),
          dispatcherPodReaderRoleBinding(names, RELEASE),
        ]
      : [];
  const applied = apply(sim, [...rendered.resources, ...extra]);
  const inputs = buildRolloutInputs({
    namespace: RELEASE.namespace,
    releaseName: RELEASE.name,
    chart: { chart: "oci://ghcr.io/kata-containers/kata-deploy-charts/kata-deploy", version: "4.0.0" },
    values,
    rendered,
    connection: { server: sim.url, token: sim.adminToken },
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
    const { rendered, inputs, applied, values, bundle } = await deployRelease(sim, opts);
    const dispatcherRuns: Release["dispatcherRuns"] = [];
    const stopFallback = runUnscheduledDispatcherPods(sim, bundle, dispatcherRuns);
    return {
      sim,
      rendered,
      inputs,
      applied,
      values,
      dispatcherRuns,
      close: async () => {
        stopFallback();
        await sim.close();
      },
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
