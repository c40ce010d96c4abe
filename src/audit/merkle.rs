//! The RFC 6962 / RFC 9162 Merkle tree over the audit log.
//!
//! Leaves hash as SHA-256(0x00 ‖ entry) and interior nodes as SHA-256(0x01 ‖ left ‖ right). The
//! log stores the hash of every complete (power-of-two, aligned) subtree, addressed by
//! [`NodeId`], so the hash of any range the proofs need is assembled from O(log n) stored
//! nodes: generating a proof first lists the nodes it needs ([`inclusion_nodes`],
//! [`consistency_nodes`]), the store fetches them in one read, and the proof is then computed
//! from them ([`inclusion_proof`], [`consistency_proof`]).

use std::collections::HashMap;

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(entry);
    hasher.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A complete subtree: `level` 0 is a leaf; the node covers leaves
/// `[index << level, (index + 1) << level)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    /// One integer per node, for storage keys: the node's position in the order the log
    /// completes nodes (each leaf, then the subtrees it completes, lowest first). An append
    /// then only ever adds keys above every stored one, so its nodes fill the right edge of
    /// the key index, a page or two per group commit, instead of one page per level.
    pub fn key(self) -> i64 {
        // Every leaf up to the node's last, `count << level` of them, has completed its
        // nodes: 2n - popcount(n) in a forest of n leaves. The last leaf completes
        // trailing_zeros(n) + 1 nodes, of which this one is number `level`; the ones above it
        // come later.
        let count = self.index + 1;
        let leaves = count << self.level;
        (2 * leaves - u64::from(count.count_ones()) - 1 - u64::from(count.trailing_zeros())) as i64
    }
}

/// The largest power of two strictly below `n` (n ≥ 2).
fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The stored node covering exactly `size` leaves from `start`, if that range is one.
fn complete_subtree(start: u64, size: u64) -> Option<NodeId> {
    (size.is_power_of_two() && start.is_multiple_of(size)).then(|| NodeId {
        level: size.trailing_zeros() as u8,
        index: start >> size.trailing_zeros(),
    })
}

/// The stored nodes whose hashes make up the hash of leaves `[start, end)`. Every range the
/// RFC 6962 recursion visits starts at a multiple of its left part's size, so it decomposes
/// into aligned complete subtrees.
fn range_nodes(start: u64, end: u64, out: &mut Vec<NodeId>) {
    let size = end - start;
    if let Some(node) = complete_subtree(start, size) {
        out.push(node);
    } else {
        let k = split_point(size);
        range_nodes(start, start + k, out);
        range_nodes(start + k, end, out);
    }
}

/// The hash of leaves `[start, end)` from stored nodes; `None` if one is missing.
fn range_hash(start: u64, end: u64, nodes: &HashMap<NodeId, Hash>) -> Option<Hash> {
    let size = end - start;
    if let Some(node) = complete_subtree(start, size) {
        nodes.get(&node).copied()
    } else {
        let k = split_point(size);
        Some(node_hash(
            &range_hash(start, start + k, nodes)?,
            &range_hash(start + k, end, nodes)?,
        ))
    }
}

/// RFC 6962 PATH(m, D[start:end]) as the leaf ranges whose hashes form it, leaf side first.
fn path_ranges(m: u64, start: u64, end: u64, out: &mut Vec<(u64, u64)>) {
    let size = end - start;
    if size <= 1 {
        return;
    }
    let k = split_point(size);
    if m < k {
        path_ranges(m, start, start + k, out);
        out.push((start + k, end));
    } else {
        path_ranges(m - k, start + k, end, out);
        out.push((start, start + k));
    }
}

/// RFC 6962 SUBPROOF(m, D[start:end], b) as leaf ranges.
fn subproof_ranges(m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<(u64, u64)>) {
    let size = end - start;
    if m == size {
        if !whole {
            out.push((start, end));
        }
        return;
    }
    let k = split_point(size);
    if m <= k {
        subproof_ranges(m, start, start + k, whole, out);
        out.push((start + k, end));
    } else {
        subproof_ranges(m - k, start + k, end, false, out);
        out.push((start, start + k));
    }
}

