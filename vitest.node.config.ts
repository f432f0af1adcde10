// Node-side tests: the scripts and offline tools people run on their own machines (npm run setup,
// npm run verify), run as they run them, in plain Node rather than in workerd.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/node/**/*.test.ts"],
    pool: "forks",
    testTimeout: 60_000,
  },
});
