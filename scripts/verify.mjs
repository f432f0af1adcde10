#!/usr/bin/env node
// `npm run verify -- <export.ndjson> --checkpoint <note> [--checkpoint <note>] --key <vkey>`
//
// Checks an NDJSON export of flaghook's audit log against signed checkpoints, offline, with Node's
// own crypto and nothing of flaghook's code: each checkpoint's Ed25519 signature (C2SP signed-note)
// under the verifier key, the export's entries numbered 1..N without gaps or repeats, each line's
// fields the same as its leaf, the RFC 6962 Merkle Tree Hash of the leaves equal to each
// checkpoint's root, and so, with two checkpoints, that the smaller log is a prefix of the larger.
// Entries removed by flaghook's retention (AUDIT_RETENTION_DAYS) end the export as
// {"seq", "removed": true, "leaf_hash"}: their sealed hashes still complete the tree, but their
// content is gone and cannot be checked; the report says which they are.
// Exit status 0 when everything holds, 1 with the reasons when something does not, 2 on bad usage.
import { createHash, createPublicKey, verify as verifySignature } from "node:crypto";
import { readFileSync } from "node:fs";

const USAGE = "usage: npm run verify -- <export.ndjson> --checkpoint <note file> [--checkpoint <note file>] --key <vkey>";

function parseArgs(argv) {
  const out = { exportFile: null, checkpoints: [], key: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--checkpoint") out.checkpoints.push(argv[++i]);
    else if (arg === "--key") out.key = argv[++i];
    else if (arg.startsWith("--checkpoint=")) out.checkpoints.push(arg.slice(13));
    else if (arg.startsWith("--key=")) out.key = arg.slice(6);
    else if (!arg.startsWith("--") && !out.exportFile) out.exportFile = arg;
    else throw new UsageError(`unexpected argument ${arg}`);
  }
  if (!out.exportFile || !out.checkpoints.length || out.checkpoints.includes(undefined) || !out.key) throw new UsageError("an export, at least one checkpoint and the key are needed");
  return out;
}

class UsageError extends Error {}

const sha256 = (...parts) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
};
const leafHash = (leaf) => sha256(Buffer.from([0]), Buffer.from(leaf, "utf8"));
const nodeHash = (left, right) => sha256(Buffer.from([1]), left, right);

/** signed-note verifier key: <name>+<hex key id>+<base64(0x01 || 32-byte Ed25519 public key)>. */
function parseVerifierKey(vkey) {
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+=*)$/.exec(vkey.trim());
  if (!m) throw new UsageError("the key is not a signed-note verifier key (<name>+<key id>+<base64 key>)");
  const [, name, id, encoded] = m;
  const raw = Buffer.from(encoded, "base64");
  if (raw.length !== 33 || raw[0] !== 0x01) throw new UsageError("the key is not an Ed25519 verifier key (type 0x01, 32 bytes)");
  const publicKey = raw.subarray(1);
  const expectedId = sha256(Buffer.from(name, "utf8"), Buffer.from([0x0a, 0x01]), publicKey).subarray(0, 4);
  if (expectedId.toString("hex") !== id) throw new UsageError("the key's id does not match its name and public key");
  // SubjectPublicKeyInfo for Ed25519 (RFC 8410) around the raw key, as Node's crypto takes it.
  const spki = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), publicKey]);
  return { name, keyId: expectedId, key: createPublicKey({ key: spki, format: "der", type: "spki" }) };
}

/** A C2SP tlog-checkpoint in a signed note, its signature by `vkey` checked. */
function readCheckpoint(file, vkey) {
  const note = readFileSync(file, "utf8");
  const split = note.indexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) throw new Failure(`${file}: not a signed note`);
  const body = note.slice(0, split + 1);
  const [origin, size, root, ...extensions] = body.split("\n").slice(0, -1);
  if (!origin || !/^(0|[1-9][0-9]*)$/.test(size ?? "") || !/^[A-Za-z0-9+/]{43}=$/.test(root ?? "")) throw new Failure(`${file}: not a checkpoint (origin, tree size, root hash)`);
  let signed = false;
  for (const line of note.slice(split + 2, -1).split("\n")) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/]+=*)$/.exec(line);
    if (!m) throw new Failure(`${file}: malformed signature line`);
    const bytes = Buffer.from(m[2], "base64");
    if (m[1] !== vkey.name || !bytes.subarray(0, 4).equals(vkey.keyId)) continue;
    if (!verifySignature(null, Buffer.from(body, "utf8"), vkey.key, bytes.subarray(4))) throw new Failure(`${file}: the signature of ${vkey.name} does not verify`);
    signed = true;
  }
  if (!signed) throw new Failure(`${file}: no signature by ${vkey.name}`);
  if (origin !== vkey.name) throw new Failure(`${file}: origin ${origin} is not the key's name ${vkey.name}`);
  return { file, origin, treeSize: Number(size), rootHash: root, extensions };
}

class Failure extends Error {}

/** JSON with object keys sorted, to compare values whatever their key order. */
const sorted = (value) =>
  JSON.stringify(value, (_, v) => (v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v));

/**
 * The export's leaf hashes by seq, after checking each line against its own leaf; `removed`: the
 * numbers whose line carried only a leaf hash (retention removed the entry).
 */