fn nodes_of(ranges: &[(u64, u64)]) -> Vec<NodeId> {
    let mut nodes = Vec::new();
    for &(start, end) in ranges {
        range_nodes(start, end, &mut nodes);
    }
    nodes.sort_unstable();
    nodes.dedup();
    nodes
}

fn hashes_of(ranges: &[(u64, u64)], nodes: &HashMap<NodeId, Hash>) -> Option<Vec<Hash>> {
    ranges
        .iter()
        .map(|&(start, end)| range_hash(start, end, nodes))
        .collect()
}

/// The root of a tree of `size` leaves: every node it needs.
pub fn root_nodes(size: u64) -> Vec<NodeId> {
    if size == 0 {
        return Vec::new();
    }
    nodes_of(&[(0, size)])
}

pub fn root_from_nodes(size: u64, nodes: &HashMap<NodeId, Hash>) -> Option<Hash> {
    if size == 0 {
        return Some(empty_root());
    }
    range_hash(0, size, nodes)
}

/// The nodes an inclusion proof of leaf `index` in a tree of `size` needs (`index < size`).
pub fn inclusion_nodes(index: u64, size: u64) -> Vec<NodeId> {
    let mut ranges = Vec::new();
    path_ranges(index, 0, size, &mut ranges);
    nodes_of(&ranges)
}

pub fn inclusion_proof(index: u64, size: u64, nodes: &HashMap<NodeId, Hash>) -> Option<Vec<Hash>> {
    let mut ranges = Vec::new();
    path_ranges(index, 0, size, &mut ranges);
    hashes_of(&ranges, nodes)
}

/// The nodes a consistency proof from `old_size` to `new_size` needs
/// (`0 < old_size <= new_size`).
pub fn consistency_nodes(old_size: u64, new_size: u64) -> Vec<NodeId> {
    let mut ranges = Vec::new();
    subproof_ranges(old_size, 0, new_size, true, &mut ranges);
    nodes_of(&ranges)
}

pub fn consistency_proof(
    old_size: u64,
    new_size: u64,
    nodes: &HashMap<NodeId, Hash>,
) -> Option<Vec<Hash>> {
    let mut ranges = Vec::new();
    subproof_ranges(old_size, 0, new_size, true, &mut ranges);
    hashes_of(&ranges, nodes)
}

/// RFC 9162 §2.1.3.2: whether `proof` shows leaf `leaf` at `index` in the tree of `size`
/// leaves with root `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

/// RFC 9162 §2.1.4.2: whether `proof` shows the tree of `new_size` leaves with root `new_root`
/// extends the tree of `old_size` leaves with root `old_root`.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return proof.is_empty();
    }
    let mut proof = proof.iter();
    let mut path: Vec<Hash> = Vec::new();
    // If old_size is a power of two, its root is the first node of the path.
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend(proof.by_ref().copied());
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && fr == *old_root && sr == *new_root
}

/// The right edge of a tree: the roots of its complete subtrees, largest first, which is all
/// that appending needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (node, hash) for each set bit of `size`, from the highest.
    subtrees: Vec<(NodeId, Hash)>,
}

impl Frontier {
    /// The nodes a tree of `size` leaves keeps on its right edge.
    pub fn nodes(size: u64) -> Vec<NodeId> {
        let mut nodes = Vec::new();
        let mut start = 0;
        for level in (0..64u8).rev() {
            if size & (1 << level) != 0 {
                nodes.push(NodeId {
                    level,
                    index: start >> level,
                });
                start += 1 << level;
            }
        }
        nodes
    }

