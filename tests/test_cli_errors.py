"""Bad `scorer` invocations end in one line naming the problem and the fix, exit status 2,
never a traceback; the bulk paths count honestly and write a rejects file only for rejects.

Each case runs the installed `scorer` as a subprocess against a real database: one with
a short simulated history (60 days, 200 customers), or an empty one.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import SCORER, free_port, fresh_database, run_sql, wait_ready

ERROR_LINE = re.compile(r"^(error|scorer( [\w-]+)*: error): \S")


@dataclass
class Place:
    """The databases and files the cases refer to as {short}, {empty}, {dir}, ..."""

    short: str
    empty: str
    dir: Path


def run(args: list[str], database_url: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SCORER, *args],
        env={**os.environ, "DATABASE_URL": database_url, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Iterator[Place]:
    folder = tmp_path_factory.mktemp("cli-errors")
    events = folder / "short.ndjson"
    with fresh_database() as short, fresh_database() as empty:
        simulate = ["simulate", "--customers", "200", "--days", "60", "--out", str(events)]
        assert run([*simulate, "--quiet"], short).returncode == 0
        imported = run(["import", str(events)], short)
        assert imported.returncode == 0, imported.stderr[-2000:]
        (folder / "rejected.ndjson").write_text('{not json\n{"type": "identify"}\n')
        (folder / "broken-model").mkdir()
        (folder / "broken-model" / "manifest.json").write_text("{")
        yield Place(short, empty, folder)


def _missing_database(url: str) -> str:
    return make_url(url).set(database="scorer_no_such_db").render_as_string(hide_password=False)


# (arguments, which database, extra environment, fragments the error line must contain)
BAD_INVOCATIONS = [
    ("keys list", "closed-port", {}, ["cannot reach PostgreSQL", "DATABASE_URL"]),
    ("migrate", "missing-database", {}, ["scorer_no_such_db", "does not exist", "createdb"]),
    ("keys list", "not-a-url", {}, ["DATABASE_URL is not a postgresql:// URL"]),
    ("keys list", "short", {"SCORER_TIMEZONE": "Mars/Base"}, ["SCORER_TIMEZONE", "IANA"]),
    ("keys list", "short", {"SCORER_PORT": "eighty"}, ["SCORER_PORT", "integer"]),
    ("import {dir}/nope.ndjson", "short", {}, ["no such file", "nope.ndjson"]),
    ("import {dir}/rejected.ndjson", "short", {}, ["none of the 2 lines", "rejects.ndjson"]),
    ("import {dir}/short.ndjson --batch-size 0", "short", {}, ["--batch-size", "1 or more"]),
    ("evaluate --truth {dir}/nope.csv", "short", {}, ["--truth", "no such file", "simulate"]),
    ("evaluate --truth {dir}/short.ndjson", "short", {}, ["customer_id", "not a truth file"]),
    ("evaluate --truth {dir}/short.truth.csv --as-of 2020-01-01", "short", {}, ["--as-of"]),
    ("backtest --transactions {dir}/nope.csv --cutoff 2025-02-01", "short", {}, ["no such"]),
    ("backtest --transactions {dir}/short.ndjson --cutoff soon", "short", {}, ["--cutoff"]),
    ("models register {dir}/nope", "short", {}, ["no model folder", "manifest.json"]),
    ("models register {dir}/broken-model", "short", {}, ["no valid model artifact"]),
    ("models activate churn 19990101-000000", "short", {}, ["no registered churn", "list"]),
    ("models activate forest 1", "short", {}, ["invalid choice", "churn"]),
    ("keys create --name ops --scopes admin,root", "short", {}, ["unknown scope", "root"]),
    ("keys revoke nobody", "short", {}, ["no active key", "keys list"]),
    ("train --as-of 1997-12-29T23:59:59Z", "short", {}, ["1997-12-29", "before the first"]),
    ("train --as-of 2030-01-01", "short", {}, ["after the newest event day 2025-03-01"]),
    ("train --as-of 2025-13-45", "short", {}, ["--as-of", "month must be in 1..12"]),
    ("train --as-of 2025-02-01T00:00:00", "short", {}, ["--as-of", "timezone"]),
    ("train --churn-horizon-days 0", "short", {}, ["--churn-horizon-days", "1 or more"]),
    ("train", "empty", {}, ["no events", "scorer import"]),
    ("rescore --all --as-of garbage", "short", {}, ["--as-of", "RFC 3339"]),
    ("rescore --all", "empty", {}, ["no events", "scorer import"]),
    ("features recompute --customer nobody", "short", {}, ["no events for customer 'nobody'"]),
    ("stop-db", "short", {}, ["only the embedded PostgreSQL"]),
    ("simulate --customers 5 --days 10 --out {dir}/x.ndjson --late-rate 2", "short", {}, ["late"]),
    ("", "short", {}, ["required: command"]),
]


def _database(place: Place, which: str) -> str:
    if which == "closed-port":
        return f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    if which == "missing-database":
        return _missing_database(place.short)
    if which == "not-a-url":
        return "not a url"
    return {"short": place.short, "empty": place.empty}[which]


@pytest.mark.parametrize(
    ("arguments", "database", "env", "fragments"),
    BAD_INVOCATIONS,
    ids=[
        f"{args or '(none)'} [{db}{' ' + ','.join(env) if env else ''}]"
        for args, db, env, _ in BAD_INVOCATIONS
    ],
)
def test_bad_invocation_is_one_line_naming_problem_and_fix(
    place: Place, arguments: str, database: str, env: dict, fragments: list[str]
):
    args = shlex.split(arguments.format(dir=place.dir))
    result = run(args, _database(place, database), **env)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    last = lines[-1]
    assert ERROR_LINE.match(last), result.stderr[-3000:]
    assert sum(bool(ERROR_LINE.match(line)) for line in lines) == 1, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in last, last


def test_import_of_only_rejected_lines_writes_them_and_fails(place: Place):
    path = place.dir / "all-bad.csv"
    path.write_text("customer_id,occurred_at,amount\nc-x,not-a-date,5\nc-y,2025-02-01,-1\n")
    result = run(["import", str(path)], place.short)
    assert result.returncode == 2
    assert "accepted 0, duplicates 0, rejected 2" in result.stdout
    rejects = path.with_name("all-bad.csv.rejects.ndjson")
    assert [json.loads(line)["line"] for line in rejects.open()] == [2, 3]


def test_a_clean_import_writes_no_rejects_file_and_removes_a_stale_one(place: Place):
    path = place.dir / "good.csv"
    rejects = path.with_name("good.csv.rejects.ndjson")
    rejects.write_text('{"line": 9, "error": "from an earlier run"}\n')
    # Inside the short history's span, so the other cases' days stay what they expect.
    path.write_text("customer_id,occurred_at,amount\ncli-good-1,2025-02-01,12.50\n")
    result = run(["import", str(path)], place.short)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "accepted 1, duplicates 0, rejected 0" in result.stdout
    assert "details" not in result.stdout
    assert not rejects.exists()
    again = run(["import", str(path)], place.short)
    assert again.returncode == 0 and "accepted 0, duplicates 1" in again.stdout


def test_counts_and_the_default_day_are_honest(place: Place):
    assert "recomputed features of 1 customer(s)" in (
        run(["features", "recompute", "--customer", "c000001"], place.short).stdout
    )
    newest = run_sql(place.short, "SELECT max(day) AS day FROM events")[0]["day"]
    rescored = run(["rescore", "--customer", "c000001"], place.short)
    assert "rescored 1 customer(s)" in rescored.stdout, rescored.stderr
    assert f"as of {newest}" in rescored.stdout
    at_noon = run(["rescore", "--all", "--as-of", f"{newest}T12:00:00+00:00"], place.short)
    assert f"as of {newest}" in at_noon.stdout, at_noon.stderr


def _analysed(url: str, tables: tuple[str, ...]) -> set[str]:
    rows = run_sql(
        url,
        "SELECT relname FROM pg_stat_user_tables "
        "WHERE last_analyze IS NOT NULL AND relname = ANY($1::text[])",
        list(tables),
    )
    return {row["relname"] for row in rows}


def test_bulk_paths_leave_the_tables_analysed(place: Place):
    derived = ("customer_daily", "orders", "customer_facts", "customers")
    path = place.dir / "analysed.csv"
    path.write_text("customer_id,occurred_at,amount\ncli-analysed,2025-02-02,3\n")
    run_sql(place.short, "SELECT pg_stat_reset()")
    assert run(["import", str(path)], place.short).returncode == 0
    assert _analysed(place.short, ("events", *derived)) == {"events", *derived}
    run_sql(place.short, "SELECT pg_stat_reset()")
    assert run(["features", "recompute"], place.short).returncode == 0
    assert _analysed(place.short, derived) == set(derived)


def test_version_and_debug():
    assert run(["--version"], "unused").stdout.strip() == f"scorer {version('customer-scorer')}"
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    debug = run(["--debug", "keys", "list"], closed)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def _embedded_running(data_dir: Path) -> bool:
    pid_file = data_dir / "pg" / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except ProcessLookupError:
        return False
    return True


def test_demo_stops_its_embedded_postgres(tmp_path: Path):
    env = {**os.environ, "SCORER_DATA_DIR": str(tmp_path / "data")}
    env.pop("DATABASE_URL", None)
    port, log = free_port(), tmp_path / "demo.log"
    demo = subprocess.Popen(
        [SCORER, "demo", "--customers", "20", "--port", str(port)],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    wait_ready(f"http://127.0.0.1:{port}", demo, log, seconds=300)
    assert _embedded_running(tmp_path / "data"), log.read_text()[-3000:]
    # The commands the demo suggests work as printed.
    suggested = re.findall(
        r"curl -H 'Authorization: Bearer (\S+)' '?(http\S+?)'?(?:\s|$)", log.read_text()
    )
    assert len(suggested) == 2, log.read_text()[-3000:]
    for key, url in suggested:
        answer = httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert answer.status_code == 200, (url, answer.text)
    demo.send_signal(signal.SIGTERM)
    demo.wait(timeout=120)
    assert "stopped the embedded PostgreSQL" in log.read_text(), log.read_text()[-3000:]
    assert not _embedded_running(tmp_path / "data")
    again = subprocess.run([SCORER, "stop-db"], env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "is not running" in again.stdout
