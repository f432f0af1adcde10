// Where a tree's hashes are kept, as C2SP tlog-tiles lays them out: tile (L, N) holds the hashes of
// the nodes at height 8L with indexes 256N .. 256N + 255 (level 0: the leaf hashes). A node of any
// height is one stored hash or the MTH of 2^h adjacent ones of a single tile. Tiles only grow.
import { completeTreeHash, type Node } from "./merkle";

export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 2 ** TILE_HEIGHT;
export const HASH_SIZE = 32;

export interface TileKey {
  level: number;
  index: number;
}

/** A tile and its hashes, 32 bytes each, in order. */
export interface Tile extends TileKey {
  hashes: Uint8Array;
}

/** Which tile holds a node, and which of its hashes make it. */
export function tileSpan(node: Node): TileKey & { first: number; count: number } {
  const level = Math.floor(node.level / TILE_HEIGHT);
  const count = 2 ** (node.level % TILE_HEIGHT);
  const first = node.index * count;
  return { level, index: Math.floor(first / TILE_WIDTH), first: first % TILE_WIDTH, count };
}

export const tileWidth = (hashes: Uint8Array) => hashes.length / HASH_SIZE;
export const hashAt = (hashes: Uint8Array, i: number) => hashes.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE);

/** A node's hash from the tile that holds it; null when the tile does not reach it (not stored yet). */
export async function nodeFromTile(node: Node, tile: Uint8Array | undefined): Promise<Uint8Array | null> {
  const { first, count } = tileSpan(node);
  if (!tile || tileWidth(tile) < first + count) return null;
  const hashes = Array.from({ length: count }, (_, i) => hashAt(tile, first + i));
  return count === 1 ? hashes[0] : completeTreeHash(hashes);
}

/**
 * The tiles that change when a tree of `oldSize` leaves grows to `newSize`, each whole. `leafHashes`
 * are those of leaves oldSize .. newSize - 1; `stored(level, index)` answers a tile already kept,
 * needed only for the one partial tile of each level that the growth extends.
 */
export async function grownTiles(
  oldSize: number,
  newSize: number,
  leafHashes: readonly Uint8Array[],
  stored: (key: TileKey) => Uint8Array | undefined,
): Promise<Tile[]> {
  if (leafHashes.length !== newSize - oldSize) throw new RangeError("one leaf hash per new leaf");
  const tiles: Tile[] = [];
  // At level L the new nodes are those of height 8L with indexes [lo, hi).
  let lo = oldSize;
  let hi = newSize;
  let nodes: readonly Uint8Array[] = leafHashes;
  for (let level = 0; lo < hi; level++) {
    const next: Uint8Array[] = [];
    for (let index = Math.floor(lo / TILE_WIDTH); index * TILE_WIDTH < hi; index++) {
      const start = index * TILE_WIDTH;
      const kept = Math.max(0, lo - start);
      const before = kept ? stored({ level, index }) : undefined;
      if (kept && (!before || tileWidth(before) < kept)) {
        throw new Error(`tile ${level}/${index} lacks the ${kept} hashes the log was sealed with`);
      }
      const fresh = nodes.slice(Math.max(start, lo) - lo, Math.min(start + TILE_WIDTH, hi) - lo);
      const width = kept + fresh.length;
      const hashes = new Uint8Array(width * HASH_SIZE);
      if (before) hashes.set(before.subarray(0, kept * HASH_SIZE));
      fresh.forEach((h, i) => hashes.set(h, (kept + i) * HASH_SIZE));
      tiles.push({ level, index, hashes });
      if (width === TILE_WIDTH) next.push(await completeTreeHash(Array.from({ length: width }, (_, i) => hashAt(hashes, i))));
    }
    lo = Math.floor(lo / TILE_WIDTH);
    hi = Math.floor(hi / TILE_WIDTH);
    nodes = next;
  }
  return tiles;
}
