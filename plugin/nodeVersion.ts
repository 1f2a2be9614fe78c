// The Node.js version gate of both entry points (the library's index.ts and the provider plugin it hosts). The
// oldest dependency decides: undici 8 (under @kubernetes/client-node 2) declares node >= 22.19.0 and fails to load
// on older versions with an error that names neither Node nor the fix. package.json `engines` says the same.
export const MINIMUM_NODE = "22.19.0";

function parts(version: string): [number, number, number] {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version.trim());
  if (!m) throw new Error(`not a Node.js version: ${JSON.stringify(version)}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

export function isSupportedNode(found: string, minimum = MINIMUM_NODE): boolean {
  const [a, b] = [parts(found), parts(minimum)];
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] > b[i];
  return true;
}

/** One sentence: what is required, what was found, how to fix it. */
export function unsupportedNodeMessage(found: string, minimum = MINIMUM_NODE): string {
  return (
    `kata-deploy needs Node.js ${minimum} or newer, but this is Node.js ${found.replace(/^v/, "")}; ` +
    `install Node.js ${minimum}+ (for example \`nvm install 22\`) and make it the \`node\` first on PATH, ` +
    `where Pulumi starts the program and this package's plugin.`
  );
}

/** Throws the one-sentence error on an older Node.js; call before anything that loads the dependencies. */
export function requireSupportedNode(found = process.versions.node): void {
  if (!isSupportedNode(found)) throw new Error(unsupportedNodeMessage(found));
}
