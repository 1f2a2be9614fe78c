import assert from "node:assert/strict";
import fc from "fast-check";
import { parse } from "yaml";
import { toYaml, YamlEmitError } from "../../chart/yaml";

// Ground truth: a real YAML parser, read both as YAML 1.2 (serde_yaml, the `yaml` package) and as YAML 1.1
// (Go's yaml.v2 behind sigs.k8s.io/yaml), must give back exactly the data that was emitted.
function readBack(text: string, version: "1.1" | "1.2"): unknown {
  return parse(text, { version, uniqueKeys: true });
}

function assertRoundTrip(value: unknown): void {
  const text = toYaml(value);
  assert.deepEqual(readBack(text, "1.2"), value, text);
  assert.deepEqual(readBack(text, "1.1"), value, text);
}

describe("chart/yaml", () => {
  it("writes block style with plain scalars where they are safe", () => {
    const text = toYaml({
      a: { b: ["x", { c: 1, d: true }] },
      e: [],
      f: {},
      g: null,
      h: "/usr/bin/kata-deploy",
    });
    assert.equal(
      text,
      [
        "a:",
        "  b:",
        "    - x",
        "    - c: 1",
        "      d: true",
        "e: []",
        "f: {}",
        "g: null",
        "h: /usr/bin/kata-deploy",
        "",
      ].join("\n"),
    );
  });

  it("quotes every string that a YAML 1.1 or 1.2 parser would read as something else", () => {
    const tricky = [
      "",
      "yes",
      "No",
      "ON",
      "off",
      "y",
      "n",
      "true",
      "False",
      "null",
      "~",
      "1",
      "0x1f",
      "1:20",
      "1e+06",
      ".inf",
      "-a",
      "- a",
      "a: b",
      "a:",
      "#x",
      "a #b",
      " lead",
      "trail ",
      "!tag",
      "&anchor",
      "*alias",
      "@x",
      "`x",
      "%x",
      "{a}",
      "[a]",
      "a,b",
      "'q'",
      '"q"',
      "multi\nline",
      "tab\there",
      "back\\slash",
      "\u2028",
      "\u0085",
      "é",
      "😀",
      "=",
      "--node-selector=!node-role.kubernetes.io/control-plane,!node-role.kubernetes.io/master",
      "k in (a,b)",
      // Found by the property test below: signed bare exponents read as floats under YAML 1.1.
      "E-0",
      "e+5",
    ];
    for (const s of tricky) assertRoundTrip({ [s]: s, list: [s] });
  });

  it("round-trips arbitrary JSON data (property)", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        // JSON's -0 is 0 once written; the emitter writes numbers as JSON does.
        const normalized = JSON.parse(JSON.stringify(value));
        assertRoundTrip(normalized);
      }),
      { numRuns: 600 },
    );
  });

  it("round-trips short strings from the plain-scalar alphabet, where parser quirks hide (property)", () => {
    const short = fc.stringMatching(/^[A-Za-z0-9_.\/:=+ -]{1,5}$/);
    fc.assert(
      fc.property(short, (text) => assertRoundTrip({ [text]: text })),
      { numRuns: 3000 },
    );
  });

  it("refuses data that is not JSON", () => {
    assert.throws(() => toYaml({ a: Number.NaN }), YamlEmitError);
    assert.throws(() => toYaml({ a: () => 1 }), /a: function is not JSON data/);
    assert.throws(() => toYaml({ a: "\ud800" }), /unpaired UTF-16 surrogate/);
  });
});
