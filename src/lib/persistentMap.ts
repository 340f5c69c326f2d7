/**
 * An immutable string-keyed map with structural sharing (a small hash array mapped trie). `set` returns
 * a new map and copies only the path to the changed entry (at most 7 nodes of 32 slots), so folding a
 * stream of n events into an aggregate that remembers every hold, top-up or refund costs O(n log n)
 * instead of the O(n^2) of copying a plain object per event, while every earlier state stays valid
 * (the command layer caches states and evolve must stay pure).
 */

const BITS = 5;
const WIDTH = 1 << BITS;
const MASK = WIDTH - 1;

interface Branch<V> {
  readonly leaf: false;
  readonly children: ReadonlyArray<Node<V> | undefined>;
}
interface Leaf<V> {
  readonly leaf: true;
  readonly hash: number;
  /** Keys whose 32-bit hashes collide fully; almost always one entry. */
  readonly entries: ReadonlyArray<readonly [string, V]>;
}
type Node<V> = Branch<V> | Leaf<V>;

/** FNV-1a over UTF-16 code units: fast, deterministic, well spread for ids. */
function hashOf(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

// Shifts run 0, 5, ..., 30: a branch is only ever created to separate two different 32-bit hashes, and
// they differ at some bit below 32, so no branch sits at shift >= 32 (where `>>>` would wrap).
const slot = (hash: number, shift: number): number => (hash >>> shift) & MASK;

function emptyChildren<V>(): Array<Node<V> | undefined> {
  return new Array<Node<V> | undefined>(WIDTH).fill(undefined);
}

function setIn<V>(
  node: Node<V> | undefined,
  key: string,
  hash: number,
  shift: number,
  value: V,
): { node: Node<V>; added: boolean } {
  if (node === undefined) return { node: { leaf: true, hash, entries: [[key, value]] }, added: true };
  if (node.leaf) {
    if (node.hash === hash) {
      const index = node.entries.findIndex(([k]) => k === key);
      if (index === -1) return { node: { ...node, entries: [...node.entries, [key, value]] }, added: true };
      const entries = [...node.entries];
      entries[index] = [key, value];
      return { node: { ...node, entries }, added: false };
    }
    const children = emptyChildren<V>();
    children[slot(node.hash, shift)] = node;
    return setIn({ leaf: false, children }, key, hash, shift, value);
  }
  const index = slot(hash, shift);
  const result = setIn(node.children[index], key, hash, shift + BITS, value);
  const children = [...node.children];
  children[index] = result.node;
  return { node: { leaf: false, children }, added: result.added };
}

export class PersistentMap<V> {
  private static readonly EMPTY = new PersistentMap<never>(undefined, 0);

  private constructor(
    private readonly root: Node<V> | undefined,
    readonly size: number,
  ) {}

  static empty<V>(): PersistentMap<V> {
    return PersistentMap.EMPTY as PersistentMap<V>;
  }

  static from<V>(entries: Iterable<readonly [string, V]>): PersistentMap<V> {
    let map = PersistentMap.empty<V>();
    for (const [key, value] of entries) map = map.set(key, value);
    return map;
  }

  get(key: string): V | undefined {
    const hash = hashOf(key);
    let node = this.root;
    let shift = 0;
    while (node !== undefined) {
      if (node.leaf) {
        if (node.hash !== hash) return undefined;
        return node.entries.find(([k]) => k === key)?.[1];
      }
      node = node.children[slot(hash, shift)];
      shift += BITS;
    }
    return undefined;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  set(key: string, value: V): PersistentMap<V> {
    const result = setIn(this.root, key, hashOf(key), 0, value);
    return new PersistentMap(result.node, result.added ? this.size + 1 : this.size);
  }

  *entries(): IterableIterator<[string, V]> {
    const stack: Node<V>[] = this.root ? [this.root] : [];
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (node.leaf) {
        for (const [k, v] of node.entries) yield [k, v];
      } else {
        for (let i = WIDTH - 1; i >= 0; i--) {
          const child = node.children[i];
          if (child) stack.push(child);
        }
      }
    }
  }

  *keys(): IterableIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): IterableIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): IterableIterator<[string, V]> {
    return this.entries();
  }

  /** Plain object with keys in sorted order (debugging, snapshots, test equality). */
  toJSON(): Record<string, V> {
    const out: Record<string, V> = {};
    for (const [k, v] of [...this.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      // defineProperty, so a key like `__proto__` is an own property, not a prototype change.
      Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
}
