"""Off-the-shelf careless mailers against good and hostile servers, without and with
the shim. Without it they leak the credentials and the message to any TLS server;
with it the hostile ones get nothing (no AUTH, no MAIL) and the good one the message.
The outcomes go to build/mailer-table.md."""
import pytest

from lib import results
from lib.constants import BODY, PASSWORD, SCENARIOS, USER
from lib.mailers import MAILERS
from lib.runner import describe

CASES = [pytest.param(m, mode, scenario, id=f"{m.name}-{mode}-{scenario}")
         for m in MAILERS for mode in m.modes for scenario in SCENARIOS]


@pytest.fixture
def attempt(smtp_server, run, message_file):
    """attempt(mailer, mode, scenario, env_for) -> (server, CompletedProcess, env);
    env_for(server) gives the mailer's environment."""
    def go(mailer, mode, scenario, env_for):
        cert, tls = SCENARIOS[scenario]
        server = smtp_server(cert, mode, tls)
        env = env_for(server)
        cmd = mailer.build(server.port, mode, message_file)
        return server, run(cmd.argv, env, input=cmd.input, timeout=60), env
    return go


def assert_delivered(server, res):
    assert res.returncode == 0, describe(res)
    assert len(server.transactions()) == 1, server.sessions
    assert server.credentials() == [(USER, PASSWORD, True)], server.sessions
    (message,) = server.messages()
    assert BODY in message, message


@pytest.mark.parametrize("mailer,mode,scenario", CASES)
def test_without_shim(mailer, mode, scenario, attempt, baseline):
    server, res, _ = attempt(mailer, mode, scenario, lambda server: baseline())
    outcome = results.outcome(server, res.returncode, scenario)
    own = scenario in mailer.refuses and outcome.startswith("refused")
    results.record(mailer=mailer.name, mode=mode, scenario=scenario, run="baseline",
                   outcome="own" if own else outcome)
    if scenario == "good":
        assert_delivered(server, res)
    elif scenario in mailer.refuses:
        assert server.credentials() == [] and server.transactions() == [], \
            f"{mailer.name} is listed as refusing {scenario} by itself, but it leaked"
        pytest.skip(f"not leaking: {mailer.name} refuses {scenario} by itself")
    else:
        assert server.credentials() == [(USER, PASSWORD, True)], describe(res)
        assert len(server.transactions()) == 1, server.sessions


@pytest.mark.parametrize("mailer,mode,scenario", CASES)
def test_with_shim(mailer, mode, scenario, attempt, shim):
    def env_for(server):
        return shim(ports=[server.port], implicit=[server.port] if mode == "implicit" else ())

    server, res, env = attempt(mailer, mode, scenario, env_for)
    results.record(mailer=mailer.name, mode=mode, scenario=scenario, run="shim",
                   outcome=results.outcome(server, res.returncode, scenario))
    if scenario == "good":
        assert_delivered(server, res)
        return
    why = f"{describe(res)}\n--- shim log\n{env.log()}\n--- sessions\n{server.sessions}"
    assert server.credentials() == [], why
    assert server.transactions() == [], why
    assert res.returncode != 0, why
