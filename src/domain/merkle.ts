// RFC 6962 section 2.1, as the RFC says it: the Merkle Tree Hash (MTH) over leaves D[0:n], the
// audit path PATH(m, D[n]) and the consistency proof PROOF(m, D[n]). A proof is computed here as
// the list of leaf ranges D[start:end] whose MTH are its hashes, in the RFC's order; the hashes
// themselves come from stored subtrees (src/audit/tree.ts), never from reading every leaf.
import { concat } from "./crypto";

/** D[start:end]: the leaves start .. end - 1. */
export type Range = readonly [start: number, end: number];

/** A complete subtree: the 2^level leaves from index * 2^level (C2SP tlog-tiles' "node"). */
export interface Node {
  level: number;
  index: number;
}

const sha256 = async (bytes: Uint8Array) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));

/** MTH({d}) = SHA-256(0x00 || d). */
export const leafHash = (leaf: Uint8Array) => sha256(concat(new Uint8Array([0]), leaf));

/** MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])). */
export const nodeHash = (left: Uint8Array, right: Uint8Array) => sha256(concat(new Uint8Array([1]), left, right));

/** k: the largest power of two smaller than n (k < n <= 2k). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** PATH(m, D[n]): the audit path of leaf m in the tree of n leaves, nearest sibling first. */
export function auditPath(m: number, n: number): Range[] {
  if (m < 0 || m >= n) throw new RangeError(`leaf ${m} is not in a tree of ${n}`);
  const path = (m: number, start: number, end: number): Range[] => {
    if (end - start <= 1) return [];
    const k = splitPoint(end - start);
    return m < k ? [...path(m, start, start + k), [start + k, end]] : [...path(m - k, start + k, end), [start, start + k]];
  };
  return path(m, 0, n);
}

/** PROOF(m, D[n]) = SUBPROOF(m, D[n], true): that the tree of m leaves is a prefix of the tree of n. */
export function consistencyProof(m: number, n: number): Range[] {
  if (m < 1 || m > n) throw new RangeError(`no consistency proof from ${m} to ${n}`);
  const subproof = (m: number, start: number, end: number, b: boolean): Range[] => {
    if (m === end - start) return b ? [] : [[start, end]];
    const k = splitPoint(end - start);
    return m <= k
      ? [...subproof(m, start, start + k, b), [start + k, end]]
      : [...subproof(m - k, start + k, end, false), [start, start + k]];
  };
  return subproof(m, 0, n, true);
}

/**
 * The complete subtrees D[start:end] is made of, left to right: the binary decomposition of its
 * size from its aligned start. Every range of a tree (and of PATH and PROOF) has that form, and its
 * MTH folds their hashes from the right (`foldRight`).
 */
export function subtrees([start, end]: Range): Node[] {
  const nodes: Node[] = [];
  while (start < end) {
    let level = 0;
    while (start % 2 ** (level + 1) === 0 && start + 2 ** (level + 1) <= end) level++;
    nodes.push({ level, index: start / 2 ** level });
    start += 2 ** level;
  }
  return nodes;
}

/** MTH of a range from its subtrees' hashes: H(s1, H(s2, ... H(s(j-1), sj))). */
export async function foldRight(hashes: readonly Uint8Array[]): Promise<Uint8Array> {
  if (!hashes.length) throw new RangeError("a range of no leaves has no hash here");
  let acc = hashes[hashes.length - 1];
  for (let i = hashes.length - 2; i >= 0; i--) acc = await nodeHash(hashes[i], acc);
  return acc;
}

/** MTH of 2^h hashes of adjacent complete subtrees of one height (a tile's, or a part of one). */
export async function completeTreeHash(hashes: readonly Uint8Array[]): Promise<Uint8Array> {
  if (!hashes.length || hashes.length & (hashes.length - 1)) throw new RangeError(`${hashes.length} hashes are not a complete subtree`);
  let level = [...hashes];
  while (level.length > 1) {
    const up: Promise<Uint8Array>[] = [];
    for (let i = 0; i < level.length; i += 2) up.push(nodeHash(level[i], level[i + 1]));
    level = await Promise.all(up);
  }
  return level[0];
}
