// A real HTTP receiver on 127.0.0.1 (Node, outside workerd) that the Worker delivers to in tests.
// Each path is a separate mailbox; behaviour is scripted per mailbox through its control API.
import type { TestProject } from "vitest/node";
import { startReceiver } from "../../bench/receiver.mjs";

declare module "vitest" {
  export interface ProvidedContext {
    receiverUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const receiver = await startReceiver({ port: 0 });
  project.provide("receiverUrl", receiver.url);
  return () => receiver.close();
}
