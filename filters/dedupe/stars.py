"""Near-duplicate clusters that never chain: each connected component of candidate pairs is split into
stars around representatives picked by the keep rule (the pivot clustering of Ailon, Charikar and Newman
2008, with the keep rule as the pivot order instead of a random one).

Connected components join texts that are only linked through variants (BSD-2 ~ BSD-3 ~ a BSD-3 with
another clause), so a member can end up far below the threshold from the copy that is kept. Here every
removed member meets the threshold against its own representative, whatever the component's shape, and
the result depends only on the component's members and the keep rule, never on arrival order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

Member = TypeVar("Member")


def star_clusters(
    members: Sequence[Member], similarity: Callable[[Member, Member], float], threshold: float | None
) -> list[tuple[Member, list[tuple[Member, float]]]]:
    """Members in keep-rule order -> [(representative, [(absorbed member, its similarity to it)])].

    The first unassigned member becomes a representative and absorbs every unassigned member whose
    similarity to it reaches `threshold` (None: all of them, as connected components would); the rest
    go on to the next representative. A component of n members with k representatives costs at most
    k * n similarities; a component of copies of one text costs n.
    """
    stars = []
    unassigned = list(members)
    while unassigned:
        representative, absorbed, rest = unassigned[0], [], []
        for member in unassigned[1:]:
            score = similarity(member, representative)
            if threshold is None or score >= threshold:
                absorbed.append((member, score))
            else:
                rest.append(member)
        stars.append((representative, absorbed))
        unassigned = rest
    return stars
