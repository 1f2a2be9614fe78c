// The chart's selector compilation (chart/selectors.ts), checked against Kubernetes' own reading
// of the result: the compiled string parses as a label selector (kube/labelSelector.ts, tested against
// apimachinery's vectors) and selects exactly the nodes the structured form selects. The structured-form
// matcher below is written from the Kubernetes NodeSelectorRequirement semantics, not from the compiler.
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  UnsupportedOperatorError,
  compileNodeSelector,
  nodeSelection,
  selectionArgs,
} from "../../chart/selectors";
import { planKataDeploy } from "../../index";
import { parseLabelSelector } from "../../kube/labelSelector";

type Labels = Record<string, string>;
type Operator = "In" | "NotIn" | "Exists" | "DoesNotExist";
interface Expression {
  key: string;
  operator: Operator;
  values?: string[];
}

// Small pools so that generated nodes often carry the keys and values the selectors name.
const KEYS = [
  "zone",
  "kubernetes.io/os",
  "node-role.kubernetes.io/control-plane",
  "katacontainers.io/kata-runtime",
  "example.com/Tier_2",
  "a.b-c/x.y_z",
  "gpu",
];
const VALUES = ["a", "b", "linux", "true", "x-1", "A.b_c", "9"];

const key = fc.constantFrom(...KEYS);
const labelValue = fc.constantFrom(...VALUES);
// An equality may pin the empty value (`key=`), which Kubernetes reads as "the label is present and empty".
const equalityValue = fc.oneof(labelValue, fc.constant(""));
const nodeLabels: fc.Arbitrary<Labels> = fc.dictionary(key, equalityValue, { maxKeys: 5 });
const equalities: fc.Arbitrary<Labels> = fc.dictionary(key, equalityValue, { maxKeys: 3 });
const expression: fc.Arbitrary<Expression> = fc.oneof(
  fc.record({
    key,
    operator: fc.constantFrom<Operator>("In", "NotIn"),
    values: fc.uniqueArray(labelValue, { minLength: 1, maxLength: 3 }),
  }),
  fc.record({ key, operator: fc.constantFrom<Operator>("Exists", "DoesNotExist") }),
);

/** NodeSelectorRequirement semantics (core/v1), as the scheduler documents them; every requirement ANDed. */
function selectsStructured(labels: Labels, eq: Labels, exprs: readonly Expression[]): boolean {
  const has = (k: string) => Object.prototype.hasOwnProperty.call(labels, k);
  for (const [k, v] of Object.entries(eq)) {
    if (!has(k) || labels[k] !== v) return false;
  }
  for (const e of exprs) {
    const present = has(e.key);
    const listed = present && (e.values ?? []).includes(labels[e.key]);
    if (e.operator === "In" && !listed) return false;
    if (e.operator === "NotIn" && listed) return false;
    if (e.operator === "Exists" && !present) return false;
    if (e.operator === "DoesNotExist" && present) return false;
  }
  return true;
}

describe("components: node selector compilation vs Kubernetes selector semantics (property)", () => {
  it("the compiled string parses as a Kubernetes label selector and selects exactly the same nodes", () => {
    fc.assert(
      fc.property(
        equalities,
        fc.array(expression, { maxLength: 4 }),
        fc.array(nodeLabels, { minLength: 1, maxLength: 8 }),
        (eq, exprs, nodes) => {
          const compiled = compileNodeSelector(eq, exprs);
          if (compiled === "") {
            // The chart passes no selector at all: every node is a target, as the structured form says.
            assert.equal(Object.keys(eq).length + exprs.length, 0);
            assert.ok(nodes.every((labels) => selectsStructured(labels, eq, exprs)));
            return;
          }
          const selector = parseLabelSelector(compiled);
          for (const labels of nodes) {
            assert.equal(
              selector.matches(labels),
              selectsStructured(labels, eq, exprs),
              `${compiled} on ${JSON.stringify(labels)}`,
            );
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it("the dispatcher gets --nodes when names are given, else --node-selector with that same string, else nothing", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.constantFrom("node-a", "node-b", "worker-1.example"), { maxLength: 3 }),
        equalities,
        fc.array(expression, { maxLength: 3 }),
        (nodes, eq, exprs) => {
          const args = selectionArgs(nodeSelection(nodes, eq, exprs));
          const compiled = compileNodeSelector(eq, exprs);
          if (nodes.length > 0) assert.deepEqual(args, [`--nodes=${nodes.join(",")}`]);
          else if (compiled !== "") assert.deepEqual(args, [`--node-selector=${compiled}`]);
          else assert.deepEqual(args, []);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("any operator outside the four fails, as the chart's `fail` does", () => {
    fc.assert(
      fc.property(
        key,
        fc
          .string({ minLength: 1, maxLength: 12 })
          .filter((op) => !["In", "NotIn", "Exists", "DoesNotExist"].includes(op)),
        (k, op) => {
          assert.throws(
            () => compileNodeSelector({}, [{ key: k, operator: op, values: ["a"] }]),
            UnsupportedOperatorError,
          );
        },
      ),
      { numRuns: 100 },
    );
  });

  it("the plan's dispatcher selection selects what the component's structured args select", () => {
    fc.assert(
      fc.property(
        equalities,
        fc.array(expression, { minLength: 1, maxLength: 3 }),
        fc.array(nodeLabels, { minLength: 1, maxLength: 6 }),
        (eq, exprs, nodes) => {
          const plan = planKataDeploy({
            deploymentMode: "job",
            job: { nodeSelector: eq, nodeSelectorExpressions: exprs },
          });
          const [flag] = plan.nodeSelection?.install ?? [];
          assert.ok(flag.startsWith("--node-selector="), flag);
          const selector = parseLabelSelector(flag.slice("--node-selector=".length));
          for (const labels of nodes)
            assert.equal(selector.matches(labels), selectsStructured(labels, eq, exprs));
        },
      ),
      { numRuns: 150 },
    );
  });
});
