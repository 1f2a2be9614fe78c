// The Pulumi schema analyzer needs the declared interfaces of components/args.ts, while the checks and defaults
// come from the zod schema (components/validation.ts). These type-level assertions keep both equal: a field
// added, renamed or retyped on one side only fails `tsc` (npm run typecheck), before any test runs.
import assert from "node:assert/strict";
import type * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";
import type { ChartSource, KataDeployArgs, RolloutArgs } from "../../components/args";
import {
  COMPONENT_DEFAULTS,
  COMPONENT_FIELDS,
  componentArgs,
  type RolloutSettings,
} from "../../components/validation";
import { ROLLOUT_DEFAULTS } from "../../rollout/defaults";

/** 1 when A and B are the same type (mutual assignability is too weak: it ignores optional modifiers). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | undefined {
  return undefined;
}

type Declared<T> = pulumi.Unwrap<T>;
type OwnArgs = keyof typeof COMPONENT_FIELDS & keyof KataDeployArgs;

// The component's own arguments, as declared and as the schema takes them (the chart keys are typed apart).
assertType<
  Equal<
    Declared<Pick<KataDeployArgs, Exclude<OwnArgs, "values" | "chart" | "rollout">>>,
    Pick<z.input<typeof componentArgs>, Exclude<OwnArgs, "values" | "chart" | "rollout">>
  >
>();
assertType<Equal<Declared<ChartSource>, NonNullable<z.input<typeof COMPONENT_FIELDS.chart>>>>();
assertType<Equal<Declared<RolloutArgs>, NonNullable<z.input<typeof COMPONENT_FIELDS.rollout>>>>();
// After parsing every rollout field has its default.
assertType<Equal<Required<Declared<RolloutArgs>>, RolloutSettings>>();

describe("components: declared args and the schema agree", () => {
  it("the schema's defaults are the documented ones", () => {
    assert.deepEqual(COMPONENT_DEFAULTS, {
      namespace: "kube-system",
      createNamespace: false,
      dispatcherImplementation: "bundled",
      rollout: { ...ROLLOUT_DEFAULTS },
    });
  });
});
