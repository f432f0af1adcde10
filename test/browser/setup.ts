/// <reference types="node" />
// Global setup of the browser tests: a local D1 migrated into a temporary folder, the Worker under
// `wrangler dev` on free ports of 127.0.0.1, and the real webhook receiver (bench/receiver.mjs).
// Nothing assumes a port is free: a developer's `npm run dev` or a second test run may be beside it.
import type { TestProject } from "vitest/node";
import { startReceiver } from "../../bench/receiver.mjs";
import { startFlaghook, type Flaghook } from "../node/flaghook-dev";

export { startFlaghook };

const ADMIN_TOKEN = "browser-test-admin-token";

declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
    receiverUrl: string;
    adminToken: string;
  }
}

export default async function setup(project: TestProject) {
  const receiver = await startReceiver({ port: 0 });
  let flaghook: Flaghook;
  try {
    flaghook = await startFlaghook({
      ADMIN_TOKEN,
      SECRETS_KEY: "browser-test-secrets-key",
      ALLOW_PRIVATE_WEBHOOK_URLS: "true",
      RETRY_SCHEDULE: "1,1,1",
    });
  } catch (err) {
    await receiver.close();
    throw err;
  }
  project.provide("baseUrl", flaghook.baseUrl);
  project.provide("receiverUrl", receiver.url);
  project.provide("adminToken", ADMIN_TOKEN);
  return async () => {
    await flaghook.stop();
    await receiver.close();
  };
}
