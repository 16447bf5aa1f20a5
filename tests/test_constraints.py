"""Tests of protomodels.database.constraints (hand-checked against SModelS numbering rules)."""

from __future__ import annotations

import json

import pytest

from protomodels.database.constraints import (
    DATABASE_LABELS,
    SMS,
    Condition,
    Constraint,
    ConstraintError,
    LinearExpression,
    Node,
    parse_constraint,
)

T2 = "[[['jet']],[['jet']]]"
T5HH = "[[['jet','jet'],['higgs']],[['jet','jet'],['higgs']]]"


def labels_by_number(sms: SMS) -> dict[int, str]:
    return {nd.number: nd.name for nd in sms.nodes}


def only_sms(text: str, **kwargs: object) -> SMS:
    c = parse_constraint(text, **kwargs)  # type: ignore[arg-type]
    assert len(c.sms) == 1
    return c.sms[0]


# --- bracket notation ---------------------------------------------------------------------------


def test_t2_numbering() -> None:
    c = parse_constraint(T2)
    (sms,) = c.sms
    assert sms.decays == ((0, (1, 2)), (1, (3, 4)), (2, (5, 6)))
    assert sms.branches == ((1, 3), (2, 5))
    assert labels_by_number(sms) == {
        0: "PV",
        1: "anyBSM",
        2: "anyBSM",
        3: "MET",
        4: "jet",
        5: "MET",
        6: "jet",
    }
    assert [nd.number for nd in sms.nodes] == list(range(7))
    assert c.expression == LinearExpression(((0, 1.0),))
    assert c.conditions == ()


def test_t5hh_bsm_numbers() -> None:
    sms = only_sms(T5HH)
    assert sms.branches == ((1, 3, 6), (2, 8, 11))
    names = labels_by_number(sms)
    assert [names[n] for n in (1, 3, 6, 2, 8, 11)] == ["anyBSM"] * 2 + ["MET"] + ["anyBSM"] * 2 + [
        "MET"
    ]
    assert sms.decays[1] == (1, (3, 4, 5))
    assert sms.decays[2] == (3, (6, 7))
    assert names[7] == "higgs"


def test_branch_without_decay() -> None:
    sms = only_sms("[[['jet']],[]]")
    assert sms.decays == ((0, (1, 2)), (1, (3, 4)))
    assert sms.branches == ((1, 3), (2,))
    assert labels_by_number(sms) == {0: "PV", 1: "anyBSM", 2: "MET", 3: "MET", 4: "jet"}


def test_unquoted_and_sorted_labels() -> None:
    quoted = only_sms("[[['b','l','nu']],[['b','jet','jet']]]")
    unquoted = only_sms("[[[b, l, nu]],[[b, jet,jet]]]")
    assert quoted == unquoted
    names = labels_by_number(unquoted)
    # SM particles of a vertex are numbered in alphabetical order
    assert [names[n] for n in (4, 5, 6)] == ["b", "l", "nu"]
    assert [names[n] for n in (8, 9, 10)] == ["b", "jet", "jet"]


def test_broken_quotes_are_read_leniently() -> None:
    sms = only_sms("[[['nu'],[L-']],[['nu'],[''ta-'']]]")
    assert {"L-", "ta-", "nu"} <= {nd.label for nd in sms.nodes}


def test_star_in_vertex_is_any_sm() -> None:
    sms = only_sms("[[['*','*']],[['*']]]")
    names = labels_by_number(sms)
    assert [names[n] for n in (4, 5, 7)] == ["anySM"] * 3
    assert not any(nd.inclusive for nd in sms.nodes)


def test_inclusive_list_in_vertex() -> None:
    sms = only_sms("[[[*anySM]],[]]", intermediate_state=[["C1"], []])
    assert sms.to_string() == "{(PV > C1(1),MET(2)), (C1(1) > MET(3),*anySM(4))}"
    assert sms.node(4) == Node(4, "anySM", inclusive=True)


