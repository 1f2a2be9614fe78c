// Container image references, by the grammar of the distribution project's `reference` package (the one
// registries, containerd and Docker apply):
//   reference := name [ ":" tag ] [ "@" digest ]
//   name      := [ domain "/" ] path-component *( "/" path-component )   (at most 255 characters)
//   domain    := host [ ":" port ],  host := domain-name | "[" IPv6 "]"
//   path-component := [a-z0-9]+ *( separator [a-z0-9]+ ),  separator := "." | "_" | "__" | "-"+
//   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//   digest    := algorithm ":" hex, and a registered algorithm fixes the hex: sha256 = 64, sha384 = 96,
//                sha512 = 128 lowercase hex digits (opencontainers/go-digest).
// Pure; each function returns what is wrong, worded for the person who wrote the reference.

const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const NAME = new RegExp(`^(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const NAME_MAX = 255;
const DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

export const TAG_RULE = "up to 128 of [A-Za-z0-9_.-], not starting with . or -";

export function imageTagErrors(tag: string): string[] {
  return TAG.test(tag) ? [] : [`"${tag}" is not an image tag: ${TAG_RULE}`];
}

export function imageDigestErrors(digest: string): string[] {
  const algorithm = digest.slice(0, digest.indexOf(":"));
  const hex = digest.slice(digest.indexOf(":") + 1);
  const want = DIGEST_HEX_LENGTH[algorithm];
  if (digest.includes(":") && want !== undefined && hex.length === want && /^[a-f0-9]+$/.test(hex)) return [];
  if (want !== undefined)
    return [`digest "${digest}" is not valid: ${algorithm} takes exactly ${want} lowercase hex digits`];
  if (!DIGEST.test(digest))
    return [
      `digest "${digest}" is not valid: expected <algorithm>:<hex>, such as sha256:<64 lowercase hex digits>`,
    ];
  return [`digest "${digest}": unsupported algorithm "${algorithm}" (sha256, sha384 or sha512)`];
}

export function imageNameErrors(name: string): string[] {
  if (name.length > NAME_MAX)
    return [`repository name is ${name.length} characters long, at most ${NAME_MAX}`];
  if (NAME.test(name)) return [];
  const firstSlash = name.indexOf("/");
  const path =
    firstSlash >= 0 && /[.:]|^localhost$/.test(name.slice(0, firstSlash)) ? name.slice(firstSlash + 1) : name;
  if (path !== path.toLowerCase()) return [`repository "${name}": repository paths must be lowercase`];
  return [
    `"${name}" is not a repository name: [registry[:port]/]path, path components of [a-z0-9] joined by ".", "_", "__" or "-"`,
  ];
}

/** The parts of `name[:tag][@digest]`, or undefined when the text has no such shape. */
export function splitImageReference(ref: string): { name: string; tag?: string; digest?: string } {
  const at = ref.indexOf("@");
  const digest = at >= 0 ? ref.slice(at + 1) : undefined;
  const beforeDigest = at >= 0 ? ref.slice(0, at) : ref;
  const lastSlash = beforeDigest.lastIndexOf("/");
  const colon = beforeDigest.indexOf(":", lastSlash + 1);
  return colon >= 0
    ? { name: beforeDigest.slice(0, colon), tag: beforeDigest.slice(colon + 1), digest }
    : { name: beforeDigest, digest };
}

/** Every problem of a full reference `name[:tag][@digest]`. */
export function imageReferenceErrors(ref: string): string[] {
  const { name, tag, digest } = splitImageReference(ref);
  return [
    ...imageNameErrors(name),
    ...(tag !== undefined ? imageTagErrors(tag) : []),
    ...(digest !== undefined ? imageDigestErrors(digest) : []),
  ];
}
