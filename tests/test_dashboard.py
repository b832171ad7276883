"""The /dashboard page in a real browser (Debian's Chromium, driven by Playwright) against a
real server holding simulated customers: every view shows exactly the insights API's numbers,
rounded by the page's one rule (docs/dashboard.md), with no console error; the key lives in
session storage only; a refused key is told. Each view's screenshot goes to docs/dashboard/."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import ROOT, Server
from tests.webhook_receiver import wait_until

CHROMIUM = "/usr/bin/chromium"
# The machine's network is closed: nothing may try to reach out, or wait for it.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = ROOT / "docs" / "dashboard"
KEY_STORAGE = "scorer-api-key"
TODAY = datetime.now(UTC).date()


def chromium() -> str:
    """Debian's Chromium, installed from its package when missing (never a downloaded build)."""
    if not os.path.exists(CHROMIUM):
        if os.geteuid() != 0:
            pytest.fail("chromium is not installed: apt-get install chromium")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True)
    return shutil.which("chromium") or CHROMIUM


@pytest.fixture(scope="module")
def browser(world: str) -> Iterator[Browser]:
    """Started after the world is built and stopped before the server: Playwright's sync API
    keeps an event loop running, in which the fixtures' own asyncio database calls cannot run."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    """A fresh tab on the dashboard whose console errors and uncaught exceptions fail the test."""
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.problems = problems
    tab.goto("/dashboard")
    try:
        yield tab
    finally:
        context.close()


def errors_of(tab: Page, *statuses: int) -> list[str]:
    """The tab's console errors and exceptions, less Chromium's note on the answers of
    `statuses` (a refused key's 401 is expected, the page then says so itself)."""
    expected = [f"the server responded with a status of {status}" for status in statuses]
    return [text for text in tab.problems if not any(e in text for e in expected)]


@pytest.fixture(scope="module")
def world(server: Server, tmp_path_factory) -> str:
    """Simulated customers, scored twice (a week apart, so some change segment), two offers
    decided for each customer with some accepted, and today's snapshots; a read-only key."""
    folder = tmp_path_factory.mktemp("world")
    events = folder / "events.ndjson"
    start = TODAY - timedelta(days=420)
    server.scorer(
        "simulate",
        *("--customers", "300", "--days", "420", "--seed", "5", "--start", start.isoformat()),
        *("--out", str(events), "--quiet"),
    )
    server.scorer("import", str(events))
    week_ago = (TODAY - timedelta(days=7)).isoformat()
    server.scorer("rescore", "--all", "--as-of", week_ago)
    server.scorer("rescore", "--all")
    with server.client(server.admin_key) as admin:
        decide_offers(server, admin)
        snapshot = admin.post("/v1/insights/snapshots")
        assert snapshot.status_code == 200, snapshot.text
        for alert in (
            {
                "name": "churn risk",
                "metric": "churn_band_share",
                "operator": "above",
                "threshold": 0.4,
            },
            {
                "name": "champions",
                "metric": "segment_share",
                "subject": "Champions",
                "operator": "below",
                "threshold": 0.05,
            },
        ):
            made = admin.post("/v1/insights/alerts", json=alert)
            assert made.status_code == 200, made.text
    settled(server)
    return server.scorer(
        "keys", "create", "--name", "dashboard", "--scopes", "scores:read"
    ).stdout.strip()


def decide_offers(server: Server, admin: httpx.Client) -> None:
    for offer_id, channel, value in (("welcome", "email", "20.00"), ("vip", "email", "80.00")):
        body = {"offer_id": offer_id, "name": offer_id, "channel": channel, "value": value}
        assert admin.post("/v1/offers", json={**body, "cost": 0.1}).status_code == 200
    customers = [row[0] for row in server.sql("SELECT customer_id FROM customers LIMIT 120")]
    accepted = []
    for n, customer in enumerate(customers):
        offer = admin.get(f"/v1/customers/{customer}/scores").json()["next_best_offer"]
        if offer and n % 3 == 0:
            accepted.append(
                {
                    "event_id": f"dash-accept-{n}",
                    "customer_id": customer,
                    "type": "offer_accepted",
                    "occurred_at": datetime.now(UTC).isoformat(),
                    "properties": {"decision_id": offer["decision_id"]},
                }
            )
    if accepted:
        assert admin.post("/v1/events", json={"events": accepted}).status_code in (200, 202)


def settled(server: Server) -> None:
    """Until the scoring loop has nothing left: the page and the test must read the same."""
    wait_until(lambda: not server.sql("SELECT 1 FROM score_outbox LIMIT 1"), 60, "scoring")


# --- the page's rounding rule, as docs/dashboard.md states it ---------------------------------

PLACES = {"money": Decimal("0.01"), "decimal": Decimal("0.001"), "percent": Decimal("0.1")}


def shown(value, kind: str) -> str:
    """en-US grouping, rounded half away from zero on the number's shortest decimal form
    (its JSON text: 2.675 is 2.675 here, not the binary 2.67499…)."""
    if value is None:
        return "—"
    if kind == "count":
        return f"{value:,}"
    exact = Decimal(repr(float(value))) * (100 if kind == "percent" else 1)
    text = f"{exact.quantize(PLACES[kind], rounding=ROUND_HALF_UP):,}"
    return text + "%" if kind == "percent" else text


def test_the_rounding_rule_rounds_halves_away_from_zero_and_groups_thousands():
    assert shown(1234567.125, "money") == "1,234,567.13"
    assert shown(-0.125, "money") == "-0.13"
    assert shown(2.675, "money") == "2.68"  # the binary value is a little below 2.675
    assert shown(0.1, "money") == "0.10"
    assert shown(0.12345, "percent") == "12.3%"
    assert shown(0.0005, "decimal") == "0.001"
    assert shown(12345, "count") == "12,345"


def test_the_page_rounds_by_the_same_rule(page: Page):
    values = [1234567.125, -0.125, 0.1, 0.12345, 0.0005, 2.675, 1e-9, 0.045]
    for kind in ("money", "decimal", "percent"):
        texts = page.evaluate("([values, kind]) => values.map((v) => fmt(v, kind))", [values, kind])
        assert texts == [shown(value, kind) for value in values], kind


# --- what each view must show -------------------------------------------------------------


def share_rows(prefix: str, groups: list[dict], total: int) -> dict[str, str]:
    shown_ = {f"{prefix}.total.customers": shown(total, "count")}
    for group in groups:
        shown_[f"{prefix}.{group['name']}.customers"] = shown(group["customers"], "count")
        shown_[f"{prefix}.{group['name']}.share"] = shown(group["share"], "percent")
    return shown_


def equity(api: httpx.Client) -> dict[str, str]:
    expected = {}
    for by in ("tier", "segment"):
        body = api.get("/v1/insights/equity", params={"by": by}).json()
        for group in [*body["groups"], body["total"]]:
            for field, kind in (("customers", "count"), ("pcltv", "money"), ("historic", "money")):
                expected[f"equity.{by}.{group['name']}.{field}"] = shown(group[field], kind)
    return expected


def segments(api: httpx.Client) -> dict[str, str]:
    live = api.get("/v1/insights/distribution").json()
    expected = share_rows("segments.size", live["segments"], live["customers"])
    trends = api.get("/v1/insights/trends", params={"days": 90})
    if trends.status_code == 200:
        for day in trends.json()["days"]:
            for segment in day["segments"]:
                key = f"segments.trend.{day['day']}.{segment['name']}"
                expected[key] = shown(segment["customers"], "count")
    return expected


def flows(api: httpx.Client) -> dict[str, str]:
    body = api.get("/v1/insights/movements", params={"by": "segment", "days": 7}).json()
    expected = {"flows.moved": shown(body["moved"], "count")}
    for cell in body["cells"]:
        start = cell["from"] or "(new)"  # first scored within the period
        expected[f"flows.{start}.{cell['to']}"] = shown(cell["customers"], "count")
    return expected


def distributions(api: httpx.Client) -> dict[str, str]:
    body = api.get("/v1/insights/distribution").json()
    return {
        **share_rows("distributions.tiers", body["tiers"], body["customers"]),
        **share_rows("distributions.churn_bands", body["churn_bands"], body["customers"]),
    }


def cohorts(api: httpx.Client) -> dict[str, str]:
    expected = {}
    for cohort in api.get("/v1/insights/cohorts", params={"months": 12}).json()["cohorts"]:
        month = cohort["month"]
        expected[f"cohorts.{month}.customers"] = shown(cohort["customers"], "count")
        expected[f"cohorts.{month}.revenue"] = shown(cohort["revenue"], "money")
        for m in cohort["months"]:
            expected[f"cohorts.{month}.m{m['months_since']}"] = shown(m["share"], "percent")
    return expected


def offers(api: httpx.Client) -> dict[str, str]:
    body = api.get("/v1/insights/offers", params={"days": 30, "outcome_days": 30}).json()
    expected = {}
    for offer in body["offers"]:
        prefix = f"offers.acceptance.{offer['offer_id']}"
        expected[f"{prefix}.shown"] = shown(offer["shown"], "count")
        expected[f"{prefix}.accepted"] = shown(offer["accepted"], "count")
        expected[f"{prefix}.rate"] = shown(offer["acceptance_rate"], "percent")
        for end in ("low", "high"):
            expected[f"{prefix}.{end}"] = shown(offer["acceptance_ci95"][end], "percent")
    kinds = {"orders_per_decision": "decimal", "revenue_per_decision": "money"}
    for name, uplift in (body["uplift"] or {}).items():
        numbers = {**uplift, "ci95_low": uplift["ci95"]["low"], "ci95_high": uplift["ci95"]["high"]}
        for field in ("treatment_mean", "control_mean", "uplift", "ci95_low", "ci95_high"):
            expected[f"offers.uplift.{name}.{field}"] = shown(numbers[field], kinds[name])
    return expected


def model_health(api: httpx.Client) -> dict[str, str]:
    body = api.get("/v1/insights/model-health").json()
    expected = {}
    for i, point in enumerate((body["calibration"] or {}).get("bins", [])):
        expected[f"model-health.calibration.{i}.customers"] = shown(point["customers"], "count")
        for field in ("predicted", "observed"):
            expected[f"model-health.calibration.{i}.{field}"] = shown(point[field], "decimal")
    for part in ("features", "predictions"):
        for item in (body["drift"] or {}).get(part, []):
            key = f"model-health.drift.{part}.{item['model']}.{item['name']}.psi"
            expected[key] = shown(item["psi"], "decimal")
    return expected


def alerts(api: httpx.Client) -> dict[str, str]:
    body = api.get("/v1/insights/alerts").json()
    listed = body["data"]
    return {
        f"alerts.{alert['alert_id']}.threshold": shown(alert["threshold"], "decimal")
        for alert in listed
    }


# Each view and the numbers it must show, read from the insights API.
VIEWS = {
    "equity": equity,
    "segments": segments,
    "flows": flows,
    "distributions": distributions,
    "cohorts": cohorts,
    "offers": offers,
    "model-health": model_health,
    "alerts": alerts,
}


def enter_key(tab: Page, key: str) -> None:
    tab.fill("#api-key", key)
    tab.click("#key-form button[type=submit]")


def open_view(tab: Page, view: str) -> str:
    """Click the view's tab; its state once loaded: ready, unavailable or error."""
    tab.click(f"nav a[data-view='{view}']")
    section = f"#view-{view}"
    tab.wait_for_selector(f"{section}[data-state]:not([data-state='loading'])")
    return tab.get_attribute(section, "data-state")


def shown_metrics(tab: Page, view: str) -> dict[str, str]:
    return tab.eval_on_selector_all(
        f"#view-{view} [data-metric]",
        "nodes => Object.fromEntries(nodes.map((n) => [n.dataset.metric, n.textContent]))",
    )


def test_every_view_shows_the_api_numbers(page: Page, server: Server, world: str):
    enter_key(page, world)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with server.client(world) as api:
        for view, expected in VIEWS.items():
            state = open_view(page, view)
            assert state == "ready", (view, page.inner_text(f"#view-{view}"))
            numbers = expected(api)
            assert numbers, f"{view}: the simulated world left nothing to show"
            assert shown_metrics(page, view) == numbers, view
            page.screenshot(path=SHOTS / f"{view}.png", full_page=True)
    assert errors_of(page) == []
    assert page.evaluate(f"sessionStorage.getItem('{KEY_STORAGE}')") == world
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []


def test_a_refused_key_is_told_and_not_kept(page: Page):
    enter_key(page, "cs_not_a_key")
    page.wait_for_selector("#auth-error:not([hidden])")
    assert "refused (401)" in page.inner_text("#auth-error")
    assert page.is_visible("#api-key")
    assert page.evaluate(f"sessionStorage.getItem('{KEY_STORAGE}')") is None
    assert page.evaluate("localStorage.length") == 0
    page.screenshot(path=SHOTS / "refused-key.png")
    assert errors_of(page, 401) == []


def test_a_key_without_the_scope_is_told_which_scope(page: Page, server: Server):
    key = server.scorer(
        "keys", "create", "--name", "dashboard-events", "--scopes", "events:write"
    ).stdout.strip()
    enter_key(page, key)
    page.wait_for_selector("#auth-error:not([hidden])")
    message = page.inner_text("#auth-error")
    assert "(403)" in message and "scores:read" in message
    assert errors_of(page, 403) == []


def test_the_page_and_its_assets_come_from_the_service(server: Server):
    page = httpx.get(f"{server.url}/dashboard", timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "connect-src 'self'" in policy
    for asset in ("chart.umd.js", "chart.js.LICENSE.md", "dashboard.js", "dashboard.css"):
        answer = httpx.get(f"{server.url}/dashboard/static/{asset}", timeout=30)
        assert answer.status_code == 200 and answer.content, asset
    assert "Chart.js v4." in httpx.get(f"{server.url}/dashboard/static/chart.umd.js").text[:200]
