// Create/update validation that kube-apiserver would apply to the objects kube-sim stores: names,
// labels, annotations, and the Job/Pod fields the simulated controllers rely on. Returns field errors.
import {
  dns1123LabelErrors,
  dns1123SubdomainErrors,
  labelKeyErrors,
  labelValueErrors,
} from "../kube/validation";
import { FieldError, invalidValue, requiredValue } from "./errors";
import type { ResourceInfo } from "./resources";
import type { KubeObject } from "./types";

function nameErrors(info: ResourceInfo, name: string): string[] {
  switch (info.nameRule) {
    case "dns1123Label":
      return dns1123LabelErrors(name);
    case "dns1123Subdomain":
      return dns1123SubdomainErrors(name);
    case "pathSegment":
      if (name === "." || name === "..") return [`may not be '${name}'`];
      if (/[/%]/.test(name)) return [`may not contain '/' or '%'`];
      return [];
  }
}

export function validateMetadata(info: ResourceInfo, obj: KubeObject): FieldError[] {
  const errors: FieldError[] = [];
  const name = obj.metadata.name ?? "";
  if (!name) errors.push(requiredValue("metadata.name", "name or generateName is required"));
  else {
    const problems = nameErrors(info, name);
    if (problems.length > 0) errors.push(invalidValue("metadata.name", name, problems.join(", ")));
  }
  for (const [k, v] of Object.entries(obj.metadata.labels ?? {})) {
    const keyProblems = labelKeyErrors(k);
    if (keyProblems.length > 0) errors.push(invalidValue("metadata.labels", k, keyProblems.join(", ")));
    if (typeof v !== "string")
      errors.push(invalidValue(`metadata.labels`, v, "label values must be strings"));
    else {
      const valueProblems = labelValueErrors(v);
      if (valueProblems.length > 0) errors.push(invalidValue("metadata.labels", v, valueProblems.join(", ")));
    }
  }
  for (const k of Object.keys(obj.metadata.annotations ?? {})) {
    const keyProblems = labelKeyErrors(k.toLowerCase());
    if (keyProblems.length > 0) errors.push(invalidValue("metadata.annotations", k, keyProblems.join(", ")));
  }
  return errors;
}

type Rec = Record<string, unknown>;
const asRec = (v: unknown): Rec | undefined =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Rec) : undefined;

function podSpecErrors(podSpec: Rec | undefined, path: string, allowedRestart: string[]): FieldError[] {
  const errors: FieldError[] = [];
  if (!podSpec) return [requiredValue(path)];
  const containers = podSpec.containers;
  if (!Array.isArray(containers) || containers.length === 0) errors.push(requiredValue(`${path}.containers`));
  const seen = new Set<string>();
  for (const [listName, list] of [
    ["initContainers", podSpec.initContainers],
    ["containers", containers],
  ] as const) {
    if (!Array.isArray(list)) continue;
    list.forEach((c: unknown, i: number) => {
      const name = asRec(c)?.name;
      if (typeof name !== "string" || name === "")
        errors.push(requiredValue(`${path}.${listName}[${i}].name`));
      else {
        const p = dns1123LabelErrors(name);
        if (p.length > 0) errors.push(invalidValue(`${path}.${listName}[${i}].name`, name, p.join(", ")));
        if (seen.has(name))
          errors.push({
            field: `${path}.${listName}[${i}].name`,
            reason: "FieldValueDuplicate",
            detail: `Duplicate value: "${name}"`,
          });
        seen.add(name);
      }
      if (!asRec(c)?.image) errors.push(requiredValue(`${path}.${listName}[${i}].image`));
    });
  }
  const restart = podSpec.restartPolicy;
  if (restart !== undefined && !allowedRestart.includes(String(restart))) {
    errors.push({
      field: `${path}.restartPolicy`,
      reason: "FieldValueNotSupported",
      detail: `Unsupported value: "${String(restart)}": supported values: ${allowedRestart.map((r) => `"${r}"`).join(", ")}`,
    });
  }
  return errors;
}

/** Kind-specific checks on create (and update). */
export function validateSpec(info: ResourceInfo, obj: KubeObject): FieldError[] {
  switch (info.name) {
    case "jobs": {
      const errors: FieldError[] = [];
      const name = obj.metadata.name ?? "";
      // The Job name becomes the value of the pod template's job-name labels, so it must be a valid label value.
      if (name.length > 63) {
        errors.push(invalidValue("spec.template.labels", name, "must be no more than 63 characters"));
      }
      const template = asRec(obj.spec?.template);
      const podSpec = asRec(template?.spec);
      if (podSpec && podSpec.restartPolicy === undefined) {
        errors.push({
          field: "spec.template.spec.restartPolicy",
          reason: "FieldValueRequired",
          detail: `Required value: valid values: "OnFailure", "Never"`,
        });
      }
      errors.push(...podSpecErrors(podSpec, "spec.template.spec", ["OnFailure", "Never"]));
      const backoff = obj.spec?.backoffLimit;
      if (backoff !== undefined && (typeof backoff !== "number" || backoff < 0)) {
        errors.push(invalidValue("spec.backoffLimit", backoff, "must be greater than or equal to 0"));
      }
      const deadline = obj.spec?.activeDeadlineSeconds;
      if (deadline !== undefined && (typeof deadline !== "number" || deadline <= 0)) {
        errors.push(invalidValue("spec.activeDeadlineSeconds", deadline, "must be greater than 0"));
      }
      const ttl = obj.spec?.ttlSecondsAfterFinished;
      if (ttl !== undefined && (typeof ttl !== "number" || ttl < 0)) {
        errors.push(invalidValue("spec.ttlSecondsAfterFinished", ttl, "must be greater than or equal to 0"));
      }
      return errors;
    }
    case "pods":
      return podSpecErrors(asRec(obj.spec), "spec", ["Always", "OnFailure", "Never"]);
    case "daemonsets": {
      const template = asRec(obj.spec?.template);
      const errors = podSpecErrors(asRec(template?.spec), "spec.template.spec", ["Always"]);
      if (!asRec(obj.spec?.selector)) errors.push(requiredValue("spec.selector"));
      return errors;
    }
    default:
      return [];
  }
}
