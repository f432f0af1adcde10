// The pure tree code against RFC 6962's own examples, RFC 8785's, C2SP's formats, and a tree hash
// computed by the RFC's definition (test/support/rfc9162.ts, written apart from src/).
import { describe, expect, it } from "vitest";
import { checkpointBody, keyId, parseCheckpoint, signedNote, verifierKey } from "../src/domain/checkpoint";
import { canonicalJson } from "../src/domain/jcs";
import { auditPath, consistencyProof, foldRight, subtrees, type Range } from "../src/domain/merkle";
import { grownTiles, hashAt, nodeFromTile, tileSpan, TILE_WIDTH, type Tile } from "../src/domain/tiles";
import { hashLeaf, mth, verifyConsistency, verifyInclusion } from "./support/rfc9162";

// RFC 6962 2.1.3: the tree of d0..d6. Its nodes, named as the RFC names them, are ranges of leaves.
const node: Record<string, Range> = {
  a: [0, 1], b: [1, 2], c: [2, 3], d: [3, 4], e: [4, 5], f: [5, 6], j: [6, 7],
  g: [0, 2], h: [2, 4], i: [4, 6], k: [0, 4], l: [4, 7],
};
const named = (...names: string[]) => names.map((n) => node[n]);

describe("RFC 6962 2.1.3 examples", () => {
  it.each([
    [0, ["b", "h", "l"]],
    [3, ["c", "g", "l"]],
    [4, ["f", "j", "k"]],
    [6, ["i", "k"]],
  ] as const)("the audit path for d%i is %j", (m, names) => {
    expect(auditPath(m, 7)).toEqual(named(...names));
  });

  it.each([
    [3, ["c", "d", "g", "l"]],
    [4, ["l"]],
    [6, ["i", "j", "k"]],
  ] as const)("the consistency proof from the tree of %i leaves to d0..d6 is %j", (m, names) => {
    expect(consistencyProof(m, 7)).toEqual(named(...names));
  });

  it("a tree is consistent with itself by an empty proof; a bigger or empty one has none", () => {
    expect(consistencyProof(7, 7)).toEqual([]);
    expect(() => consistencyProof(8, 7)).toThrow(RangeError);
    expect(() => consistencyProof(0, 7)).toThrow(RangeError);
    expect(() => auditPath(7, 7)).toThrow(RangeError);
  });
});

const leaves = (n: number) => Promise.all(Array.from({ length: n }, (_, i) => hashLeaf(`leaf ${i}`)));

/** MTH of a range from its subtrees, each hashed by the RFC's definition. */
async function rangeHash(all: Uint8Array[], range: Range) {
  return foldRight(await Promise.all(subtrees(range).map((s) => mth(all.slice(s.index * 2 ** s.level, (s.index + 1) * 2 ** s.level)))));
}

describe("proofs hashed from subtrees verify by RFC 9162's algorithms", () => {
  it("every audit path of every tree up to 40 leaves", async () => {
    const all = await leaves(40);
    for (let n = 1; n <= 40; n++) {
      const root = await mth(all.slice(0, n));
      expect(await rangeHash(all, [0, n])).toEqual(root);
      for (let m = 0; m < n; m++) {
        const proof = await Promise.all(auditPath(m, n).map((r) => rangeHash(all, r)));
        expect([n, m, await verifyInclusion(m, n, all[m], proof, root)]).toEqual([n, m, true]);
        // A proof for the neighbouring leaf does not prove this one.
        if (n > 1) expect(await verifyInclusion(m, n, all[(m + 1) % n], proof, root)).toBe(false);
      }
    }
  });

  it("every consistency proof between trees up to 40 leaves", async () => {
    const all = await leaves(40);
    for (let n = 1; n <= 40; n++) {
      const second = await mth(all.slice(0, n));
      for (let m = 1; m <= n; m++) {
        const first = await mth(all.slice(0, m));
        const proof = await Promise.all(consistencyProof(m, n).map((r) => rangeHash(all, r)));
        expect([m, n, await verifyConsistency(m, n, first, second, proof)]).toEqual([m, n, true]);
        if (m < n) expect(await verifyConsistency(m, n, await mth(all.slice(1, m + 1)), second, proof)).toBe(false);
      }
    }
  });
});

