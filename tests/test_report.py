"""smtpguard report: the audit-to-enforce step made concrete. Audit runs of careless
programs against the suite's servers are logged; the report groups them and proposes
sections; once added, the same runs pass in enforce mode, and the servers that really
are misconfigured stay refused."""
import json
import re
import sys
from pathlib import Path

import pytest

from lib import devlog
from lib.constants import PASSWORD, USER
from lib.runner import CLIENTS, REPO, describe, run

REPORT = REPO / "scripts" / "smtpguard-report"

# (cert, tls, name the program uses, fixable by policy, check)
RUNS = [
    ("selfsigned", "modern", "localhost", True, "chain"),
    ("wronghost", "modern", "127.0.0.1", True, "hostname"),     # reached by address
    ("wronghost", "modern", "localhost", False, "hostname"),    # the name is wrong
    ("expired", "modern", "localhost", False, "chain"),
    ("good", "old", "localhost", False, "protocol"),
]


@pytest.fixture
def fleet(smtp_server):
    servers = [smtp_server(cert, "starttls", tls) for cert, tls, *_ in RUNS]
    ports = sorted({s.port for s in servers})

    def argv(i):
        style = "tls10_max" if RUNS[i][1] == "old" else "verify_none"
        return [CLIENTS / "careless", style, RUNS[i][2], servers[i].port, "starttls"]
    return servers, ports, argv


def delivered(server):
    return (USER, PASSWORD, True) in server.credentials()


def report(*args, input=None):
    res = run([sys.executable, REPORT, *map(str, args)], {}, input=input, timeout=120)
    assert res.returncode == 0, describe(res)
    return res


def test_report_sections_make_enforce_pass(fleet, shim, tmp_path):
    servers, ports, argv = fleet
    audit = shim(ports, mode="audit")
    for i in range(len(RUNS)):                        # audit: everything goes through
        res = run(argv(i), audit)
        assert res.returncode == 0 and delivered(servers[i]), describe(res)
    got = json.loads(report(audit.log_path, "--fetch", tmp_path / "anchors", "--json").stdout)
    groups = {(g["host"], g["port"], g["check"]): g for g in got["groups"]}
    assert len(groups) == len(RUNS), got
    for i, (cert, tls, name, fixable, check) in enumerate(RUNS):
        g = groups[(name, servers[i].port, check)]
        assert g["count"] == 1 and g["exe"] == str(CLIENTS / "careless"), g
        assert g["proposal"]["kind"] == ("section" if fixable else "server"), g
    text = report(audit.log_path, "--fetch", tmp_path / "anchors").stdout
    assert "the server really is misconfigured" in text, text
    sections = report(audit.log_path, "--fetch", tmp_path / "anchors", "--sections").stdout
    assert "ca_file = " in sections and "verify_name = wrong.example.net" in sections, sections

    before = [len(s.credentials()) for s in servers]
    enforce = shim(ports, mode="enforce")
    for i in range(len(RUNS)):                        # enforce without the sections: refused
        assert run(argv(i), enforce).returncode != 0
    assert [len(s.credentials()) for s in servers] == before
    fixed = shim(ports, mode="enforce", extra=sections)
    for i, (*_, fixable, check) in enumerate(RUNS):   # with them: the fixable ones deliver
        res = run(argv(i), fixed)
        if fixable:
            assert res.returncode == 0 and len(servers[i].credentials()) == before[i] + 1, \
                describe(res) + "\n" + fixed.log()
        else:
            assert res.returncode != 0 and len(servers[i].credentials()) == before[i], describe(res)


def groups_of(res):
    return sorted((g["host"], g["port"], g["check"], g["count"])
                  for g in json.loads(res.stdout)["groups"])


def test_report_reads_every_format(fleet, shim, tmp_path):
    """The same audit lines as a text file, JSON lines on standard input, lines collected
    by a syslog server (time and host name in front) and journald export records."""
    servers, ports, argv = fleet
    runs = range(len(RUNS))
    text_env = shim(ports, mode="audit")
    for i in runs:
        run(argv(i), text_env)
    want = groups_of(report(text_env.log_path, "--json"))
    assert len(want) == len(RUNS), want

    json_env = shim(ports, mode="audit", extra="log_format = json")
    Path(json_env.log_path).write_text("")           # the same file: start it afresh
    for i in runs:
        run(argv(i), json_env)
    assert groups_of(report("--json", input=Path(json_env.log_path).read_text())) == want

    syslog_env = shim(ports, mode="audit")
    policy = Path(syslog_env.policy_path)
    policy.write_text(policy.read_text().replace(f"log = file:{syslog_env.log_path}", "log = syslog"))
    collected, export = [], []
    for i in runs:
        got = devlog.record(tmp_path, "syslog", argv(i), syslog_env)
        for d in got["datagrams"]:   # as rsyslog stores it: the sender's host name after the time
            m = re.match(r"<\d+>(\w{3} [ \d]\d \d\d:\d\d:\d\d) (.*)", d, re.S)
            collected.append(f"{m.group(1)} mail{i} {m.group(2)}")
        got = devlog.record(tmp_path, "journal", argv(i), syslog_env)
        for d in got["datagrams"]:
            export.append(f"__CURSOR=s={i}\n_HOSTNAME=relay{i}\n{d}\n")
    res = report("--json", input="\n".join(collected) + "\n")
    assert groups_of(res) == want, res.stdout
    machines = sorted(m for g in json.loads(res.stdout)["groups"] for m in g["machines"])
    assert machines == [f"mail{i}" for i in runs], machines
    res = report("--json", input="\n".join(export))
    assert groups_of(res) == want, res.stdout
    assert all(g["machines"] for g in json.loads(res.stdout)["groups"]), res.stdout
