// Every label/field selector vector (transcribed from apimachinery tests and reference runs) against our parser.
import assert from "node:assert/strict";
import { readVectors } from "../vectors";
import {
  convertSelectorToLabelsMap,
  labelSelectorFromObject,
  labelSetToString,
  lexSelector,
  LabelSelectorObject,
  newRequirement,
  parseLabelSelector,
  SelectorParseError,
  selectorFromRequirements,
} from "../../kube/labelSelector";
import {
  escapeFieldValue,
  FieldSelectorParseError,
  parseFieldSelector,
  splitFieldTerm,
  splitFieldTerms,
  unescapeFieldValue,
} from "../../kube/fieldSelector";

interface ParseCase {
  selector: string;
  valid: boolean;
  canonical?: string;
}
interface MatchCase {
  selector: string;
  labels?: Record<string, string>;
  fields?: Record<string, string>;
  matches: boolean;
  valid?: boolean;
}
interface RequirementSpec {
  key: string;
  operator: string;
  values: string[];
}
interface Vectors {
  parse: ParseCase[];
  match: MatchCase[];
  requirements: (RequirementSpec & { valid: boolean; error_field?: string; error_type?: string })[];
  to_string: { requirements: RequirementSpec[]; string: string }[];
  set_to_string: { set: Record<string, string>; string?: string; valid?: boolean; error_field?: string }[];
  requires_exact_match: { selector: string; label: string; found: boolean; value: string }[];
  lexer: {
    single_token: { input: string; token: string }[];
    sequences: { input: string; tokens: string[] }[];
  };
  binary_operators: { accepted: string[]; rejected: string[] };
  label_selector_object: {
    cases: {
      label_selector: LabelSelectorObject | null;
      result?: string;
      string?: string;
      valid?: boolean;
    }[];
  };
  convert_to_labels_map: { cases: { selector: string; valid: boolean; labels?: Record<string, string> }[] };
  field_selectors: {
    parse: ParseCase[];
    match: MatchCase[];
    escape: { unescaped: string; escaped: string }[];
    invalid_escape: string[];
    split_terms: { selector: string; terms: string[] | null }[];
    split_term: { term: string; lhs: string; op: string; rhs: string; ok: boolean }[];
  };
}

const vectors: Vectors = readVectors("label-selectors.json");

