import tseslint from "typescript-eslint";
export default tseslint.config(
  { ignores: ["node_modules/**", "build/**", "dist/**", "eslint/**", "*.mjs", "dispatcher/**", "tests/dispatcher/**"] },
  ...tseslint.configs.recommendedTypeChecked,
  { linterOptions: { reportUnusedDisableDirectives: "off" } },
  { languageOptions: { parserOptions: { project: "./tsconfig.all.json", tsconfigRootDir: "/work/main" } } },
);
