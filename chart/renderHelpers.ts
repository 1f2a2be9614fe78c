// Small pieces every rendered object uses: the chart's label sets, and how Go templates print and test values.
// Node built-ins only.

import { CHART_VERSION, type ChartValues, type ChartVersion } from "./defaults";
import { cloneJson, goPrint, isMap, truthy, type Json } from "./goValues";
import type { PodSpec } from "./k8s";
import { CHART_NAME, t63 } from "./names";
import type { DeploymentMode, Release } from "./renderTypes";

export function deploymentMode(values: ChartValues): DeploymentMode {
  const mode = truthy(values.deploymentMode) ? values.deploymentMode : "daemonset";
  return mode === "daemonset" || mode === "job" ? mode : "none";
}

/** `kata-deploy.name`: nameOverride or the chart name, t63. */
export function appName(values: ChartValues): string {
  return t63(truthy(values.nameOverride) ? goPrint(values.nameOverride) : CHART_NAME);
}

export function nameAndInstance(values: ChartValues, release: Release): Record<string, string> {
  return { "app.kubernetes.io/name": appName(values), "app.kubernetes.io/instance": release.name };
}

/** `kata-deploy.labels`: the standard Helm labels, used on the custom-configs and user drop-in ConfigMaps. */
export function standardLabels(
  values: ChartValues,
  release: Release,
  version: ChartVersion = CHART_VERSION,
): Record<string, string> {
  return {
    "helm.sh/chart": `${CHART_NAME}-${version.replace(/\+/g, "_")}`,
    ...nameAndInstance(values, release),
    "app.kubernetes.io/managed-by": "Helm",
  };
}

export function suffixed(stem: string, suffix: string): string {
  return suffix ? `${stem}-${suffix}` : stem;
}

/**
 * A value the chart prints bare into YAML (`backoffLimit: {{ v }}`) comes back as whatever YAML reads from the
 * printed text: numbers stay numbers, numeric strings become numbers, "" becomes null (left out here).
 */
export function printedScalar(value: unknown): Json | undefined {
  if (typeof value === "number" || typeof value === "boolean") return value;
  const text = goPrint(value);
  if (text === "" || text === "null" || text === "~") return undefined;
  if (/^[-+]?[0-9]+$/.test(text)) return Number(text);
  if (/^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/.test(text)) return Number(text);
  if (text === "true" || text === "false") return text === "true";
  return text;
}

/** `{{- with .Values.x }} key: {{ toYaml . }}`: present only when truthy, copied as data. */
export function withValue<T>(value: unknown): T | undefined {
  return truthy(value) ? (cloneJson(value) as T) : undefined;
}

/** Strips keys whose value is undefined, so objects compare and serialize like the chart's YAML. */
export function compact<T>(value: T): T {
  if (Array.isArray(value)) return value.map((item) => compact(item)) as T;
  if (isMap(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) if (item !== undefined) out[key] = compact(item);
    return out as T;
  }
  return value;
}

/**
 * Sprig's `mergeOverwrite` for a flat map: the override's keys win, except that an empty override value
 * (false, 0, "", empty list or map) never replaces anything (mergo's rule).
 */
export function mergeOverwrite(
  base: Readonly<Record<string, unknown>>,
  override: unknown,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  if (isMap(override)) {
    for (const [key, value] of Object.entries(override)) if (truthy(value)) out[key] = cloneJson(value);
  }
  return out;
}

/** Literal block scalar (`key: |` + indented text) with clip chomping: exactly one trailing newline. */
export function blockText(text: string): string {
  const body = text.replace(/\n+$/, "");
  return body === "" ? "" : `${body}\n`;
}

export function podPlacement(values: ChartValues): Pick<PodSpec, "tolerations" | "priorityClassName"> {
  return {
    tolerations: withValue(values.tolerations),
    priorityClassName: truthy(values.priorityClassName) ? goPrint(values.priorityClassName) : undefined,
  };
}