describe("tiles (C2SP tlog-tiles layout)", () => {
  it("grow in steps to the same hashes as one growth, and every node read from them is the RFC's", async () => {
    const n = TILE_WIDTH * TILE_WIDTH + 3 * TILE_WIDTH + 17; // three levels of tiles, each ending in a partial one
    const all = await leaves(n);
    const stepwise = new Map<string, Uint8Array>();
    let size = 0;
    for (const next of [1, 255, 256, 257, 1000, TILE_WIDTH * TILE_WIDTH, n]) {
      const grown = await grownTiles(size, next, all.slice(size, next), (k) => stepwise.get(`${k.level}/${k.index}`));
      for (const t of grown) stepwise.set(`${t.level}/${t.index}`, t.hashes);
      size = next;
    }
    const once = await grownTiles(0, n, all, () => undefined);
    expect(new Map(once.map((t: Tile) => [`${t.level}/${t.index}`, t.hashes]))).toEqual(stepwise);
    expect([...stepwise.keys()].filter((k) => k.startsWith("2/"))).toEqual(["2/0"]);
    for (const probe of [{ level: 0, index: n - 1 }, { level: 3, index: 5 }, { level: 8, index: 2 }, { level: 9, index: 0 }, { level: 16, index: 0 }, { level: 15, index: 1 }]) {
      const hash = await nodeFromTile(probe, stepwise.get(`${tileSpan(probe).level}/${tileSpan(probe).index}`));
      expect(hash).toEqual(await mth(all.slice(probe.index * 2 ** probe.level, (probe.index + 1) * 2 ** probe.level)));
    }
    expect(await nodeFromTile({ level: 16, index: 1 }, stepwise.get("2/0"))).toBeNull();
  });

  it("refuse to grow a tree whose partial tile is missing", async () => {
    const all = await leaves(10);
    await expect(grownTiles(5, 10, all.slice(5), () => undefined)).rejects.toThrow(/tile 0\/0/);
  });

  it("keep hashes 32 bytes apart, in order", async () => {
    const all = await leaves(3);
    const [tile] = await grownTiles(0, 3, all, () => undefined);
    expect([hashAt(tile.hashes, 0), hashAt(tile.hashes, 2)]).toEqual([all[0], all[2]]);
  });
});

describe("RFC 8785 (JCS)", () => {
  it("serialises the RFC's sample (3.2.2) exactly", () => {
    const value = JSON.parse('{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}');
    expect(canonicalJson(value)).toBe('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}');
  });

  it("sorts members by UTF-16 code units (3.2.3)", () => {
    const value = JSON.parse('{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With Dagesh", "1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control", "\\u00f6": "Latin Small Letter O With Diaeresis"}');
    expect(canonicalJson(value)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it("has no form for what JSON cannot say", () => {
    expect(() => canonicalJson({ n: Infinity })).toThrow(TypeError);
  });
});

describe("C2SP signed notes and checkpoints", () => {
  // A key pair from RFC 8032 7.1, TEST 1.
  const publicKey = Uint8Array.from("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a".match(/../g)!.map((h) => parseInt(h, 16)));

  it("key ids are the first 4 bytes of SHA-256(name || 0x0A || 0x01 || key), vkeys name+id+base64(0x01 || key)", async () => {
    const expected = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array([...new TextEncoder().encode("example.com/log"), 0x0a, 0x01, ...publicKey]))).slice(0, 4);
    expect(await keyId("example.com/log", publicKey)).toEqual(expected);
    const hexId = [...expected].map((b) => b.toString(16).padStart(2, "0")).join("");
    expect(await verifierKey("example.com/log", publicKey)).toBe(`example.com/log+${hexId}+${btoa(String.fromCharCode(1, ...publicKey))}`);
  });

  it("a checkpoint is origin, size and root, a blank line and an em-dash signature line, and reads back", async () => {
    const root = new Uint8Array(32).fill(7);
    const body = checkpointBody("flaghook.test/org/3", 42, root);
    expect(body).toBe(`flaghook.test/org/3\n42\n${btoa(String.fromCharCode(...root))}\n`);
    const signature = new Uint8Array(64).fill(9);
    const note = await signedNote(body, "flaghook.test/org/3", publicKey, signature);
    const id = await keyId("flaghook.test/org/3", publicKey);
    expect(note).toBe(`${body}\n\u2014 flaghook.test/org/3 ${btoa(String.fromCharCode(...id, ...signature))}\n`);
    expect(parseCheckpoint(note)).toEqual({ body, origin: "flaghook.test/org/3", treeSize: 42, rootHash: root, signatures: [{ name: "flaghook.test/org/3", keyId: id, signature }] });
    expect(parseCheckpoint(note.replace("\n42\n", "\n042\n"))).toBeNull();
    expect(parseCheckpoint(body)).toBeNull();
  });
});
