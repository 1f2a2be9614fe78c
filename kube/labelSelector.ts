// Kubernetes label selectors (apimachinery pkg/labels, 1.35 behaviour): lexer, parser, validation,
// canonical String() and matching, plus the metav1.LabelSelector object form. Pure, Node built-ins only,
// so the simulator, the dispatcher and the waiter all read selectors exactly as kube-apiserver does.
import { labelKeyErrors, labelValueErrors } from "./validation";

/** selection.Operator values, as the Go code spells them. */
export type SelectorOperator = "in" | "notin" | "=" | "==" | "!=" | "exists" | "!" | "gt" | "lt";

const ALL_OPERATORS: readonly SelectorOperator[] = [
  "in",
  "notin",
  "=",
  "==",
  "!=",
  "exists",
  "!",
  "gt",
  "lt",
];

export interface Requirement {
  readonly key: string;
  readonly operator: SelectorOperator;
  /** Sorted and de-duplicated for in/notin (as sets.String.List()); one value for =, ==, !=, gt, lt. */
  readonly values: readonly string[];
}

/** One field error, in the shape of apimachinery's field.Error (type is the reason, e.g. FieldValueInvalid). */
export interface SelectorFieldError {
  field: string;
  type: "FieldValueInvalid" | "FieldValueNotSupported";
  message: string;
}

export class SelectorParseError extends Error {
  constructor(
    message: string,
    readonly fieldErrors: SelectorFieldError[] = [],
  ) {
    super(message);
    this.name = "SelectorParseError";
  }
}

export type Labels = Readonly<Record<string, string>> | undefined;

// ---------------------------------------------------------------------------------------------------
// Lexer

type TokenKind =
  | "EndOfString"
  | "ClosedPar"
  | "Comma"
  | "DoesNotExist"
  | "DoubleEquals"
  | "Equals"
  | "GreaterThan"
  | "Identifier"
  | "In"
  | "LessThan"
  | "NotEquals"
  | "NotIn"
  | "OpenPar";

interface Token {
  kind: TokenKind;
  literal: string;
}

const STRING_TO_TOKEN: Readonly<Record<string, TokenKind>> = {
  ")": "ClosedPar",
  ",": "Comma",
  "!": "DoesNotExist",
  "==": "DoubleEquals",
  "=": "Equals",
  ">": "GreaterThan",
  in: "In",
  "<": "LessThan",
  "!=": "NotEquals",
  notin: "NotIn",
  "(": "OpenPar",
};

const isWhitespace = (ch: string): boolean => ch === " " || ch === "\t" || ch === "\r" || ch === "\n";
const isSpecialSymbol = (ch: string): boolean => "=!(),><".includes(ch);

/** Splits a selector into tokens the way labels.Lexer does (longest special-symbol match, keywords in/notin). */
export function lexSelector(input: string): Token[] {
  const tokens: Token[] = [];
  let pos = 0;
  for (;;) {
    while (pos < input.length && isWhitespace(input[pos])) pos++;
    if (pos >= input.length) {
      tokens.push({ kind: "EndOfString", literal: "" });
      return tokens;
    }
    if (isSpecialSymbol(input[pos])) {
      let buffer = "";
      let last: Token | undefined;
      while (pos < input.length && isSpecialSymbol(input[pos])) {
        buffer += input[pos];
        const kind = STRING_TO_TOKEN[buffer];
        if (kind) {
          last = { kind, literal: buffer };
          pos++;
        } else if (last) {
          break;
        } else {
          pos++;
        }
      }
      if (!last) throw new SelectorParseError(`error expected: keyword found '${buffer}'`);
      tokens.push(last);
      continue;
    }
    const start = pos;
    while (pos < input.length && !isWhitespace(input[pos]) && !isSpecialSymbol(input[pos])) pos++;
    const word = input.slice(start, pos);
    const keyword = STRING_TO_TOKEN[word];
    tokens.push({ kind: keyword ?? "Identifier", literal: word });
  }
}

// ---------------------------------------------------------------------------------------------------
// Requirement construction and validation (labels.NewRequirement)

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** strconv.ParseInt(s, 10, 64): optional sign, decimal digits, within int64. */
export function parseInt64(value: string): bigint | undefined {
  if (!/^[+-]?[0-9]+$/.test(value)) return undefined;
  const n = BigInt(value);
  return n < INT64_MIN || n > INT64_MAX ? undefined : n;
}

