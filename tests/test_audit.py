"""The audit trail: every admin action, through the API or the CLI, leaves one entry naming
who did it; `GET /v1/audit` pages through them; API keys with an expiry."""

from __future__ import annotations

import asyncio
import getpass
import json
import shutil
import time
from datetime import UTC, datetime, timedelta

import pytest

from service.app import ensure_admin_key
from service.db import open_engine
from service.modeling.artifacts import MODELS_DIR, shipped_versions
from tests.conftest import free_port, running_server

CLI = f"cli:{getpass.getuser()}"


@pytest.fixture(scope="module")
def server(database_url, tmp_path_factory):
    """The module's server; webhooks may point at this host (nothing listens there)."""
    with running_server(
        database_url, tmp_path_factory, SCORER_WEBHOOK_ALLOW_PRIVATE_TARGETS="true"
    ) as running:
        yield running


def new_key(server, name: str, scopes: str = "admin", *flags: str) -> str:
    return server.scorer(
        "keys", "create", "--name", name, "--scopes", scopes, *flags
    ).stdout.strip()


@pytest.fixture(scope="module")
def admin(server):
    """An admin key of its own name, which the API's entries must name as the actor."""
    return new_key(server, "audit-admin")


def entries(server, action: str, subject: str | None = None) -> list[dict]:
    rows = server.sql(
        "SELECT id, actor, action, subject, details::text AS details FROM audit_log "
        "WHERE action = $1 AND ($2::text IS NULL OR subject = $2) ORDER BY id",
        action,
        subject,
    )
    return [{**dict(row), "details": json.loads(row["details"])} for row in rows]


def only_entry(server, action: str, subject: str | None = None) -> dict:
    found = entries(server, action, subject)
    assert len(found) == 1, f"{action} {subject}: {found}"
    return found[0]


def assert_nowhere_in_audit(server, *secrets: str) -> None:
    rows = server.sql("SELECT actor, action, subject, details::text AS details FROM audit_log")
    dump = json.dumps([dict(row) for row in rows])
    for secret in secrets:
        assert secret not in dump, "a secret reached the audit log"


def test_offer_actions_are_audited_with_the_key_name(server, admin):
    with server.client(admin) as http:
        created = http.post(
            "/v1/offers",
            json={
                "offer_id": "au-1",
                "name": "Ten off",
                "channel": "email",
                "value": 40,
                "cost": 1,
            },
        )
        assert created.status_code == 200, created.text
        taken = http.post(
            "/v1/offers",
            json={"offer_id": "au-1", "name": "Again", "channel": "email", "value": 1, "cost": 1},
        )
        assert taken.status_code == 409
        fields = {"name": "Twelve off", "channel": "email", "value": 40, "cost": "2.5"}
        assert http.put("/v1/offers/au-1", json=fields).status_code == 200
        assert http.put("/v1/offers/au-none", json=fields).status_code == 404
        assert http.delete("/v1/offers/au-1").status_code == 200
        assert http.delete("/v1/offers/au-1").status_code == 404

    entry = only_entry(server, "offer.created", "au-1")
    assert entry["actor"] == "audit-admin"
    assert entry["details"]["name"] == "Ten off" and entry["details"]["channel"] == "email"
    assert entry["details"]["eligible_segments"] is None
    update = only_entry(server, "offer.updated", "au-1")
    assert update["actor"] == "audit-admin"
    # Only what changed, from what to what (money as exact decimals).
    assert update["details"] == {
        "name": {"from": "Ten off", "to": "Twelve off"},
        "cost": {"from": "1.0000", "to": "2.5000"},
    }
    deleted = only_entry(server, "offer.deleted", "au-1")
    assert deleted["actor"] == "audit-admin" and deleted["details"] == {"name": "Twelve off"}
    assert entries(server, "offer.updated", "au-none") == []


