-- The tree's nodes are keyed by the order in which the log completes them (each leaf, then the
-- subtrees it completes, lowest first; see `NodeId::key`) instead of level << 56 | index. Keyed
-- by level, a group commit added nodes at the right edge of each level's range: one page of the
-- key index per level, written and synced every commit. In completion order every append adds
-- keys above all stored ones, so its nodes share a page or two.
--
-- A node at (level, index) completes with leaf n << level, n = index + 1, and is numbered
-- 2 (n << level) - 1 - popcount(n) - trailing_zeros(n), where trailing_zeros(n) =
-- popcount((n & -n) - 1); the bit counts below are the usual halving sums, in SQL both backends
-- run.
CREATE TABLE audit_tree (
    key  INTEGER PRIMARY KEY NOT NULL,
    hash BLOB NOT NULL
);

WITH
    nodes (key, level, n, t) AS MATERIALIZED (
        SELECT key, key >> 56, (key & 72057594037927935) + 1,
               (((key & 72057594037927935) + 1) & -((key & 72057594037927935) + 1)) - 1
        FROM audit_nodes
    ),
    -- Bit counts of n and t by pairs of bits, then by nibbles, then by bytes (the two counts
    -- added per byte: at most 16 each).
    pairs (key, level, n, a, t) AS MATERIALIZED (
        SELECT key, level, n,
               n - ((n >> 1) & 6148914691236517205),
               t - ((t >> 1) & 6148914691236517205)
        FROM nodes
    ),
    nibbles (key, level, n, a, t) AS MATERIALIZED (
        SELECT key, level, n,
               (a & 3689348814741910323) + ((a >> 2) & 3689348814741910323),
               (t & 3689348814741910323) + ((t >> 2) & 3689348814741910323)
        FROM pairs
    ),
    bytes (key, level, n, s) AS MATERIALIZED (
        SELECT key, level, n,
               ((a + (a >> 4)) & 1085102592571150095) + ((t + (t >> 4)) & 1085102592571150095)
        FROM nibbles
    ),
    renumbered (old_key, position) AS MATERIALIZED (
        SELECT key,
               2 * (n << CAST(level AS INTEGER)) - 1
               - ((s + (s >> 8) + (s >> 16) + (s >> 24) + (s >> 32) + (s >> 40) + (s >> 48)
                   + (s >> 56)) & 255)
        FROM bytes
    )
INSERT INTO audit_tree (key, hash)
SELECT renumbered.position, audit_nodes.hash
FROM renumbered JOIN audit_nodes ON audit_nodes.key = renumbered.old_key
ORDER BY 1;

DROP TABLE audit_nodes;
ALTER TABLE audit_tree RENAME TO audit_nodes;