function readExport(file) {
  const problems = [];
  const bySeq = new Map();
  const removed = [];
  const lines = readFileSync(file, "utf8").split("\n");
  lines.forEach((text, i) => {
    if (!text.trim()) return;
    const where = `${file}:${i + 1}`;
    let line;
    let leaf;
    try {
      line = JSON.parse(text);
      if (line.removed === true) {
        const hash = Buffer.from(String(line.leaf_hash), "base64");
        if (!Number.isSafeInteger(line.seq) || line.seq < 1 || hash.length !== 32) return void problems.push(`${where}: a removed entry without its seq and leaf hash`);
        if (bySeq.has(line.seq)) return void problems.push(`${where}: entry ${line.seq} appears twice`);
        bySeq.set(line.seq, hash);
        removed.push(line.seq);
        return;
      }
      leaf = JSON.parse(line.leaf);
    } catch {
      problems.push(`${where}: not an export line with a leaf`);
      return;
    }
    if (!Number.isSafeInteger(line.seq) || line.seq < 1) return void problems.push(`${where}: no seq`);
    if (leaf.seq !== line.seq) problems.push(`${where}: seq ${line.seq} but its leaf says ${leaf.seq}`);
    for (const field of ["event_id", "log", "created_date", "received_at", "is_system_event", "submitter"]) {
      if (sorted(leaf[field]) !== sorted(line[field] ?? null)) problems.push(`${where}: entry ${line.seq}'s ${field} differs from its leaf`);
    }
    if (bySeq.has(line.seq)) problems.push(`${where}: entry ${line.seq} appears twice`);
    else bySeq.set(line.seq, leafHash(line.leaf));
  });
  return { bySeq, problems, removed: removed.sort((a, b) => a - b) };
}

/** "1..4, 9" for a sorted list of numbers. */
const ranges = (numbers) => {
  const out = [];
  for (const n of numbers) {
    const last = out.at(-1);
    if (last && last[1] === n - 1) last[1] = n;
    else out.push([n, n]);
  }
  return out.map(([a, b]) => (a === b ? String(a) : `${a}..${b}`)).join(", ");
};

/**
 * The Merkle Tree Hash (RFC 6962 2.1) of leaves 1..n for each n in `sizes`, in one pass: a stack of
 * complete subtrees, merged as they fill; the tree of the first n leaves is the stack folded from
 * the right.
 */
function rootsAt(bySeq, sizes) {
  const wanted = new Set(sizes);
  const roots = new Map();
  const stack = []; // [{ size, hash }], sizes strictly decreasing
  const max = Math.max(...sizes);
  for (let seq = 1; seq <= max; seq++) {
    const hash = bySeq.get(seq);
    if (hash === undefined) break;
    let node = { size: 1, hash };
    while (stack.length && stack.at(-1).size === node.size) {
      const left = stack.pop();
      node = { size: left.size * 2, hash: nodeHash(left.hash, node.hash) };
    }
    stack.push(node);
    if (wanted.has(seq)) {
      let acc = stack.at(-1).hash;
      for (let i = stack.length - 2; i >= 0; i--) acc = nodeHash(stack[i].hash, acc);
      roots.set(seq, acc.toString("base64"));
    }
  }
  return roots;
}

function main(argv) {
  const args = parseArgs(argv);
  const vkey = parseVerifierKey(args.key);
  const checkpoints = args.checkpoints.map((f) => readCheckpoint(f, vkey)).sort((a, b) => a.treeSize - b.treeSize);
  const { bySeq, problems, removed } = readExport(args.exportFile);
  const largest = checkpoints.at(-1).treeSize;
  for (let seq = 1; seq <= largest; seq++) {
    if (!bySeq.has(seq)) problems.push(`entry ${seq} is missing from the export, and checkpoint ${largest} covers it`);
    if (problems.length > 50) break;
  }
  const roots = rootsAt(bySeq, checkpoints.map((c) => c.treeSize).filter((n) => n > 0));
  for (const c of checkpoints) {
    const root = c.treeSize === 0 ? sha256().toString("base64") : roots.get(c.treeSize);
    if (root === undefined) continue; // a missing entry is already reported
    if (root !== c.rootHash) problems.push(`${c.file}: the export's first ${c.treeSize} entries hash to ${root}, not to the checkpoint's root ${c.rootHash}`);
  }
  const beyond = [...bySeq.keys()].filter((s) => s > largest).length;
  const lines = [
    `key ${vkey.name} (${vkey.keyId.toString("hex")})`,
    ...checkpoints.map((c) => `checkpoint ${c.file}: ${c.origin}, ${c.treeSize} entries, signature valid`),
    `export ${args.exportFile}: ${bySeq.size - removed.length} entries${beyond ? ` (${beyond} newer than the checkpoint, not covered)` : ""}`,
  ];
  if (removed.length) {
    lines.push(
      `removed by retention: entries ${ranges(removed)}: only their sealed leaf hashes are in the export. They still complete the tree, so the root,` +
        " the other entries and the checkpoints' consistency are checked; their content is gone and cannot be",
    );
  }
  if (problems.length) {
    console.error([...lines, "", "FAILED:", ...problems.map((p) => `  ${p}`)].join("\n"));
    return 1;
  }
  if (checkpoints.length > 1) lines.push(`consistent: each checkpoint's log is a prefix of the next (${checkpoints.map((c) => c.treeSize).join(" <= ")} entries)`);
  const kept = removed.length ? ` (of them, ${ranges(removed)} by their leaf hashes only)` : "";
  console.log([...lines, `OK: entries 1..${largest} are exactly what the checkpoint signs${kept}`].join("\n"));
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  if (err instanceof UsageError) {
    console.error(`${err.message}\n${USAGE}`);
    process.exitCode = 2;
  } else if (err instanceof Failure) {
    console.error(`FAILED: ${err.message}`);
    process.exitCode = 1;
  } else {
    throw err;
  }
}