def wait_for(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, f"no {what} after {seconds} s"
        time.sleep(0.2)
    return found


def test_webhook_actions_are_audited_without_secrets(server, admin):
    url = f"http://127.0.0.1:{free_port()}/hook"
    with server.client(admin) as http:
        created = http.post("/v1/webhooks", json={"url": url, "description": "crm"})
        assert created.status_code == 200, created.text
        hook = created.json()
        path = f"/v1/webhooks/{hook['id']}"
        patched = http.patch(
            path, json={"description": "crm sync", "event_types": ["tier.changed"]}
        )
        assert patched.status_code == 200, patched.text
        rotated = http.post(f"{path}/rotate-secret", json={"overlap_seconds": 60})
        assert rotated.status_code == 200, rotated.text
        server.sql(
            "INSERT INTO score_changes (seq, type, customer_id, occurred_at, before, after) "
            "VALUES (nextval('score_changes_seq'), 'tier.changed', 'au-c1', now(), NULL, "
            '\'{"pcltv_tier": "high"}\'::jsonb)'
        )
        delivery = wait_for(
            lambda: http.get(f"{path}/deliveries").json()["data"], 15, "delivery fanned out"
        )[0]
        assert http.post(f"{path}/deliveries/{delivery['id']}/redeliver").status_code == 200
        replay = http.post(f"{path}/replay", json={"after": "chg_0"})
        assert replay.status_code == 200, replay.text
        assert http.delete(path).status_code == 200
        assert http.delete(path).status_code == 404

    made = only_entry(server, "webhook.created", hook["id"])
    assert made["actor"] == "audit-admin"
    assert made["details"]["url"] == url and made["details"]["description"] == "crm"
    changed = only_entry(server, "webhook.updated", hook["id"])["details"]
    assert changed == {
        "description": {"from": "crm", "to": "crm sync"},
        "event_types": {"from": hook["event_types"], "to": ["tier.changed"]},
    }
    rotation = only_entry(server, "webhook.secret_rotated", hook["id"])["details"]
    assert rotation == {
        "overlap_seconds": 60,
        "secret_fingerprint": rotated.json()["secret_fingerprint"],
    }
    again = only_entry(server, "webhook.redelivered", hook["id"])["details"]
    assert again == {"delivery_id": delivery["id"], "change_id": delivery["change_id"]}
    replayed = only_entry(server, "webhook.replayed", hook["id"])["details"]
    sent = replay.json()
    assert replayed == {
        "requested": {"after": "chg_0"},
        "after": sent["after"],
        "through": sent["through"],
    }
    assert only_entry(server, "webhook.deleted", hook["id"])["details"] == {"url": url}
    for action in ("webhook.updated", "webhook.secret_rotated", "webhook.replayed"):
        assert only_entry(server, action, hook["id"])["actor"] == "audit-admin"
    assert_nowhere_in_audit(server, created.json()["secret"], rotated.json()["secret"], admin)


def test_key_commands_are_audited_with_the_os_user(server):
    key = new_key(server, "audit-cli-key", "scores:read,events:write", "--expires-in", "30")
    prefix = key[:10]
    entry = only_entry(server, "key.created", prefix)
    assert entry["actor"] == CLI
    details = entry["details"]
    assert details["name"] == "audit-cli-key"
    assert details["scopes"] == ["scores:read", "events:write"]
    expires = datetime.fromisoformat(details["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    server.scorer("keys", "revoke", "audit-cli-key")
    revoked = only_entry(server, "key.revoked", prefix)
    assert revoked["actor"] == CLI and revoked["details"] == {"name": "audit-cli-key"}
    failed = server.scorer("keys", "revoke", "audit-cli-key", check=False)
    assert failed.returncode == 2
    assert len(entries(server, "key.revoked", prefix)) == 1
    assert_nowhere_in_audit(server, key)


def test_source_commands_are_audited_by_fingerprint(server):
    secret = "shpss_audit_secret_value"
    added = server.scorer("sources", "add", "shopify", "--shop", "au.myshopify.com", stdin=secret)
    source_id = added.stdout.strip()
    entry = only_entry(server, "source.added", source_id)
    assert entry["actor"] == CLI
    assert entry["details"]["kind"] == "shopify"
    assert entry["details"]["account"] == "au.myshopify.com"
    assert entry["details"]["fingerprint"].startswith("sha256:")
    server.scorer("sources", "remove", source_id)
    removed = only_entry(server, "source.removed", source_id)
    assert removed["actor"] == CLI and removed["details"] == entry["details"]
    assert_nowhere_in_audit(server, secret)


def test_model_commands_are_audited_with_the_version_replaced(server, tmp_path):
    (active,) = server.sql("SELECT version FROM model_registry WHERE name = 'churn' AND active")
    shipped = shipped_versions()["churn"][-1]
    folder = tmp_path / "churn" / "29990101-000000"
    shutil.copytree(MODELS_DIR / "churn" / shipped, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "version": folder.name}))

    server.scorer("models", "register", str(folder), "--activate")
    registered = only_entry(server, "model.registered", f"churn@{folder.name}")
    assert registered["actor"] == CLI
    assert registered["details"]["version"] == folder.name
    activated = only_entry(server, "model.activated", f"churn@{folder.name}")
    assert activated["actor"] == CLI
    assert activated["details"]["previous_version"] == active["version"]

    server.scorer("models", "activate", "churn", active["version"])  # the rollback
    rollback = entries(server, "model.activated", f"churn@{active['version']}")[-1]
    assert rollback["actor"] == CLI
    assert rollback["details"] == {
        "name": "churn",
        "version": active["version"],
        "previous_version": folder.name,
    }


def test_training_activation_is_audited(server, tmp_path):
    events = tmp_path / "events.ndjson"
    server.scorer(
        "simulate",
        *("--customers", "300", "--days", "400", "--seed", "3", "--start", "2025-01-01"),
        *("--out", str(events), "--quiet"),
    )
    server.scorer("import", str(events))
    before = {
        row["name"]: row["version"]
        for row in server.sql("SELECT name, version FROM model_registry WHERE active")
    }
    output = server.scorer("train", "--models-dir", str(tmp_path / "models")).stdout
    trained = [line.split()[:2] for line in output.splitlines() if " -> " in line]
    assert {name for name, _ in trained} >= {"churn", "pcltv", "segment"}
    for name, version in trained:
        assert only_entry(server, "model.registered", f"{name}@{version}")["actor"] == CLI
        activated = only_entry(server, "model.activated", f"{name}@{version}")
        assert activated["actor"] == CLI
        assert activated["details"]["previous_version"] == before.get(name)


def test_the_bootstrap_key_is_audited_only_when_it_changes(server):
    bootstrap = only_entry(server, "key.ensured", server.admin_key[:10])
    assert bootstrap["actor"] == "system"
    assert bootstrap["details"] == {"name": "bootstrap", "scopes": ["admin"]}

    key = "cs_audit_ensured_" + "x" * 20

    async def ensure() -> None:
        async with open_engine(server.database_url) as engine, engine.begin() as conn:
            await ensure_admin_key(conn, key, "ensured", "system")

    asyncio.run(ensure())
    asyncio.run(ensure())  # unchanged: nothing to record
    assert len(entries(server, "key.ensured", key[:10])) == 1
    server.sql("UPDATE api_keys SET revoked_at = now() WHERE name = 'ensured'")
    asyncio.run(ensure())
    assert len(entries(server, "key.ensured", key[:10])) == 2
    assert_nowhere_in_audit(server, key, server.admin_key)


def test_the_shipped_models_activated_at_start_are_audited(server):
    """A fresh database has no active model: the server activates the shipped ones, as
    `system`, once each (the module's later activations come from commands)."""
    started = [e for e in entries(server, "model.activated") if e["actor"] == "system"]
    assert {e["details"]["name"] for e in started} >= {"churn", "pcltv", "segment"}
    assert all(e["details"]["previous_version"] is None for e in started)
    assert len(started) == len({e["details"]["name"] for e in started})


def test_the_listing_pages_and_filters(server):
    pager = new_key(server, "audit-pager")
    with server.client(pager) as http:
        for n in range(12):
            offer = {"offer_id": f"au-page-{n}", "name": "Page", "channel": "email"}
            answer = http.post("/v1/offers", json={**offer, "value": 1, "cost": 0})
            assert answer.status_code == 200, answer.text
        seen, cursor, pages = [], None, 0
        while True:
            params = {"actor": "audit-pager", "limit": 5, **({"after": cursor} if cursor else {})}
            page = http.get("/v1/audit", params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            seen += body["data"]
            cursor, pages = body["next_cursor"], pages + 1
            if not body["has_more"]:
                break
        assert pages == 3
        ids = [entry["id"] for entry in seen]
        assert ids == sorted(set(ids)), "no entry twice, oldest first"
        expected = server.sql("SELECT id FROM audit_log WHERE actor = 'audit-pager' ORDER BY id")
        assert ids == [row["id"] for row in expected]
        assert [entry["subject"] for entry in seen] == [f"au-page-{n}" for n in range(12)]
        assert {(entry["actor"], entry["action"]) for entry in seen} == {
            ("audit-pager", "offer.created")
        }
        assert seen[0]["details"]["name"] == "Page"

        # The last page's cursor stays put: nothing new, nothing repeated.
        tail = http.get("/v1/audit", params={"actor": "audit-pager", "after": cursor}).json()
        assert tail == {"data": [], "next_cursor": cursor, "has_more": False}

        cut = seen[6]["at"]
        since = http.get("/v1/audit", params={"actor": "audit-pager", "since": cut}).json()
        assert [e["id"] for e in since["data"]] == ids[6:]
        until = http.get("/v1/audit", params={"actor": "audit-pager", "until": cut}).json()
        assert [e["id"] for e in until["data"]] == ids[:6]
        created = http.get("/v1/audit", params={"action": "key.created", "limit": 1000}).json()
        assert created["data"] and {e["action"] for e in created["data"]} == {"key.created"}
        assert "audit-pager" in {e["details"]["name"] for e in created["data"]}
        nobody = http.get("/v1/audit", params={"actor": "nobody"}).json()
        assert nobody == {"data": [], "next_cursor": None, "has_more": False}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": 1001}, "query.limit"),
        ({"since": "yesterday"}, "query.since"),
        ({"until": "2026-01-01T00:00:00"}, "query.until"),
        ({"after": "abc"}, "query.after"),
    ],
)
def test_bad_parameters_name_the_field(server, admin, params, field):
    with server.client(admin) as http:
        answer = http.get("/v1/audit", params=params)
    assert answer.status_code == 422, answer.text
    assert field in {error["field"] for error in answer.json()["errors"]}


