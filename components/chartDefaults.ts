// Where the chart comes from and the component's own defaults. The chart's values defaults live in
// `chart/defaults.ts` (chart 4.0.0's values.yaml as data); they are used to show effective settings and to
// check derived names, never sent to the chart (it applies its own values.yaml).
import { CHART_VERSION } from "../chart/defaults";
import { CHART_NAME } from "../chart/names";

export { CHART_VERSION };
export const CHART_REPOSITORY = "oci://ghcr.io/kata-containers/kata-deploy-charts";
export const CHART_REFERENCE = `${CHART_REPOSITORY}/${CHART_NAME}`;
export const DEFAULT_NAMESPACE = "kube-system";