def test_inclusive_branch() -> None:
    sms = only_sms("[['*'],[]]", final_state=["HSCP", "MET"])
    assert sms.decays == ((0, (1, 2)), (1, (3, 4)))
    assert sms.branches == ((1, 3), (2,))
    assert sms.node(1) == Node(1, "InclusiveNode")
    assert sms.node(3) == Node(3, "HSCP")
    assert sms.node(4) == Node(4, "anySM", inclusive=True)
    assert sms.node(2) == Node(2, "MET")
    # unquoted form, and a vertex '*' on the other branch
    other = only_sms("[[*],[['*','*']]]")
    assert other.node(1).label == "InclusiveNode"
    assert [other.node(n).name for n in (5, 6, 7)] == ["MET", "anySM", "anySM"]


def test_intermediate_and_final_state_labels() -> None:
    sms = only_sms(
        T5HH, final_state=["HSCP", "MET"], intermediate_state=[["gluino"] * 2, ["gluino"] * 2]
    )
    names = labels_by_number(sms)
    assert [names[n] for n in (1, 3, 6)] == ["gluino", "gluino", "HSCP"]
    assert [names[n] for n in (2, 8, 11)] == ["gluino", "gluino", "MET"]
    one = only_sms(
        "[[['jet']],[['jet']]]", final_state=[None, "RHadronG"], intermediate_state=[["C1"], None]
    )
    assert labels_by_number(one)[1] == "C1"
    assert labels_by_number(one)[2] == "anyBSM"
    assert labels_by_number(one)[3] == "MET"
    assert labels_by_number(one)[5] == "RHadronG"


# --- expressions --------------------------------------------------------------------------------


def test_coefficient_times_sum() -> None:
    c = parse_constraint("2.23*([[['jet']],[['jet']]]+[[['b']],[['b']]])")
    assert c.expression.terms == ((0, 2.23), (1, 2.23))
    assert c.sms[1].node(4).label == "b"


def test_fraction_coefficient() -> None:
    c = parse_constraint("27./8.*[[[b, l, nu]],[[b, jet, jet]]]")
    assert c.expression.terms == ((0, 3.375),)
    c = parse_constraint("2.23 * [[['t']],[['t']]] / 2")
    assert c.expression.terms == ((0, pytest.approx(1.115)),)


def test_nested_parentheses() -> None:
    a, b, cc, d = (f"[[['{x}']],[['{x}']]]" for x in ("e+", "mu+", "ta+", "b"))
    c = parse_constraint(f"2*(({a}+{b})+({cc}+{d}))")
    assert c.expression.terms == ((0, 2.0), (1, 2.0), (2, 2.0), (3, 2.0))
    c = parse_constraint(f"1.5*({a} - .5*{b}) + 1e-3*{cc}")
    assert c.expression.terms == ((0, 1.5), (1, -0.75), (2, 0.001))


def test_repeated_sms_add_coefficients() -> None:
    # the same graph written twice (branches swapped): coefficients are added
    c = parse_constraint("[[['e+']],[['e-']]] + 2*[[['e-']],[['e+']]]")
    assert len(c.sms) == 1
    assert c.expression.terms == ((0, 3.0),)


# --- graph notation -----------------------------------------------------------------------------


def test_graph_explicit_numbers() -> None:
    sms = only_sms("{(PV > Zprime(1)), (Zprime(1) > MET(2),MET(3))}")
    assert sms.decays == ((0, (1,)), (1, (2, 3)))
    assert sms.branches is None
    assert labels_by_number(sms) == {0: "PV", 1: "Zprime", 2: "MET", 3: "MET"}


def test_graph_implicit_numbers() -> None:
    sms = only_sms(
        "{(PV > anyBSM(1), anyBSM(3)), (anyBSM(1) > t,anyBSM(2)), (anyBSM(3) > t,anyBSM(4)),"
        " (anyBSM(2) > jet,b), (anyBSM(4) > jet,b)}"
    )
    assert sms.decays == (
        (0, (1, 3)),
        (1, (5, 2)),
        (3, (6, 4)),
        (2, (7, 8)),
        (4, (9, 10)),
    )
    names = labels_by_number(sms)
    assert [names[n] for n in range(5, 11)] == ["t", "t", "jet", "b", "jet", "b"]
    assert [nd.number for nd in sms.nodes] == list(range(11))