def test_only_admins_read_the_trail(server):
    reader = new_key(server, "audit-reader", "scores:read")
    with server.client(reader) as http:
        answer = http.get("/v1/audit")
    assert answer.status_code == 403 and "'admin' scope" in answer.json()["detail"]
    with server.client() as anonymous:
        assert anonymous.get("/v1/audit").status_code == 401


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_the_cli_refuses_an_expiry_in_the_past_or_two_of_them(server):
    base = ("keys", "create", "--name", "audit-past", "--scopes", "scores:read")
    past = server.scorer(*base, "--expires-at", "2020-01-01", check=False)
    assert "--expires-at 2020-01-01 is in the past" in one_line_error(past)
    stamp = server.scorer(*base, "--expires-at", "2020-01-01T00:00:00Z", check=False)
    assert "in the past" in one_line_error(stamp)
    both = server.scorer(*base, "--expires-in", "3", "--expires-at", "2999-01-01", check=False)
    assert "not both" in one_line_error(both)
    assert server.sql("SELECT 1 FROM api_keys WHERE name = 'audit-past'") == []
    assert all(e["details"]["name"] != "audit-past" for e in entries(server, "key.created"))


def expired_detail(expires_at: datetime) -> str:
    return (
        f"API key expired on {expires_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}; "
        "create a new one with scorer keys create"
    )