function requirementErrors(key: string, operator: string, values: readonly string[]): SelectorFieldError[] {
  const errors: SelectorFieldError[] = [];
  const keyProblems = labelKeyErrors(key);
  if (keyProblems.length > 0) {
    errors.push({
      field: "key",
      type: "FieldValueInvalid",
      message: `Invalid value: "${key}": ${keyProblems.join("; ")}`,
    });
  }
  switch (operator) {
    case "in":
    case "notin":
      if (values.length === 0) {
        errors.push({
          field: "values",
          type: "FieldValueInvalid",
          message: "for 'in', 'notin' operators, values set can't be empty",
        });
      }
      break;
    case "=":
    case "==":
    case "!=":
      if (values.length !== 1) {
        errors.push({
          field: "values",
          type: "FieldValueInvalid",
          message: "exact-match compatibility requires one single value",
        });
      }
      break;
    case "exists":
    case "!":
      if (values.length !== 0) {
        errors.push({
          field: "values",
          type: "FieldValueInvalid",
          message: "values set must be empty for exists and does not exist",
        });
      }
      break;
    case "gt":
    case "lt":
      if (values.length !== 1) {
        errors.push({
          field: "values",
          type: "FieldValueInvalid",
          message: "for 'Gt', 'Lt' operators, exactly one value is required",
        });
      }
      values.forEach((v, i) => {
        if (parseInt64(v) === undefined) {
          errors.push({
            field: `values[${i}]`,
            type: "FieldValueInvalid",
            message: `Invalid value: "${v}": for 'Gt', 'Lt' operators, the value must be an integer`,
          });
        }
      });
      break;
    default:
      errors.push({
        field: "operator",
        type: "FieldValueNotSupported",
        message: `Unsupported value: "${operator}": supported values: ${ALL_OPERATORS.map((o) => `"${o}"`).join(", ")}`,
      });
  }
  values.forEach((v, i) => {
    const problems = labelValueErrors(v);
    if (problems.length > 0) {
      errors.push({
        field: `values[${i}][${key}]`,
        type: "FieldValueInvalid",
        message: `Invalid value: "${v}": ${problems.join("; ")}`,
      });
    }
  });
  return errors;
}