def test_graph_inclusive_list() -> None:
    sms = only_sms("{(PV > C1(1),MET(3)), (C1(1) > *anySM,MET(2))}")
    assert sms.decays == ((0, (1, 3)), (1, (4, 2)))
    assert sms.node(4) == Node(4, "anySM", inclusive=True)
    # the same graph as the bracket form with an intermediate C1
    bracket = only_sms("[[[*anySM]],[]]", intermediate_state=[["C1"], []])
    assert sms.key() == bracket.key()


# --- keys ---------------------------------------------------------------------------------------


def test_key_ignores_numbering_and_order() -> None:
    a = only_sms("{(PV > anyBSM(1),anyBSM(2)), (anyBSM(1) > jet,mu+), (anyBSM(2) > jet,mu-)}")
    b = only_sms("{(PV > anyBSM(7),anyBSM(3)), (anyBSM(3) > mu-,jet), (anyBSM(7) > mu+(9),jet)}")
    assert a.key() == b.key()
    assert a != b
    # bracket vs graph, branches swapped
    c = only_sms("[[['jet']],[['t']]]")
    d = only_sms("{(PV > anyBSM(1),anyBSM(2)), (anyBSM(1) > t,MET), (anyBSM(2) > MET,jet)}")
    assert c.key() == d.key()


def test_key_distinguishes_charges() -> None:
    assert only_sms("[[['t+']],[['t+']]]").key() != only_sms("[[['t-']],[['t+']]]").key()
    assert only_sms("[[['t+']],[['t-']]]").key() != only_sms("[[['t']],[['t']]]").key()
    assert only_sms("[[[*anySM]],[]]").key() != only_sms("[[[anySM]],[]]").key()


# --- conditions ---------------------------------------------------------------------------------


def test_conditions_with_semicolons_and_new_sms() -> None:
    constraint = "[[['L'],['L']],[['nu'],['ta']]]"
    condition = (
        "Cgtr([[['L'],['L']],[['nu'],['ta']]],3.*[[['ta'],['ta']],[['nu'],['ta']]]);"
        " cGtr([[['L'],['L']],[['nu'],['ta']]], 3.*[[['e'],['e']],[['nu'],['ta']]])"
    )
    c = parse_constraint(constraint, condition)
    assert len(c.sms) == 3
    assert c.expression.terms == ((0, 1.0),)
    assert c.conditions == (
        Condition("greater", (LinearExpression(((0, 1.0),)), LinearExpression(((1, 3.0),)))),
        Condition("greater", (LinearExpression(((0, 1.0),)), LinearExpression(((2, 3.0),)))),
    )
    assert c.sms[1].node(4).label == "ta"
    assert c.sms[2].node(4).label == "e"


def test_csim_and_list_of_conditions() -> None:
    a, b = "[[['mu+']],[['mu-']]]", "[[['e+']],[['e-']]]"
    c = parse_constraint(f"{a}+{b}", [f"Csim({a}, 2.0*({b}))", f"cSim({a},{b},{a}+{b})"])
    assert [cond.kind for cond in c.conditions] == ["similar", "similar"]
    assert c.conditions[0].args == (LinearExpression(((0, 1.0),)), LinearExpression(((1, 2.0),)))
    assert c.conditions[1].args[2] == LinearExpression(((0, 1.0), (1, 1.0)))
    # a single-argument Csim occurs in the database and is accepted
    single = parse_constraint(a, f"Csim({a}+2.*{b})")
    assert single.conditions[0].args == (LinearExpression(((0, 1.0), (1, 2.0))),)


@pytest.mark.parametrize("condition", [None, "None", "", ["None"], []])
def test_no_condition(condition: str | list[str] | None) -> None:
    assert parse_constraint(T2, condition).conditions == ()


# --- JSON and labels ----------------------------------------------------------------------------


def test_json_round_trip() -> None:
    c = parse_constraint(
        "2*([[['jet']],[['jet']]] + {(PV > C1(1),MET(3)), (C1(1) > *anySM,MET(2))})",
        "Cgtr([[['jet']],[['jet']]], [[['b']],[['b']]]); Csim([['*'],[]])",
        final_state=["MET", "HSCP"],
    )
    text = json.dumps(c.to_json())
    back = Constraint.from_json(json.loads(text))
    assert back == c
    assert back.sms[0].branches == ((1, 3), (2, 5))
    assert back.sms[1].branches is None
    assert SMS.from_json(json.loads(json.dumps(c.sms[1].to_json()))) == c.sms[1]