def test_an_expired_key_is_refused_and_listed_as_expired(server):
    key = new_key(server, "audit-expiring", "scores:read", "--expires-at", "2999-01-31")
    with server.client(key) as http:
        assert http.get("/v1/customers/none").status_code == 404
        server.sql(
            "UPDATE api_keys SET expires_at = now() - interval '1 day' WHERE name = $1",
            "audit-expiring",
        )
        (expires_at,) = [
            row["expires_at"]
            for row in server.sql("SELECT expires_at FROM api_keys WHERE name = 'audit-expiring'")
        ]
        # The server's key cache holds an answer for at most 5 seconds.
        refused = wait_for(
            lambda: (answer := http.get("/v1/customers/none")).status_code == 401 and answer,
            10,
            "401 for the expired key",
        )
    assert refused.json()["detail"] == expired_detail(expires_at)
    listing = server.scorer("keys", "list").stdout
    (line,) = [line for line in listing.splitlines() if "\taudit-expiring\t" in line]
    assert line.endswith(f"expired {expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC")


def test_an_expiry_takes_effect_on_time_though_the_key_is_cached(server):
    expires_at = (datetime.now(UTC) + timedelta(seconds=8)).replace(microsecond=0)
    key = new_key(server, "audit-soon", "scores:read", "--expires-at", expires_at.isoformat())
    with server.client(key) as http:
        assert http.get("/v1/customers/none").status_code == 404
        refused = wait_for(
            lambda: (answer := http.get("/v1/customers/none")).status_code == 401 and answer,
            15,
            "401 once the key expired",
        )
        late = datetime.now(UTC) - expires_at
    assert late < timedelta(seconds=1.5), f"refused {late} after its expiry"
    assert refused.json()["detail"] == expired_detail(expires_at)


def test_keys_without_expiry_never_expire(server, admin):
    listing = server.scorer("keys", "list").stdout
    (line,) = [line for line in listing.splitlines() if "\taudit-admin\t" in line]
    assert line.endswith("\tno expiry\tactive")
    with server.client(admin) as http:
        assert http.get("/v1/audit", params={"limit": 1}).status_code == 200


def test_an_admin_route_that_names_its_actor_checks_the_key_once(server):
    # The router's guard and the route's actor are one dependency: one rate-limit token.
    key = new_key(server, "audit-limited", "admin", "--rate-limit", "1")  # bursts of 2
    with server.client(key) as http:
        answers = [http.delete("/v1/offers/au-unknown").status_code for _ in range(3)]
    assert answers == [404, 404, 429]
