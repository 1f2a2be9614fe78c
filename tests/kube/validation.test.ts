import assert from "node:assert/strict";
import {
  dns1123LabelErrors,
  dns1123SubdomainErrors,
  labelKeyErrors,
  labelValueErrors,
} from "../../kube/validation";

describe("kube/validation", () => {
  const valid = (errs: string[]) => assert.deepEqual(errs, []);
  const invalid = (errs: string[]) => assert.ok(errs.length > 0, "expected a rejection");

  it("DNS-1123 labels", () => {
    valid(dns1123LabelErrors("kata-deploy"));
    valid(dns1123LabelErrors("a".repeat(63)));
    invalid(dns1123LabelErrors("a".repeat(64)));
    invalid(dns1123LabelErrors("Kata"));
    invalid(dns1123LabelErrors("-a"));
    invalid(dns1123LabelErrors("a.b"));
    invalid(dns1123LabelErrors(""));
  });
  it("DNS-1123 subdomains", () => {
    valid(dns1123SubdomainErrors("worker-1.example.com"));
    invalid(dns1123SubdomainErrors("Worker.example.com"));
    invalid(dns1123SubdomainErrors("a..b"));
    invalid(dns1123SubdomainErrors("a_b"));
    invalid(dns1123SubdomainErrors(`${"a".repeat(63)}.`.repeat(4) + "a"));
  });
  it("label keys", () => {
    valid(labelKeyErrors("katacontainers.io/kata-runtime"));
    valid(labelKeyErrors("Kata_Runtime.x"));
    invalid(labelKeyErrors("/x"));
    invalid(labelKeyErrors("a/b/c"));
    invalid(labelKeyErrors("Example.com/x"));
    invalid(labelKeyErrors("x/"));
    invalid(labelKeyErrors("a".repeat(64)));
    invalid(labelKeyErrors("-x"));
  });
  it("label values", () => {
    valid(labelValueErrors(""));
    valid(labelValueErrors("True_1.a"));
    invalid(labelValueErrors("a".repeat(64)));
    invalid(labelValueErrors("a b"));
    invalid(labelValueErrors("x-"));
  });
});
