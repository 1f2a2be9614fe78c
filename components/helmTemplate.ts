// The chart's hooks rendered by real Helm under a Pulumi engine: the Kubernetes provider's `kubernetes:helm:template`
// invoke (what helm.v3.Chart calls; docs/spec/pulumi-facts.md §2, §5) renders the chart with the provider's own Helm
// and returns every object, hooks included (test hooks left out). The component asks it with the same chart
// reference, version, values, release name and namespace as its helm.v4.Chart, through the same provider (the
// component's own, as the chart's parent): the objects that carry `helm.sh/hook` are the hooks the rollout runs, the
// others the release's objects (what a destroy waits for, and which of them the chart keeps).
import * as pulumi from "@pulumi/pulumi";
import { getVersion as kubernetesSdkVersion } from "@pulumi/kubernetes/utilities";
import type { K8sObject } from "../chart/k8s";
import { hookOf } from "../kube/helmHooks";
import type { PlannedChart } from "./plan";

export const HELM_TEMPLATE_TOKEN = "kubernetes:helm:template";

export interface HelmTemplateRequest {
  chart: PlannedChart;
  values: Record<string, unknown>;
  releaseName: string;
  namespace: string;
}

/**
 * The invoke's one argument, `jsonOpts`, as helm.v3.Chart writes it (@pulumi/kubernetes helm/v3/helm.ts
 * `parseChart`): the chart options in snake_case at the top level, a local chart as `path`.
 */
export function helmTemplateJsonOpts(req: HelmTemplateRequest): string {
  const source = req.chart.path
    ? { path: req.chart.path }
    : {
        chart: req.chart.reference,
        ...(req.chart.version ? { version: req.chart.version } : {}),
        ...(req.chart.repository ? { fetch_opts: { repo: req.chart.repository } } : {}),
      };
  return JSON.stringify({
    ...source,
    values: req.values,
    namespace: req.namespace,
    release_name: req.releaseName,
  });
}

/** The hook objects among a render (Helm skips objects with an unknown hook event; so does this). */
export function hookObjects(objects: readonly K8sObject[]): K8sObject[] {
  return objects.filter((o) => {
    const hook = hookOf(o);
    return hook !== undefined && hook !== "unknown";
  });
}

/** The invoke's answer: `{ result: [objects] }`; anything else is refused with what came back. */
export function templateResult(answer: unknown): K8sObject[] {
  const result = (answer as { result?: unknown } | undefined)?.result;
  if (!Array.isArray(result)) {
    throw new Error(
      `${HELM_TEMPLATE_TOKEN}: expected { result: [objects] } from the kubernetes provider, got ${JSON.stringify(Object.keys((answer as object) ?? {}))}`,
    );
  }
  return result.filter((o): o is K8sObject => !!o && typeof o === "object" && "kind" in o);
}

/** Helm's render of a release: its hook objects and the objects helm.v4.Chart applies. */
export interface HelmRender {
  hooks: K8sObject[];
  resources: K8sObject[];
}

/**
 * Helm's render of the chart through the chart's own Kubernetes provider: `provider` when the component made one,
 * else the one `parent` resolves to. In a preview
 * whose provider cannot render yet (its configuration still unknown, the engine answers without a result) it is
 * undefined: the preview then shows the offline render's hooks, and `up` asks again.
 */
export async function helmRender(
  req: HelmTemplateRequest,
  parent: pulumi.Resource,
  provider?: pulumi.ProviderResource,
): Promise<HelmRender | undefined> {
  const answer: unknown = await pulumi.runtime.invoke(
    HELM_TEMPLATE_TOKEN,
    { jsonOpts: helmTemplateJsonOpts(req) },
    // As helm.v3.Chart asks: the parent's kubernetes provider, else the default one of this SDK's version.
    { parent, ...(provider ? { provider } : {}), version: kubernetesSdkVersion(), async: true },
  );
  if (pulumi.runtime.isDryRun() && !Array.isArray((answer as { result?: unknown } | undefined)?.result)) {
    void pulumi.log.info(
      `${HELM_TEMPLATE_TOKEN}: no render in this preview; showing the offline render's hooks`,
      parent,
    );
    return undefined;
  }
  const objects = templateResult(answer);
  return { hooks: hookObjects(objects), resources: objects.filter((o) => hookOf(o) === undefined) };
}
