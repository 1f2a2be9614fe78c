// The project's layers, lowest first, and the ESLint rule that keeps imports pointing down.
// A file may import its own layer and any layer below it; layers of one rank stand side by side and must not
// import each other (`sim` and `dispatcher`: the simulator is the ground truth the dispatcher is tested against;
// `stdio`, how a command ends, and `kube`, Kubernetes rules, share nothing).
// Hand-written because the plugins that check import zones (import-x, boundaries) need a TypeScript
// resolver on top; relative paths are all this project uses, and path.resolve settles them.
import * as path from "node:path";

/** Layer name → its rank and the folders (or files) it owns, relative to the repository root. */
export const LAYERS = [
  { name: "stdio", rank: 0, roots: ["stdio"] },
  { name: "kube", rank: 0, roots: ["kube"] },
  { name: "chart", rank: 1, roots: ["chart"] },
  { name: "dispatcher", rank: 2, roots: ["dispatcher"] },
  { name: "sim", rank: 2, roots: ["sim"] },
  { name: "rollout", rank: 3, roots: ["rollout"] },
  { name: "components", rank: 4, roots: ["components"] },
  { name: "entry", rank: 5, roots: ["main", "bench", "plugin", "program.ts", "index.ts"] },
];

const repoRoot = path.resolve(import.meta.dirname, "..");

/** The layer a repository-relative path belongs to; the longest matching root wins (chart). */
export function layerOf(relPath) {
  let best;
  for (const layer of LAYERS) {
    for (const root of layer.roots) {
      const inside = relPath === root || relPath.startsWith(`${root}/`);
      if (inside && (!best || root.length > best.root.length)) best = { layer, root };
    }
  }
  return best?.layer;
}

/** Why `from` may not import `to`, or undefined when the import points down or sideways within a layer. */
export function upwardImport(fromRel, toRel) {
  const from = layerOf(fromRel);
  const to = layerOf(toRel);
  if (!from || !to || from === to) return undefined;
  if (to.rank < from.rank) return undefined;
  const how = to.rank === from.rank ? "a sibling layer" : "a layer above it";
  return `${from.name} (${fromRel}) may not import ${to.name} (${toRel}), ${how}; layers from the bottom: ${LAYERS.map((l) => l.name).join(" → ")}`;
}

/** @type {import("eslint").Rule.RuleModule} */
const layersPointDown = {
  meta: {
    type: "problem",
    docs: { description: "imports only point down the project's layers (eslint/layers.mjs)" },
    schema: [],
  },
  create(context) {
    const fromRel = path.relative(repoRoot, context.filename).split(path.sep).join("/");
    const check = (node, source) => {
      if (typeof source !== "string" || !source.startsWith(".")) return;
      const target = path.resolve(path.dirname(context.filename), source);
      const toRel = path.relative(repoRoot, target).split(path.sep).join("/");
      const problem = upwardImport(fromRel, toRel);
      if (problem) context.report({ node, message: problem });
    };
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => node.source.type === "Literal" && check(node, node.source.value),
    };
  },
};

export const layersPlugin = { rules: { "layers-point-down": layersPointDown } };
