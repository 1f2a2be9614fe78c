// Image references against the registry grammar (components/imageReference.ts), with cases in the style of the
// distribution project's reference tests, and through checkArgs so that each problem names its field.
import assert from "node:assert/strict";
import { imageReferenceErrors } from "../../components/imageReference";
import { checkArgs } from "../../components/validation";

const SHA256 = "a".repeat(64);

describe("components: image references by the registry grammar", () => {
  it("accepts names with registries, ports, IPv6 hosts, separators, tags and registered digests", () => {
    for (const ref of [
      "busybox",
      "quay.io/kata-containers/kata-deploy",
      "localhost:5000/kata_deploy/x__y/a-b--c/d.e",
      "[2001:db8::1]:5000/kata",
      "Registry.Example.com/kata:4.0.0",
      `quay.io/kata@sha256:${SHA256}`,
      `quay.io/kata:4.0.0@sha256:${SHA256}`,
      `quay.io/kata@sha512:${"0".repeat(128)}`,
    ])
      assert.deepEqual(imageReferenceErrors(ref), [], ref);
  });

  it("refuses bad digests, tags and names, saying what would be valid", () => {
    const cases: [string, RegExp][] = [
      ["quay.io/kata@sha256:zzz", /sha256 takes exactly 64 lowercase hex digits/],
      [`quay.io/kata@sha256:${"A".repeat(64)}`, /lowercase hex/],
      [`quay.io/kata@sha256:${SHA256}0`, /exactly 64/],
      ["quay.io/kata@sha256", /expected <algorithm>:<hex>/],
      [`quay.io/kata@md5:${"a".repeat(32)}`, /unsupported algorithm "md5"/],
      ["quay.io/kata:-bad", /not an image tag/],
      [`quay.io/kata:${"t".repeat(129)}`, /not an image tag/],
      ["quay.io/Kata", /must be lowercase/],
      ["quay.io/kata-/x", /not a repository name/],
      ["quay.io//kata", /not a repository name/],
      [`quay.io/${"a".repeat(250)}`, /at most 255/],
    ];
    for (const [ref, why] of cases) {
      const errors = imageReferenceErrors(ref);
      assert.equal(errors.length, 1, `${ref}: ${errors.join("; ")}`);
      assert.match(errors[0], why, ref);
    }
  });

  it("names the field in checkArgs: image.reference, values.image.tag; a valid dispatcher digest passes", () => {
    const { errors } = checkArgs(
      {
        deploymentMode: "job",
        image: { reference: "quay.io/kata@sha256:zzz" },
        job: { dispatcherImage: { reference: `ghcr.io/d@sha256:${SHA256}` } },
        values: { monitor: {}, image: { tag: "4.0 rc" } },
      },
      "kata",
    );
    assert.deepEqual(
      errors.map((e) => e.path),
      ["image.reference", "values.image.tag"],
      "each bad field by its path; the valid digest passes",
    );
    assert.match(errors[0].message, /"quay\.io\/kata@sha256:zzz": digest "sha256:zzz" is not valid/);
  });
});
