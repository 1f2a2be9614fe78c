// Lint config: typescript-eslint's recommended rules; `any` is an error so types keep documenting the code;
// imports only point down the project's layers (eslint/layers.mjs).
import tseslint from "typescript-eslint";
import { layersPlugin } from "./eslint/layers.mjs";

export default tseslint.config(
  { ignores: ["node_modules/**", "build/**", "dist/**"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["**/*.ts"],
    ignores: ["tests/**"],
    plugins: { project: layersPlugin },
    rules: { "project/layers-point-down": "error" },
  },
);
