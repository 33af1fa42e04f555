"""Sign-in throttling: the same answer (status, page, cookies) and at least the same time for an
unknown name, a wrong password and a throttled attempt; throttles per (name, address), per
address and per name, counted in the database (every process sees them), that lift by
themselves; never a lock that outlives its window."""

from __future__ import annotations

import re
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from engine.bootstrap import DEMO_PASSWORD
from engine.people import auth
from engine.storage.db import transaction
from engine.storage.models import RateLimitCounter
from suratdesa.web import create_app

P = "/staf"


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


def attempt(services, username: str, password: str, client: str, clock: Clock) -> bool:
    try:
        auth.sign_in(services.factory, username, password, client=client, clock=clock)
    except auth.SignInFailed as exc:
        assert str(exc) == auth.WRONG
        return False
    return True


def test_throttle_lifts_by_itself_and_the_delay_grows(services):
    clock = Clock()
    for _ in range(auth.PAIR.allowance):
        assert not attempt(services, "kasi.grogol", "salah", "10.1.1.1", clock)
    # Throttled: the right password is refused too, with the same answer.
    assert not attempt(services, "kasi.grogol", DEMO_PASSWORD, "10.1.1.1", clock)
    # Another person at another address is not affected.
    assert attempt(services, "kasi.grogol", DEMO_PASSWORD, "10.2.2.2", clock)
    clock.now += auth.delay_after(auth.PAIR.allowance, auth.PAIR.allowance) + auth.SLOT
    assert not attempt(services, "kasi.grogol", "salah", "10.1.1.1", clock)  # checked, wrong
    clock.now += auth.SLOT  # the delay doubled: still throttled
    assert not attempt(services, "kasi.grogol", DEMO_PASSWORD, "10.1.1.1", clock)
    # After the sliding window every failure has dropped out: no lock outlives it.
    clock.now += auth.MAX_DELAY + auth.SLOT
    assert attempt(services, "kasi.grogol", DEMO_PASSWORD, "10.1.1.1", clock)


def test_delays_double_and_stop_at_the_window():
    a = auth.PAIR.allowance
    assert auth.delay_after(a - 1, a) == 0
    assert [auth.delay_after(a + i, a) for i in range(4)] == [10, 20, 40, 80]
    assert auth.delay_after(a + 1000, a) == auth.MAX_DELAY == 900


def test_throttled_attempts_are_not_counted(services):
    """Hammering while throttled does not extend the throttle: it lifts on time."""
    clock = Clock()
    for _ in range(auth.PAIR.allowance):
        attempt(services, "kasi.grogol", "salah", "10.1.1.1", clock)
    for _ in range(50):
        clock.now += 0.1
        assert not attempt(services, "kasi.grogol", "salah", "10.1.1.1", clock)
    clock.now += 2 * auth.SLOT
    assert attempt(services, "kasi.grogol", DEMO_PASSWORD, "10.1.1.1", clock)


def test_unknown_names_are_throttled_like_real_ones(services):
    """The counts are kept per typed name whether or not an account has it, so throttling
    says nothing about which names exist."""
    clock = Clock()
    for name in ("kasi.grogol", "tidak.ada"):
        for _ in range(auth.PAIR.allowance):
            attempt(services, name, "salah", "10.1.1.1", clock)
    with transaction(services.factory) as session:
        counts = session.execute(
            select(RateLimitCounter.client, RateLimitCounter.count).where(
                RateLimitCounter.bucket == "signin_pair"
            )
        ).all()
    assert sorted(c for _, c in counts) == [5, 5]
    assert all("grogol" not in client and "tidak" not in client for client, _ in counts)


def test_per_address_throttle_covers_every_name(services):
    clock = Clock()
    for i in range(auth.ADDRESS.allowance):
        attempt(services, f"nama{i}", "salah", "10.3.3.3", clock)
    assert not attempt(services, "operator.grogol", DEMO_PASSWORD, "10.3.3.3", clock)
    assert attempt(services, "operator.grogol", DEMO_PASSWORD, "10.4.4.4", clock)


def test_per_name_throttle_spares_an_address_the_account_used_before(services):
    clock = Clock()
    assert attempt(services, "sekdes.grogol", DEMO_PASSWORD, "10.9.9.9", clock)  # the office
    for i in range(auth.NAME.allowance):  # a guesser spread over many addresses
        attempt(services, "sekdes.grogol", f"tebak{i}", f"192.0.2.{i}", clock)
    assert not attempt(services, "sekdes.grogol", DEMO_PASSWORD, "198.51.100.1", clock)
    assert attempt(services, "sekdes.grogol", DEMO_PASSWORD, "10.9.9.9", clock)


# --------------------------------------------------------------------------- the web answer


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_identical_answers_for_unknown_wrong_and_throttled(services):
    app = create_app(services.settings)
    client = TestClient(app, follow_redirects=False)
    token = csrf_of(client.get(f"{P}/masuk").text)

    def post(username: str, password: str):
        started = time.monotonic()
        r = client.post(
            f"{P}/masuk", data={"username": username, "password": password, "csrf": token}
        )
        return r, time.monotonic() - started

    unknown, t_unknown = post("tidak.ada", "salah")
    wrong, t_wrong = post("kasi.grogol", "salah")
    for _ in range(auth.PAIR.allowance - 1):
        post("kasi.grogol", "salah")
    throttled, t_throttled = post("kasi.grogol", DEMO_PASSWORD)  # the right one, throttled
    # A second process sees the same counts (they are in the database).
    other = TestClient(create_app(services.settings), follow_redirects=False)
    other.cookies.update(client.cookies)
    elsewhere = other.post(
        f"{P}/masuk", data={"username": "kasi.grogol", "password": DEMO_PASSWORD, "csrf": token}
    )

    answers = [unknown, wrong, throttled, elsewhere]
    assert {r.status_code for r in answers} == {401}
    assert all(r.headers.get_list("set-cookie") == [] for r in answers)
    assert wrong.text == throttled.text == elsewhere.text
    # The page echoes the typed name; otherwise it is the same page.
    assert unknown.text.replace("tidak.ada", "kasi.grogol") == wrong.text
    assert auth.WRONG in wrong.text
    # Every failure is answered after the same floor, whatever happened inside.
    for elapsed in (t_unknown, t_wrong, t_throttled):
        assert elapsed >= auth.FAILURE_FLOOR


@pytest.mark.parametrize("name", ["kasi.grogol", "tidak.ada"])
def test_every_attempt_costs_one_argon2_check(services, monkeypatch, name):
    """Every attempt runs exactly one argon2 check, whatever the name and the throttle say."""
    calls = []
    real = auth.verify_hash
    monkeypatch.setattr(auth, "verify_hash", lambda h, p: calls.append(h) or real(h, p))
    clock = Clock()
    for _ in range(auth.PAIR.allowance + 2):
        attempt(services, name, "salah", "10.5.5.5", clock)
    assert len(calls) == auth.PAIR.allowance + 2