/** labels.NewRequirement: validates and returns the requirement (in/notin values sorted and de-duplicated). */
export function newRequirement(key: string, operator: string, values: readonly string[]): Requirement {
  const errors = requirementErrors(key, operator, values);
  if (errors.length > 0) {
    const text = errors.map((e) => `${e.field}: ${e.message}`);
    throw new SelectorParseError(text.length === 1 ? text[0] : `[${text.join(", ")}]`, errors);
  }
  const normalized =
    operator === "in" || operator === "notin" ? [...new Set(values)].sort(compareStrings) : [...values];
  return { key, operator: operator as SelectorOperator, values: normalized };
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------------
// Parser (labels.Parser)

class Parser {
  private position = 0;
  constructor(private readonly tokens: Token[]) {}

  /** In the Values context the keywords in/notin are plain identifiers. */
  private lookahead(valuesContext: boolean): Token {
    const t = this.tokens[this.position];
    if (valuesContext && (t.kind === "In" || t.kind === "NotIn"))
      return { kind: "Identifier", literal: t.literal };
    return t;
  }

  private consume(valuesContext: boolean): Token {
    const t = this.lookahead(valuesContext);
    if (this.position < this.tokens.length - 1) this.position++;
    return t;
  }

  parse(): Requirement[] {
    const requirements: Requirement[] = [];
    for (;;) {
      const t = this.lookahead(true);
      if (t.kind === "Identifier" || t.kind === "DoesNotExist") {
        try {
          requirements.push(this.parseRequirement());
        } catch (e) {
          if (e instanceof SelectorParseError) {
            throw new SelectorParseError(`unable to parse requirement: ${e.message}`, e.fieldErrors);
          }
          throw e;
        }
        const after = this.consume(true);
        if (after.kind === "EndOfString") return requirements;
        if (after.kind === "Comma") {
          const next = this.lookahead(true);
          if (next.kind !== "Identifier" && next.kind !== "DoesNotExist") {
            throw new SelectorParseError(`found '${next.literal}', expected: identifier after ','`);
          }
          continue;
        }
        throw new SelectorParseError(`found '${after.literal}', expected: ',' or 'end of string'`);
      }
      if (t.kind === "EndOfString") return requirements;
      throw new SelectorParseError(`found '${t.literal}', expected: !, identifier, or 'end of string'`);
    }
  }

  private parseRequirement(): Requirement {
    let operator: SelectorOperator | undefined;
    let t = this.consume(true);
    if (t.kind === "DoesNotExist") {
      operator = "!";
      t = this.consume(true);
    }
    if (t.kind !== "Identifier") throw new SelectorParseError(`found '${t.literal}', expected: identifier`);
    const key = t.literal;
    const keyProblems = labelKeyErrors(key);
    if (keyProblems.length > 0) {
      throw new SelectorParseError(`key: Invalid value: "${key}": ${keyProblems.join("; ")}`, [
        { field: "key", type: "FieldValueInvalid", message: keyProblems.join("; ") },
      ]);
    }
    // "!key" is complete by itself: whatever follows it is the outer loop's business (so "!x=a" fails there).
    if (operator === "!") return newRequirement(key, "!", []);
    const next = this.lookahead(true).kind;
    if (next === "EndOfString" || next === "Comma") return newRequirement(key, "exists", []);
    const op = this.parseOperator();
    const values = op === "in" || op === "notin" ? this.parseValues() : this.parseExactValue();
    return newRequirement(key, op, values);
  }

  private parseOperator(): SelectorOperator {
    const t = this.consume(false);
    switch (t.kind) {
      case "Equals":
        return "=";
      case "DoubleEquals":
        return "==";
      case "GreaterThan":
        return "gt";
      case "LessThan":
        return "lt";
      case "In":
        return "in";
      case "NotEquals":
        return "!=";
      case "NotIn":
        return "notin";
      default:
        throw new SelectorParseError(`found '${t.literal}', expected: in, notin, =, ==, !=, gt, lt`);
    }
  }

  private parseValues(): string[] {
    const open = this.consume(true);
    if (open.kind !== "OpenPar") throw new SelectorParseError(`found '${open.literal}' expected: '('`);
    const t = this.lookahead(true);
    if (t.kind === "Identifier" || t.kind === "Comma") {
      const values = this.parseIdentifiersList();
      const close = this.consume(true);
      if (close.kind !== "ClosedPar") throw new SelectorParseError(`found '${close.literal}', expected: ')'`);
      return values;
    }
    if (t.kind === "ClosedPar") {
      this.consume(true);
      return [""];
    }
    throw new SelectorParseError(`found '${t.literal}', expected: ',', ')' or identifier`);
  }

  private parseIdentifiersList(): string[] {
    const values = new Set<string>();
    for (;;) {
      const t = this.consume(true);
      if (t.kind === "Identifier") {
        values.add(t.literal);
        const next = this.lookahead(true);
        if (next.kind === "Comma") continue;
        if (next.kind === "ClosedPar") return [...values];
        throw new SelectorParseError(`found '${next.literal}', expected: ',' or ')'`);
      }
      if (t.kind === "Comma") {
        // An empty slot before, between or after commas stands for the empty value (1.35: any run of commas).
        if (values.size === 0) values.add("");
        for (;;) {
          const next = this.lookahead(true);
          if (next.kind === "ClosedPar") {
            values.add("");
            return [...values];
          }
          if (next.kind !== "Comma") break;
          this.consume(true);
          values.add("");
        }
        continue;
      }
      throw new SelectorParseError(`found '${t.literal}', expected: ',', or identifier`);
    }
  }

  private parseExactValue(): string[] {
    const t = this.lookahead(true);
    if (t.kind === "EndOfString" || t.kind === "Comma") return [""];
    const v = this.consume(true);
    if (v.kind === "Identifier") return [v.literal];
    throw new SelectorParseError(`found '${v.literal}', expected: identifier`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Selector

export class LabelSelector {
  /** Requirements sorted by key (stable). An empty list matches everything. */
  constructor(
    readonly requirements: readonly Requirement[],
    /** true only for the "Nothing" selector (a nil metav1.LabelSelector). */
    readonly matchesNothing = false,
  ) {}

  static everything(): LabelSelector {
    return new LabelSelector([]);
  }

  static nothing(): LabelSelector {
    return new LabelSelector([], true);
  }

  isEmpty(): boolean {
    return this.requirements.length === 0 && !this.matchesNothing;
  }

  matches(labels: Labels): boolean {
    if (this.matchesNothing) return false;
    for (const r of this.requirements) if (!requirementMatches(r, labels)) return false;
    return true;
  }

  toString(): string {
    return this.requirements.map(requirementToString).join(",");
  }

  /** labels.Selector.RequiresExactMatch: the single value a label must have, when the selector pins one. */
  requiresExactMatch(label: string): string | undefined {
    for (const r of this.requirements) {
      if (r.key !== label) continue;
      if ((r.operator === "=" || r.operator === "==" || r.operator === "in") && r.values.length === 1)
        return r.values[0];
      return undefined;
    }
    return undefined;
  }
}

export function requirementMatches(r: Requirement, labels: Labels): boolean {
  const has = labels !== undefined && Object.prototype.hasOwnProperty.call(labels, r.key);
  const value = has ? labels[r.key] : undefined;
  switch (r.operator) {
    case "in":
    case "=":
    case "==":
      return has && r.values.includes(value as string);
    case "notin":
    case "!=":
      return !has || !r.values.includes(value as string);
    case "exists":
      return has;
    case "!":
      return !has;
    case "gt":
    case "lt": {
      if (!has || r.values.length !== 1) return false;
      const actual = parseInt64(value as string);
      const bound = parseInt64(r.values[0]);
      if (actual === undefined || bound === undefined) return false;
      return r.operator === "gt" ? actual > bound : actual < bound;
    }
  }
}

export function requirementToString(r: Requirement): string {
  const prefix = r.operator === "!" ? "!" : "";
  const ops: Record<SelectorOperator, string> = {
    "=": "=",
    "==": "==",
    "!=": "!=",
    in: " in ",
    notin: " notin ",
    gt: ">",
    lt: "<",
    exists: "",
    "!": "",
  };
  if (r.operator === "exists" || r.operator === "!") return prefix + r.key;
  const joined = r.values.length === 1 ? r.values[0] : [...r.values].sort(compareStrings).join(",");
  const body = r.operator === "in" || r.operator === "notin" ? `(${joined})` : joined;
  return `${r.key}${ops[r.operator]}${body}`;
}

function sortByKey(requirements: Requirement[]): Requirement[] {
  // Array.prototype.sort is stable, as the reference sort is: same-key requirements keep input order.
  return requirements.sort((a, b) => compareStrings(a.key, b.key));
}

/** labels.Parse: the kube-apiserver's `labelSelector` query parameter. Throws SelectorParseError. */
export function parseLabelSelector(selector: string): LabelSelector {
  const parser = new Parser(lexSelector(selector));
  return new LabelSelector(sortByKey(parser.parse()));
}

/** A selector built from requirements (validated), sorted by key as labels.NewSelector().Add(...) does. */
export function selectorFromRequirements(requirements: readonly Requirement[]): LabelSelector {
  return new LabelSelector(sortByKey(requirements.map((r) => newRequirement(r.key, r.operator, r.values))));
}

/** labels.Set(...).String(): `k=v` pairs sorted by key. */
export function labelSetToString(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort(compareStrings)
    .map((k) => `${k}=${labels[k]}`)
    .join(",");
}

/** metav1.LabelSelector (the object form of Job/DaemonSet `spec.selector`). */
export interface LabelSelectorObject {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

const OBJECT_OPERATORS: Readonly<Record<string, SelectorOperator>> = {
  In: "in",
  NotIn: "notin",
  Exists: "exists",
  DoesNotExist: "!",
};

/** metav1.LabelSelectorAsSelector: nil matches nothing, {} matches everything. Throws SelectorParseError. */
export function labelSelectorFromObject(obj: LabelSelectorObject | null | undefined): LabelSelector {
  if (obj === null || obj === undefined) return LabelSelector.nothing();
  const requirements: Requirement[] = [];
  for (const [key, value] of Object.entries(obj.matchLabels ?? {}))
    requirements.push(newRequirement(key, "=", [value]));
  for (const expr of obj.matchExpressions ?? []) {
    const op = OBJECT_OPERATORS[expr.operator];
    if (!op) throw new SelectorParseError(`"${expr.operator}" is not a valid label selector operator`);
    requirements.push(newRequirement(expr.key, op, expr.values ?? []));
  }
  return new LabelSelector(sortByKey(requirements));
}

/** labels.ConvertSelectorToLabelsMap: only `k=v` terms (client tooling), each key and value validated. */
export function convertSelectorToLabelsMap(selector: string): Record<string, string> {
  const labels: Record<string, string> = {};
  if (selector === "") return labels;
  for (const term of selector.split(",")) {
    const parts = term.split("=");
    if (parts.length !== 2) throw new SelectorParseError(`invalid selector: ${selector}`);
    const key = parts[0].trim();
    const value = parts[1].trim();
    const keyProblems = labelKeyErrors(key);
    if (keyProblems.length > 0)
      throw new SelectorParseError(`invalid label key "${key}": ${keyProblems.join("; ")}`);
    const valueProblems = labelValueErrors(value);
    if (valueProblems.length > 0) {
      throw new SelectorParseError(
        `invalid label value: "${value}": at key: "${key}": ${valueProblems.join("; ")}`,
      );
    }
    labels[key] = value;
  }
  return labels;
}