def test_labels() -> None:
    c = parse_constraint(T2, "Cgtr([[['jet']],[['jet']]], [[['b']],[['b']]])")
    assert c.labels() == frozenset({"PV", "anyBSM", "MET", "jet", "b"})
    assert c.labels() <= DATABASE_LABELS
    assert {"t+", "t-", "pi0", "RHadronD+", "C1-", "InclusiveNode", "jetb"} <= DATABASE_LABELS


def test_known_labels() -> None:
    parse_constraint(T5HH, known_labels=DATABASE_LABELS)
    with pytest.raises(ConstraintError) as err:
        parse_constraint("[[['jets']],[['jet']]]", known_labels=DATABASE_LABELS)
    assert err.value.field == "constraint"
    assert "'jets'" in str(err.value)
    assert "databaseParticles.py" in str(err.value)
    with pytest.raises(ConstraintError) as err:
        parse_constraint(
            T2, "Cgtr([[['jet']],[['jet']]], [[['tau']],[['b']]])", known_labels=DATABASE_LABELS
        )
    assert err.value.field == "condition"
    assert "'tau'" in str(err.value)


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("constraint", "words"),
    [
        ("[[['jet']],[['jet']]", "unbalanced"),
        ("[[['jet']],[['jet']]]]", "unbalanced"),
        ("2*([[['jet']],[['jet']]]", "unbalanced"),
        ("", "empty"),
        ("   ", "empty"),
        ("2.5", "no SMS"),
        ("[[['jet']],[['jet']]] + 1", "constant"),
        ("[[['jet']],[['jet']]] * [[['b']],[['b']]]", "non-linear"),
        ("2/[[['jet']],[['jet']]]", "non-linear"),
        ("[[['jet']],[['jet']]]/0", "division by zero"),
        ("[[['jet']]]", "exactly 2 branches"),
        ("[[['jet']],[['jet']],[['jet']]]", "exactly 2 branches"),
        ("[['jet'],['jet']]", "not a vertex"),
        ("[[['jet']],[['jet']]] +", "ends unexpectedly"),
        ("[[['jet']],[['jet']]] [[['b']],[['b']]]", "unexpected"),
        ("{(PV > anyBSM(1)), (anyBSM > jet,MET)}", "node number"),
        ("{(PV > anyBSM(1)), (anyBSM(2) > jet,MET)}", "not connected"),
        ("{(PV > anyBSM(1)), (MET(1) > jet,MET)}", "labelled both"),
        ("{(PV anyBSM(1))}", "'>'"),
        ("{}", "empty graph"),
    ],
)
def test_constraint_errors(constraint: str, words: str) -> None:
    with pytest.raises(ConstraintError) as err:
        parse_constraint(constraint)
    assert err.value.field == "constraint"
    assert words in err.value.message
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("condition", "words"),
    [
        ("Cfoo([[['jet']],[['jet']]], [[['b']],[['b']]])", "unknown function"),
        ("Cgtr([[['jet']],[['jet']]])", "exactly 2 arguments"),
        ("Cgtr([[['jet']],[['jet']]], [[['b']],[['b']]]", "unbalanced"),
        ("Cgtr([[['jet']],[['jet']]], [[['b']],[['b']]]) x", "after the call"),
        ("Cgtr([[['jet']],[['jet']]], )", "empty argument"),
        ("Csim([[['jet']],[['jet']]] * [[['b']],[['b']]])", "non-linear"),
        ("[[['jet']],[['jet']]] > [[['b']],[['b']]]", "expected a call"),
        ("Cgtr([[['jet']]], [[['b']],[['b']]])", "exactly 2 branches"),
    ],
)
def test_condition_errors(condition: str, words: str) -> None:
    with pytest.raises(ConstraintError) as err:
        parse_constraint(T2, condition)
    assert err.value.field == "condition"
    assert words in err.value.message


def test_state_errors() -> None:
    with pytest.raises(ConstraintError, match="intermediate_state"):
        parse_constraint(T5HH, intermediate_state=[["gluino"], ["gluino"]])
    with pytest.raises(ConstraintError, match="final_state"):
        parse_constraint(T2, final_state=["MET"])
