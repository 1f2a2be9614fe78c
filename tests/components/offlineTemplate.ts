// The answer the kubernetes provider's `kubernetes:helm:template` invoke gives, played by the offline renderer
// (chart/, proven equal to Helm's render by tests/chart/helmFixtures.test.ts) for tests whose engine has no
// kubernetes provider. tests/components/helmHooksInvoke.test.ts answers with a recorded Helm render instead.
import { parse as parseYaml } from "yaml";
import type { K8sObject } from "../../chart/k8s";
import { renderChart } from "../../chart/render";
import { HELM_TEMPLATE_TOKEN } from "../../components/helmTemplate";
import { renderedHooks } from "../../rollout/inputs";

export function offlineHelmTemplate(jsonOpts: string): { result: K8sObject[] } {
  const opts = JSON.parse(jsonOpts) as {
    values?: Record<string, unknown>;
    namespace: string;
    release_name: string;
  };
  const rendered = renderChart(
    opts.values ?? {},
    { name: opts.release_name, namespace: opts.namespace },
    { parseYaml },
  );
  return { result: [...rendered.resources, ...renderedHooks(rendered)] };
}

/** A mock `call`/invoke answer: the helm template invoke rendered offline, anything else echoed. */
export function answerInvoke(token: string, inputs: Record<string, unknown>): Record<string, unknown> {
  return token === HELM_TEMPLATE_TOKEN ? offlineHelmTemplate(String(inputs.jsonOpts)) : inputs;
}
