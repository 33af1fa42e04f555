"""The pure transition function over the shipped workflows."""

from __future__ import annotations

import pytest

from engine.config import PROJECT_ROOT
from engine.errors import Conflict, Forbidden, InvalidInput
from engine.requests.statemachine import available_actions, transition
from engine.requests.workflows import load_workflows

SPECS = load_workflows(PROJECT_ROOT / "workflows")
UMUM = SPECS["surat-keterangan-umum"]
KEMATIAN = SPECS["surat-keterangan-kematian"]


def test_happy_path_of_the_death_letter_passes_kasi_then_sekdes_then_head():
    state = KEMATIAN.initial_state
    for role, action in [("operator", "submit"), ("kasi", "approve"), ("sekdes", "approve")]:
        state = transition(KEMATIAN, state, action, role, None)
    assert state == "signing"
    assert transition(KEMATIAN, state, "sign", "head", None) == "issued"


def test_role_must_match_the_step():
    with pytest.raises(Forbidden, match="sekdes"):
        transition(UMUM, "review", "approve", "kasi", None)


def test_return_and_reject_need_a_reason():
    for action in ("return", "reject"):
        with pytest.raises(InvalidInput, match="alasan"):
            transition(UMUM, "review", action, "sekdes", "  ")
    assert transition(UMUM, "review", "return", "sekdes", "kurang lengkap") == "draft"


def test_unknown_or_unavailable_action_is_a_conflict():
    with pytest.raises(Conflict):
        transition(UMUM, "draft", "sign", "operator", None)


def test_terminal_states_accept_nothing():
    for state in ("issued", "rejected", "cancelled"):
        with pytest.raises(Conflict):
            transition(UMUM, state, "cancel", "operator", "x")
        assert available_actions(UMUM, state, "operator") == []


def test_only_the_operator_cancels_and_with_a_reason():
    assert transition(UMUM, "signing", "cancel", "operator", "pemohon batal") == "cancelled"
    with pytest.raises(Forbidden):
        transition(UMUM, "signing", "cancel", "head", "x")
    with pytest.raises(InvalidInput):
        transition(UMUM, "signing", "cancel", "operator", None)


def test_available_actions_follow_role():
    assert available_actions(UMUM, "review", "sekdes") == ["approve", "reject", "return"]
    assert available_actions(UMUM, "review", "operator") == ["cancel"]
    assert available_actions(UMUM, "signing", "head") == ["reject", "return", "sign"]