describe("label selector vectors (k8s 1.35)", () => {
  it("parses every 'parse' case to the expected validity and canonical String()", () => {
    for (const c of vectors.parse) {
      if (c.valid) {
        const s = parseLabelSelector(c.selector);
        assert.equal(s.toString(), c.canonical, `canonical of ${JSON.stringify(c.selector)}`);
        // The canonical form is a fixed point of the parser.
        assert.equal(parseLabelSelector(s.toString()).toString(), c.canonical);
      } else {
        assert.throws(
          () => parseLabelSelector(c.selector),
          SelectorParseError,
          `should reject ${JSON.stringify(c.selector)}`,
        );
      }
    }
  });

  it("matches every 'match' case", () => {
    for (const c of vectors.match) {
      if (c.valid === false) {
        assert.throws(() => parseLabelSelector(c.selector), SelectorParseError);
        continue;
      }
      assert.equal(
        parseLabelSelector(c.selector).matches(c.labels),
        c.matches,
        `${c.selector} on ${JSON.stringify(c.labels)}`,
      );
    }
  });

  it("validates requirement construction like NewRequirement (field of the error included)", () => {
    for (const c of vectors.requirements) {
      if (c.valid) {
        assert.doesNotThrow(() => newRequirement(c.key, c.operator, c.values), `${c.key} ${c.operator}`);
      } else {
        let caught: unknown;
        try {
          newRequirement(c.key, c.operator, c.values);
        } catch (e) {
          caught = e;
        }
        assert.ok(
          caught instanceof SelectorParseError,
          `${c.key} ${c.operator} ${JSON.stringify(c.values)} must fail`,
        );
        assert.ok(
          caught.fieldErrors.some((e) => e.field === c.error_field && e.type === c.error_type),
          `${c.key}: expected ${c.error_field}/${c.error_type}, got ${JSON.stringify(caught.fieldErrors)}`,
        );
      }
    }
  });

  it("prints requirement lists (to_string) and label sets (set_to_string)", () => {
    for (const c of vectors.to_string) {
      assert.equal(
        selectorFromRequirements(
          c.requirements.map((r) => newRequirement(r.key, r.operator, r.values)),
        ).toString(),
        c.string,
      );
    }
    for (const c of vectors.set_to_string) {
      if (c.valid === false) {
        assert.throws(() =>
          selectorFromRequirements(Object.entries(c.set).map(([k, v]) => newRequirement(k, "=", [v]))),
        );
      } else {
        assert.equal(labelSetToString(c.set), c.string);
      }
    }
  });

  it("answers RequiresExactMatch", () => {
    for (const c of vectors.requires_exact_match) {
      const v = parseLabelSelector(c.selector).requiresExactMatch(c.label);
      assert.equal(v !== undefined, c.found, c.selector);
      assert.equal(v ?? "", c.value);
    }
  });

  it("lexes like labels.Lexer", () => {
    for (const c of vectors.lexer.single_token) {
      assert.equal(lexSelector(c.input)[0].kind, c.token, JSON.stringify(c.input));
    }
    for (const c of vectors.lexer.sequences) {
      const kinds = lexSelector(c.input).map((t) => t.kind);
      assert.deepEqual(kinds.slice(0, -1), c.tokens, c.input);
    }
  });

  it("accepts exactly the binary operators after a key", () => {
    for (const op of vectors.binary_operators.accepted) {
      const value = op === ">" || op === "<" ? "1" : op === "in" || op === "notin" ? "(a)" : "a";
      assert.doesNotThrow(() => parseLabelSelector(`x ${op} ${value}`), op);
    }
    for (const op of vectors.binary_operators.rejected) {
      assert.throws(() => parseLabelSelector(`x ${op} a`), SelectorParseError, op);
    }
  });

  it("converts metav1.LabelSelector objects", () => {
    for (const c of vectors.label_selector_object.cases) {
      if (c.valid === false) {
        assert.throws(() => labelSelectorFromObject(c.label_selector));
        continue;
      }
      const s = labelSelectorFromObject(c.label_selector);
      if (c.result === "Nothing") assert.equal(s.matches({}), false);
      if (c.result === "Everything") assert.equal(s.matches({ any: "thing" }), true);
      assert.equal(s.toString(), c.string ?? "");
    }
  });

  it("implements ConvertSelectorToLabelsMap", () => {
    for (const c of vectors.convert_to_labels_map.cases) {
      if (c.valid) assert.deepEqual(convertSelectorToLabelsMap(c.selector), c.labels, c.selector);
      else assert.throws(() => convertSelectorToLabelsMap(c.selector), SelectorParseError, c.selector);
    }
  });
});

describe("field selector vectors", () => {
  const f = vectors.field_selectors;
  it("parses every case to the expected validity and canonical String()", () => {
    for (const c of f.parse) {
      if (c.valid) assert.equal(parseFieldSelector(c.selector).toString(), c.canonical, c.selector);
      else assert.throws(() => parseFieldSelector(c.selector), FieldSelectorParseError, c.selector);
    }
  });
  it("matches every case", () => {
    for (const c of f.match) {
      if (c.valid === false) {
        assert.throws(() => parseFieldSelector(c.selector));
        continue;
      }
      assert.equal(parseFieldSelector(c.selector).matches(c.fields ?? {}), c.matches, c.selector);
    }
  });
  it("escapes, unescapes and splits like fields.*", () => {
    for (const c of f.escape) {
      assert.equal(escapeFieldValue(c.unescaped), c.escaped);
      assert.equal(unescapeFieldValue(c.escaped), c.unescaped);
    }
    for (const bad of f.invalid_escape)
      assert.throws(() => unescapeFieldValue(bad), FieldSelectorParseError, bad);
    // Go returns nil for "", written as null in the vectors.
    for (const c of f.split_terms) assert.deepEqual(splitFieldTerms(c.selector), c.terms ?? [], c.selector);
    for (const c of f.split_term) {
      const r = splitFieldTerm(c.term);
      if (!c.ok) assert.equal(r, undefined, c.term);
      else assert.deepEqual(r, { lhs: c.lhs, op: c.op, rhs: c.rhs }, c.term);
    }
  });
});
