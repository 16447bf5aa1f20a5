"""The matcher compiles every constraint of the real database and serves every data map."""

from __future__ import annotations

import pytest

from protomodels.database.constraints import parse_constraint
from protomodels.theory.matching import compile_pattern


@pytest.mark.slow
def test_every_data_map_node_is_served() -> None:
    from protomodels.database import open as open_database
    from protomodels.theory.matching import Matcher

    matcher = Matcher(open_database(workspaces=False))
    assert matcher.unsupported == []
    assert len(matcher.patterns) > 150  # 205 distinct two-chain constraint graphs in v3.0.0


def test_equal_graphs_numbered_differently_share_a_key_and_map_their_own_nodes() -> None:
    a = parse_constraint(
        "{(PV > anyBSM(1), anyBSM(4)), (anyBSM(1) > t,anyBSM(2)), (anyBSM(4) > t,anyBSM(5)), "
        "(anyBSM(2) > W,MET(3)), (anyBSM(5) > W,MET(6))}"
    ).sms[0]
    b = parse_constraint(
        "{(PV > anyBSM(1), anyBSM(2)), (anyBSM(1) > t,anyBSM(3)), (anyBSM(2) > t,anyBSM(4)), "
        "(anyBSM(3) > W,MET(5)), (anyBSM(4) > W,MET(6))}"
    ).sms[0]
    assert a.key() == b.key()
    pa, pb = compile_pattern(a), compile_pattern(b)
    assert pa is not None and pb is not None
    assert pa.branches[0].numbers == (1, 2, 3) and pa.branches[1].numbers == (4, 5, 6)
    assert pb.branches[0].numbers == (1, 3, 5) and pb.branches[1].numbers == (2, 4, 6)
