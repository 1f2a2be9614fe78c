// The typed arguments mirror chart 4.0.0's value keys: every typed field exists in the chart's values.yaml
// (chart/defaults.ts, transcribed from the chart), so the chart's documentation reads onto them.
import assert from "node:assert/strict";
import { chartDefaults } from "../../chart/defaults";
import { COMPONENT_FIELDS, validatedFieldNames } from "../../components/validation";

type Tree = Record<string, unknown>;
const defaults = chartDefaults() as Tree;
const at = (path: string[]): Tree => path.reduce<Tree>((node, key) => (node[key] ?? {}) as Tree, defaults);

describe("components: typed arguments are chart 4.0.0 value keys", () => {
  it("every top-level chart argument is a key of values.yaml (disableAllShims = shims.disableAll)", () => {
    const chartArgs = validatedFieldNames([]).filter(
      (n) => !(n in COMPONENT_FIELDS) && n !== "disableAllShims",
    );
    assert.deepEqual(
      chartArgs.filter((n) => !(n in defaults)),
      [],
    );
    assert.equal(at(["shims"]).disableAll, false);
  });

  it("the typed blocks have exactly the chart's keys", () => {
    for (const path of [
      ["job"],
      ["job", "cleanup"],
      ["job", "dispatcherImage"],
      ["image"],
      ["env"],
      ["snapshotter"],
      ["defaultShim"],
    ]) {
      assert.deepEqual(validatedFieldNames(path).sort(), Object.keys(at(path)).sort(), path.join("."));
    }
  });

  it("a shim's settings are the keys the default shims use, plus the chart's implicit dropIn and runtimeClass", () => {
    const used = new Set<string>(["dropIn", "runtimeClass"]);
    for (const [name, shim] of Object.entries(at(["shims"]))) {
      if (name !== "disableAll") for (const key of Object.keys(shim as Tree)) used.add(key);
    }
    assert.deepEqual(validatedFieldNames(["shims", "*"]).sort(), [...used].sort());
  });
});
