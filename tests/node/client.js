// A Node client of Modelyard's public gRPC API, as a backend service in another language would write one:
// @grpc/grpc-js and @grpc/proto-loader on proto/modelyard/v1, nothing generated ahead of time.
//
//   node client.js ROUTER_ADDRESS MODEL
//
// 1. streams a chat that offers a tool, assembling the ToolCallDelta fragments into whole calls;
// 2. sends a request with a broken tool schema and decodes the google.rpc.Status details of the error.
// Prints one JSON object with what it saw; tests/node/test_node_client.py checks it.
"use strict";

const fs = require("fs");
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");

const REPO = path.resolve(__dirname, "..", "..");
const INCLUDE = [path.join(REPO, "proto"), path.join(__dirname, "protos")];

const definition = protoLoader.loadSync("modelyard/v1/router.proto", {
  includeDirs: INCLUDE,
  keepCase: true,
  longs: String,
  enums: String, // enum values by name: "FINISH_REASON_TOOL_CALLS"
  defaults: true,
  oneofs: true, // `event` names the field set in ChatResponse's oneof
});
const v1 = grpc.loadPackageDefinition(definition).modelyard.v1;

// google.rpc.Status and its details, to read the `grpc-status-details-bin` trailer.
const rpc = new protobuf.Root();
rpc.resolvePath = (_origin, target) =>
  INCLUDE.map((dir) => path.join(dir, target)).find((file) => fs.existsSync(file)) || target;
rpc.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
const Status = rpc.lookupType("google.rpc.Status");

function richStatus(error) {
  const [bytes] = error.metadata ? error.metadata.get("grpc-status-details-bin") : [];
  if (!bytes) return null;
  const status = Status.decode(bytes);
  const details = status.details.map((any) => {
    const type = rpc.lookupType(any.type_url.split("/").pop());
    return { type: type.fullName.replace(/^\./, ""), ...type.toObject(type.decode(any.value)) };
  });
  return { code: status.code, message: status.message, details };
}

const WEATHER = {
  type: "object",
  properties: { city: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
  required: ["city", "unit"],
};

function chatWithTools(client, model) {
  const request = {
    model,
    messages: [{ role: "ROLE_USER", content: [{ text: "Weather in Paris?" }] }],
    tools: [{ name: "get_weather", description: "Current weather", parameters: JSON.stringify(WEATHER) }],
    tool_choice: { mode: "TOOL_CHOICE_MODE_REQUIRED" },
  };
  return new Promise((resolve, reject) => {
    const calls = new Map();
    let text = "";
    let usage = null;
    const call = client.Chat(request, { deadline: Date.now() + 20000 });
    call.on("data", (response) => {
      if (response.event === "tool_call") {
        const fragment = response.tool_call;
        const whole = calls.get(fragment.index) || { id: "", name: "", arguments: "" };
        whole.id = whole.id || fragment.id;
        whole.name = whole.name || fragment.name;
        whole.arguments += fragment.arguments;
        calls.set(fragment.index, whole);
      } else if (response.event === "delta") {
        text += response.delta.text;
      } else if (response.event === "usage") {
        usage = response.usage;
      }
    });
    call.on("error", reject);
    call.on("end", () =>
      resolve({
        tool_calls: [...calls.keys()].sort((a, b) => a - b).map((i) => calls.get(i)),
        text,
        finish_reason: usage && usage.finish_reason,
        backend: usage && usage.backend,
      }),
    );
  });
}

function brokenRequest(client, model) {
  const request = {
    model,
    messages: [{ role: "ROLE_USER", content: [{ text: "hi" }] }],
    tools: [{ name: "get_weather", parameters: "{not json" }],
  };
  return new Promise((resolve) => {
    const call = client.Chat(request, { deadline: Date.now() + 20000 });
    call.on("data", () => {});
    call.on("error", (error) =>
      resolve({ code: grpc.status[error.code], message: error.details, status: richStatus(error) }),
    );
    call.on("end", () => resolve({ code: "OK" }));
  });
}

async function main() {
  const [address, model] = process.argv.slice(2);
  const client = new v1.RouterService(address, grpc.credentials.createInsecure());
  try {
    const chat = await chatWithTools(client, model);
    const error = await brokenRequest(client, model);
    process.stdout.write(JSON.stringify({ chat, error }) + "\n");
  } finally {
    client.close();
  }
}

main().catch((error) => {
  process.stderr.write(`node client failed: ${error.stack || error}\n`);
  process.exit(1);
});
