// Label and field selectors of list and watch requests: parsed once per request (400 BadRequest for bad
// syntax or a field the kind does not support), matched per object.
import { FieldSelector, FieldSelectorParseError, parseFieldSelector } from "../../kube/fieldSelector";
import { LabelSelector, parseLabelSelector, SelectorParseError } from "../../kube/labelSelector";
import { badRequest } from "../errors";
import { ResourceInfo, selectableFields, supportedFields } from "../resources";
import type { KubeObject } from "../types";

/** What a list or watch covers: a namespace (or all) and the parsed selectors. */
export interface Scope {
  namespace?: string;
  label?: LabelSelector;
  field?: FieldSelector;
}

export function parseSelectors(
  info: ResourceInfo,
  labelSelector?: string,
  fieldSelector?: string,
): { label?: LabelSelector; field?: FieldSelector } {
  let label: LabelSelector | undefined;
  let field: FieldSelector | undefined;
  if (labelSelector) {
    try {
      label = parseLabelSelector(labelSelector);
    } catch (e) {
      if (e instanceof SelectorParseError) throw badRequest(e.message);
      throw e;
    }
    if (label.isEmpty()) label = undefined;
  }
  if (fieldSelector) {
    try {
      field = parseFieldSelector(fieldSelector);
    } catch (e) {
      if (e instanceof FieldSelectorParseError) throw badRequest(e.message);
      throw e;
    }
    const allowed = supportedFields(info);
    for (const t of field.terms) {
      if (!allowed.includes(t.field)) throw badRequest(`field label not supported: ${t.field}`);
    }
    if (field.isEmpty()) field = undefined;
  }
  return { label, field };
}

export function inScope(info: ResourceInfo, scope: Scope, o: KubeObject): boolean {
  if (scope.namespace !== undefined && o.metadata.namespace !== scope.namespace) return false;
  if (scope.label && !scope.label.matches(o.metadata.labels)) return false;
  if (scope.field && !scope.field.matches(selectableFields(info, o))) return false;
  return true;
}
