"""Connected components by alternating large-star and small-star rounds (Kiveris et al., SoCC 2014).

Each round maps a node's neighbourhood to edges pointing at smaller nodes; at the fixed point every
component is a star around its smallest node. These per-node steps are what the Beam rounds run;
`connected_components` drives the same steps in memory for tests and small inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def large_star(node: int, neighbours: Iterable[int]) -> Iterator[tuple[int, int]]:
    """Connect every larger neighbour to the smallest node of the closed neighbourhood."""
    nbrs = set(neighbours)
    smallest = min(nbrs | {node})
    for v in nbrs:
        if v > node:
            yield v, smallest


def small_star(node: int, smaller_neighbours: Iterable[int]) -> Iterator[tuple[int, int]]:
    """Connect the node and its smaller neighbours to the smallest of them."""
    closed = set(smaller_neighbours) | {node}
    smallest = min(closed)
    for v in closed:
        if v != smallest:
            yield v, smallest


def small_star_both_directions(node: int, smaller_neighbours: Iterable[int]) -> Iterator[tuple[int, int]]:
    """`small_star`'s edges, each in both directions."""
    for edge in small_star(node, smaller_neighbours):
        yield from both_directions(edge)


def both_directions(edge: tuple[int, int]) -> Iterator[tuple[int, int]]:
    u, v = edge
    yield u, v
    yield v, u


def toward_larger(edge: tuple[int, int]) -> tuple[int, int]:
    """The edge keyed by its larger end, as small-star groups it."""
    u, v = edge
    return (u, v) if u > v else (v, u)


def label(node: int, neighbours: Iterable[int]) -> int:
    return min(min(neighbours), node)


def resolve_residual(label_pairs: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Union-find over labels still joined by an edge after the last round: label -> final label."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in label_pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in parent}


def _group(edges: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for u, v in edges:
        out.setdefault(u, []).append(v)
    return out


def connected_components(edges: Iterable[tuple[int, int]]) -> dict[int, int]:
    """node -> smallest node of its component, for every node on an edge (rounds to the fixed point)."""
    current = {toward_larger(e) for e in edges if e[0] != e[1]}
    while True:
        large = {
            toward_larger(e)
            for u, nbrs in _group(e2 for e in current for e2 in both_directions(e)).items()
            for e in large_star(u, nbrs)
        }
        small = {toward_larger(e) for u, nbrs in _group(large).items() for e in small_star(u, nbrs)}
        if small == current:
            break
        current = small
    return {u: label(u, nbrs) for u, nbrs in _group(e2 for e in current for e2 in both_directions(e)).items()}
