// ESLint flat config for Purser's UI. Run as `npm run lint` (`eslint . --max-warnings 0`): a
// warning fails the gate (.ci/app.sh step 3) just as an error does.
import js from "@eslint/js";
import { defineConfig, globalIgnores } from "eslint/config";
import reactHooks from "eslint-plugin-react-hooks";
import globals from "globals";
import tseslint from "typescript-eslint";

export default defineConfig(
  // dist/ is build output; src/bindings/ is generated from Rust by ts-rs (tsc still checks it).
  globalIgnores(["dist/", "node_modules/", "src/bindings/"]),

  {
    files: ["**/*.{ts,tsx}"],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked, reactHooks.configs.flat.recommended],
    languageOptions: {
      ecmaVersion: 2022,
      globals: globals.browser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "react-hooks/rules-of-hooks": "error",
      "react-hooks/exhaustive-deps": "error",
      // Only says the React Compiler would skip a component (useVirtualizer); this build has no compiler.
      "react-hooks/incompatible-library": "off",
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      // As tsc's noUnusedLocals: `const { [id]: _gone, ...rest } = o` is how a key is dropped.
      "@typescript-eslint/no-unused-vars": ["error", { ignoreRestSiblings: true }],
    },
  },

  {
    files: ["src/**/*.test.{ts,tsx}", "src/test/**"],
    rules: {
      // `await act(async () => …)` flushes React's pending work and `mockImplementation(async …)`
      // makes a mock return a promise: both idiomatic in tests, with nothing to await inside.
      "@typescript-eslint/require-await": "off",
    },
  },

  // This file (plain JS run by Node): no type information.
  {
    files: ["**/*.js"],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node },
  },
);