    /// The frontier of a tree of `size` leaves from its stored nodes.
    pub fn load(size: u64, nodes: &HashMap<NodeId, Hash>) -> Option<Self> {
        let subtrees = Self::nodes(size)
            .into_iter()
            .map(|node| nodes.get(&node).map(|hash| (node, *hash)))
            .collect::<Option<_>>()?;
        Some(Self { size, subtrees })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf, returning every node completed by it (the leaf first).
    pub fn append(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        let mut node = NodeId {
            level: 0,
            index: self.size,
        };
        let mut hash = leaf;
        let mut completed = vec![(node, hash)];
        while let Some(&(left, left_hash)) = self.subtrees.last() {
            if left.level != node.level {
                break;
            }
            self.subtrees.pop();
            hash = node_hash(&left_hash, &hash);
            node = NodeId {
                level: node.level + 1,
                index: left.index >> 1,
            };
            completed.push((node, hash));
        }
        self.subtrees.push((node, hash));
        self.size += 1;
        completed
    }

    /// The root hash of the tree.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.subtrees.iter().rev();
        let Some(&(_, mut root)) = subtrees.next() else {
            return empty_root();
        };
        for (_, left) in subtrees {
            root = node_hash(left, &root);
        }
        root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Hash {
        let bytes: Vec<u8> = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect();
        bytes.try_into().unwrap()
    }

    /// The leaf inputs of the RFC 6962 test vectors (transparency-dev/merkle testonly).
    fn leaf_inputs() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|h| {
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect()
    }

    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// A tree built from the test leaves, with every stored node.
    fn tree(size: usize) -> (Frontier, HashMap<NodeId, Hash>) {
        let mut frontier = Frontier::default();
        let mut nodes = HashMap::new();
        for input in leaf_inputs().iter().take(size) {
            nodes.extend(frontier.append(leaf_hash(input)));
        }
        (frontier, nodes)
    }

    #[test]
    fn empty_tree_root() {
        assert_eq!(
            empty_root(),
            hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(Frontier::default().root(), empty_root());
    }

    #[test]
    fn roots_match_the_test_vectors() {
        for (size, expected) in ROOTS.iter().enumerate().map(|(i, r)| (i + 1, hex(r))) {
            let (frontier, nodes) = tree(size);
            assert_eq!(frontier.root(), expected, "frontier root at size {size}");
            assert_eq!(
                root_from_nodes(size as u64, &nodes),
                Some(expected),
                "stored root at size {size}"
            );
        }
    }

    #[test]
    fn inclusion_proofs_match_the_test_vectors() {
        // (leaf index, tree size, proof) from transparency-dev/merkle proof/verify_test.go.
        let vectors: [(u64, u64, &[&str]); 4] = [
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        let inputs = leaf_inputs();
        for (index, size, expected) in vectors {
            let (_, nodes) = tree(size as usize);
            let expected: Vec<Hash> = expected.iter().map(|h| hex(h)).collect();
            let proof = inclusion_proof(index, size, &nodes).unwrap();
            assert_eq!(proof, expected, "inclusion {index} in {size}");
            let needed = inclusion_nodes(index, size);
            let only_needed: HashMap<NodeId, Hash> =
                needed.iter().map(|n| (*n, nodes[n])).collect();
            assert_eq!(
                inclusion_proof(index, size, &only_needed).unwrap(),
                expected
            );

            let root = hex(ROOTS[size as usize - 1]);
            let leaf = leaf_hash(&inputs[index as usize]);
            assert!(verify_inclusion(index, size, &leaf, &proof, &root));
            for (what, bad) in mutated(&proof, &root) {
                assert!(
                    !verify_inclusion(index, size, &leaf, &bad, &root),
                    "accepted {what}"
                );
            }
            assert!(!verify_inclusion(index ^ 1, size, &leaf, &proof, &root));
            assert!(!verify_inclusion(index, size * 2, &leaf, &proof, &root));
            assert!(!verify_inclusion(
                index,
                size,
                &leaf_hash(b"WrongLeaf"),
                &proof,
                &root
            ));
            assert!(!verify_inclusion(index, size, &leaf, &proof, &empty_root()));
        }
    }

    #[test]
    fn consistency_proofs_match_the_test_vectors() {
        let vectors: [(u64, u64, &[&str]); 4] = [
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (old, new, expected) in vectors {
            let (_, nodes) = tree(new as usize);
            let expected: Vec<Hash> = expected.iter().map(|h| hex(h)).collect();
            let proof = consistency_proof(old, new, &nodes).unwrap();
            assert_eq!(proof, expected, "consistency {old} -> {new}");
            let needed = consistency_nodes(old, new);
            assert!(needed.iter().all(|n| nodes.contains_key(n)));
            let (old_root, new_root) = (hex(ROOTS[old as usize - 1]), hex(ROOTS[new as usize - 1]));
            assert!(verify_consistency(old, new, &old_root, &new_root, &proof));
            for (what, bad) in mutated(&proof, &new_root) {
                assert!(
                    !verify_consistency(old, new, &old_root, &new_root, &bad),
                    "accepted {what}"
                );
            }
            assert!(
                !verify_consistency(old, new, &new_root, &old_root, &proof),
                "swapped roots"
            );
            assert!(!verify_consistency(
                old + 1,
                new,
                &old_root,
                &new_root,
                &proof
            ));
            assert!(!verify_consistency(
                old,
                new * 2,
                &old_root,
                &new_root,
                &proof
            ));
            assert!(!verify_consistency(old, new, &old_root, &new_root, &[]));
        }
        let root = hex(ROOTS[0]);
        assert!(verify_consistency(1, 1, &root, &root, &[]));
        assert!(!verify_consistency(2, 1, &root, &root, &[]));
    }

    /// Proofs that must all be rejected: each element bit-flipped, one removed, garbage added.
    fn mutated(proof: &[Hash], root: &Hash) -> Vec<(String, Vec<Hash>)> {
        let mut variants = Vec::new();
        for i in 0..proof.len() {
            let mut bad = proof.to_vec();
            bad[i][0] ^= 8;
            variants.push((format!("bit flip in {i}"), bad));
        }
        if !proof.is_empty() {
            variants.push(("truncated".into(), proof[..proof.len() - 1].to_vec()));
        }
        let mut trailing = proof.to_vec();
        trailing.push(*root);
        variants.push(("trailing root".into(), trailing));
        let mut leading = vec![*root];
        leading.extend_from_slice(proof);
        variants.push(("leading root".into(), leading));
        variants
    }

    #[test]
    fn proofs_verify_for_every_size_up_to_64() {
        let mut frontier = Frontier::default();
        let mut nodes = HashMap::new();
        let mut roots = vec![empty_root()];
        for i in 0..64u64 {
            nodes.extend(frontier.append(leaf_hash(&i.to_be_bytes())));
            roots.push(frontier.root());
            assert_eq!(root_from_nodes(i + 1, &nodes), Some(frontier.root()));
            assert_eq!(Frontier::load(i + 1, &nodes).as_ref(), Some(&frontier));
        }
        for size in 1..=64u64 {
            for index in 0..size {
                let proof = inclusion_proof(index, size, &nodes).unwrap();
                let leaf = leaf_hash(&index.to_be_bytes());
                assert!(verify_inclusion(
                    index,
                    size,
                    &leaf,
                    &proof,
                    &roots[size as usize]
                ));
            }
            for old in 1..=size {
                let proof = consistency_proof(old, size, &nodes).unwrap();
                assert!(verify_consistency(
                    old,
                    size,
                    &roots[old as usize],
                    &roots[size as usize],
                    &proof
                ));
            }
        }
    }

    #[test]
    fn node_keys_number_nodes_in_the_order_appends_complete_them() {
        let mut frontier = Frontier::default();
        let mut keys = Vec::new();
        for leaf in 0..1100u32 {
            keys.extend(
                frontier
                    .append(leaf_hash(&leaf.to_be_bytes()))
                    .into_iter()
                    .map(|(node, _)| node.key()),
            );
        }
        let expected: Vec<i64> = (0..keys.len() as i64).collect();
        assert_eq!(keys, expected);
    }
}
