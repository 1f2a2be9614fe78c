// The chart's `nodeLabelSelector` helper (kata-deploy-chart.md §3.4), reproduced exactly so that the
// dispatcher receives the same `--node-selector` Helm would render. Pure, Node built-ins only.
import { selectionArgs, type NodeSelection } from "../kube/nodeSelection";

export enum SelectorOperator {
  In = "In",
  NotIn = "NotIn",
  Exists = "Exists",
  DoesNotExist = "DoesNotExist",
}

export interface NodeSelectorRequirement {
  key: string;
  operator: SelectorOperator | string;
  values?: string[];
}

export class UnsupportedOperatorError extends Error {
  override readonly name = "UnsupportedOperatorError";
  constructor(
    readonly key: string,
    readonly operator: string,
  ) {
    // Chart 4.0.0's own wording, so users see the message they would get from Helm.
    super(
      `nodeSelectorExpressions: unsupported operator "${operator}" for key "${key}" (use In, NotIn, Exists, DoesNotExist)`,
    );
  }
}

/**
 * Equality pairs first, sorted by key (Go template map order), as `k=v`; then the expressions in list
 * order: `k`, `!k`, `k in (a,b)`, `k notin (a,b)`; comma-joined. "" means every node.
 * Operators are case-sensitive; any other one throws, as the chart's `fail` does.
 */
export function compileNodeSelector(
  equalities: Readonly<Record<string, string>> = {},
  expressions: readonly NodeSelectorRequirement[] = [],
): string {
  // Go's sort.Strings compares bytes; JavaScript's default sort compares UTF-16 code units, which agree on label keys (ASCII).
  const parts = Object.keys(equalities)
    .sort()
    .map((key) => `${key}=${equalities[key]}`);
  for (const { key, operator, values = [] } of expressions) {
    switch (operator) {
      case SelectorOperator.Exists:
        parts.push(key);
        break;
      case SelectorOperator.DoesNotExist:
        parts.push(`!${key}`);
        break;
      case SelectorOperator.In:
        parts.push(`${key} in (${values.join(",")})`);
        break;
      case SelectorOperator.NotIn:
        parts.push(`${key} notin (${values.join(",")})`);
        break;
      default:
        throw new UnsupportedOperatorError(key, operator);
    }
  }
  return parts.join(",");
}

/** Chart 4.0.0's default install selection: every node that is not a control plane. */
export const DEFAULT_INSTALL_EXPRESSIONS: readonly NodeSelectorRequirement[] = Object.freeze([
  { key: "node-role.kubernetes.io/control-plane", operator: SelectorOperator.DoesNotExist },
  { key: "node-role.kubernetes.io/master", operator: SelectorOperator.DoesNotExist },
]);

/** Chart 4.0.0's selection: explicit names win over its one compiled selector; neither means all nodes. */
export function nodeSelection(
  nodes: readonly string[] | undefined,
  equalities: Readonly<Record<string, string>> | undefined,
  expressions: readonly NodeSelectorRequirement[] | undefined,
): NodeSelection {
  if (nodes && nodes.length > 0) return { nodes: [...nodes] };
  const selector = compileNodeSelector(equalities ?? {}, expressions ?? []);
  return selector ? { selectors: [selector] } : {};
}

export { selectionArgs, type NodeSelection };
