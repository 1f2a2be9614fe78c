import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import fc from "fast-check";
import { dns1123LabelErrors, labelValueErrors } from "../../kube/validation";
import {
  jobName,
  nodeLabelValue,
  ownerValue,
  sanitizeLabelValue,
  sanitizeNode,
} from "../../dispatcher/naming";

const LONG_A = "node-with-a-really-really-really-really-really-long-name-aaaaaaa";
const LONG_B = "node-with-a-really-really-really-really-really-long-name-bbbbbbb";
const SHARED = "kata-deploy-install-with-a-very-long-shared-prefix-";

describe("dispatcher naming (upstream HEAD rule, dispatcher-reference.md §2.5/§4)", () => {
  it("sanitizes node names like the reference (§4.1)", () => {
    assert.equal(sanitizeNode("worker-0"), "worker-0");
    assert.equal(sanitizeNode("Worker.Example.COM"), "worker-example-com");
    assert.equal(sanitizeNode("--node--"), "node");
    assert.equal(sanitizeNode("a_b/c"), "a-b-c");
    // One dash per non-ASCII code point, not per UTF-16 unit.
    assert.equal(sanitizeNode("nœud-😀x"), "n-ud--x");
  });

  it("matches the HEAD column of the §4.6 vectors", () => {
    assert.equal(jobName("kata-deploy-install", "worker-0"), "kata-deploy-install-worker-0");
    assert.equal(
      jobName("kata-deploy-cleanup", "Worker.0"),
      "kata-deploy-cleanup-worker-0-c26422bbc0614471203b60fc",
    );
    assert.equal(
      jobName("kata-deploy-install", "worker.a"),
      "kata-deploy-install-worker-a-ab99af0b0b990aa85bedda6f",
    );
    assert.equal(
      jobName("kata-deploy-install", LONG_A),
      "kata-deploy-install-node-with-a-really-8e34c421e34627e513a2e62d",
    );
    assert.equal(
      jobName("kata-deploy-install", LONG_B),
      "kata-deploy-install-node-with-a-really-591c4957ff53c4a347c9c433",
    );
    assert.equal(
      jobName(`${SHARED}alpha`, "worker-0"),
      "kata-deploy-install-with-a-very-long-s-b0a22898eeee55a73de59a69",
    );
    assert.equal(
      jobName(`${SHARED}bravo`, "worker-0"),
      "kata-deploy-install-with-a-very-long-s-66cff97366be8e3447a72938",
    );
    assert.equal(
      jobName("kata-deploy-install", "Worker.Example.COM"),
      "kata-deploy-install-worker-example-com-8c36e6634a09aeca958f6b09",
    );
    assert.equal(sanitizeLabelValue("Kata_Deploy.Install"), "kata-deploy-install-b03f33c737d67487a689d1c8");
    assert.equal(sanitizeLabelValue("--weird--"), "weird-f0fde72d02974723da3aae6f");
    assert.equal(sanitizeLabelValue("kata.foo"), "kata-foo-c468324a1d29caf794e35024");
    assert.equal(sanitizeLabelValue("a".repeat(100)), `${"a".repeat(38)}-2816597888e4a0d3a36b82b8`);
    assert.equal(sanitizeLabelValue("..."), "dispatcher-ab5df625bc76dbd4e163bed2");
  });

  it("keeps the reference's pairwise distinctions (§4.2)", () => {
    assert.equal(ownerValue("kata-deploy-install"), "kata-deploy-install");
    assert.equal(ownerValue("kata-foo"), "kata-foo");
    assert.ok(ownerValue("kata.foo").startsWith("kata-foo-"));
    assert.notEqual(jobName("p", "worker.a"), jobName("p", "worker-a"));
    assert.notEqual(jobName(`${SHARED}alpha`, "worker-0"), jobName(`${SHARED}bravo`, "worker-0"));
    // The node label is the HEAD label rule: verbatim up to 63 characters, hashed beyond (LONG_A has 64).
    assert.equal(nodeLabelValue(LONG_A.slice(1)), LONG_A.slice(1));
    assert.equal(nodeLabelValue(LONG_A), sanitizeLabelValue(LONG_A));
    assert.equal(nodeLabelValue(LONG_A).length, 63);
  });

  // Node names are DNS subdomains; prefixes are anything a user may type into --name-prefix.
  const subdomain = fc
    .array(fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/), { minLength: 1, maxLength: 6 })
    .map((parts) => parts.join("."));
  const anyNode = fc.oneof(
    subdomain,
    fc.string({ minLength: 1, maxLength: 80 }),
    fc.stringMatching(/^[A-Za-z0-9._-]{1,120}$/),
  );
  // An empty --name-prefix is refused by the CLI (it would give an empty owner value), so it is not generated.
  const anyPrefix = fc.oneof(
    fc.string({ minLength: 1, maxLength: 90 }),
    fc.stringMatching(/^[a-z0-9-]{1,90}$/),
  );

  it("always yields valid, deterministic names and labels (property)", () => {
    fc.assert(
      fc.property(anyPrefix, anyNode, (prefix, node) => {
        const owner = ownerValue(prefix);
        assert.deepEqual(labelValueErrors(owner), [], `owner ${owner}`);
        assert.deepEqual(dns1123LabelErrors(owner), [], `owner ${owner}`);
        const name = jobName(owner, node);
        assert.deepEqual(dns1123LabelErrors(name), [], `job name ${name}`);
        assert.equal(name, jobName(ownerValue(prefix), node));
        assert.deepEqual(labelValueErrors(nodeLabelValue(node)), []);
      }),
      { numRuns: 2000 },
    );
  });

  it("never gives two different (prefix, node) pairs the same Job name (property)", () => {
    fc.assert(
      fc.property(anyPrefix, anyNode, anyPrefix, anyNode, (p1, n1, p2, n2) => {
        const o1 = ownerValue(p1);
        const o2 = ownerValue(p2);
        if (p1 !== p2) assert.notEqual(o1, o2);
        if (p1 !== p2 || n1 !== n2) assert.notEqual(jobName(o1, n1), jobName(o2, n2));
      }),
      { numRuns: 2000 },
    );
    // Near-collisions a random generator rarely produces.
    fc.assert(
      fc.property(subdomain, (node) => {
        const dashed = node.replace(/\./g, "-");
        if (dashed !== node) assert.notEqual(jobName("p", node), jobName("p", dashed));
      }),
    );
  });
});

describe("files the rollout's serialized provider imports", () => {
  it("use Node built-ins only, with every local file they import (dispatcher/naming.ts, kube/jobStatus.ts)", () => {
    const pending = ["../../dispatcher/naming.ts", "../../kube/jobStatus.ts"].map((f) =>
      path.resolve(__dirname, f),
    );
    const seen = new Set<string>();
    for (let file = pending.pop(); file; file = pending.pop()) {
      if (seen.has(file)) continue;
      seen.add(file);
      const text = readFileSync(file, "utf8");
      const specifiers = [...text.matchAll(/(?:from\s+|require\()\s*["']([^"']+)["']/g)].map(
        (m) => m[1] ?? "",
      );
      for (const spec of specifiers) {
        if (spec.startsWith(".")) pending.push(path.resolve(path.dirname(file), `${spec}.ts`));
        else assert.match(spec, /^node:/, `${path.relative(__dirname, file)} imports ${spec}`);
      }
    }
  });
});
