"""A bounded smoke run of each libFuzzer target (tests/fuzz/, `make fuzz` runs them
longer): the parsers of the shim on mutations of their seed corpora, under ASan and
UBSan, with the targets' own properties (tests/fuzz/fuzz_*.c). A crash, a sanitizer
report or a broken property makes the target exit non-zero."""
import os
import re

import pytest

from lib.maketarget import make
from lib.runner import BUILD, REPO, describe, run

FUZZ = BUILD / "fuzz"
CORPUS = REPO / "tests" / "fuzz" / "corpus"
SECONDS = 8   # per target, at most
# target -> (runs, dictionary): about SECONDS of work each on this machine
TARGETS = {"policy": (20000, "policy"), "smtp_out": (100000, "smtp"),
           "smtp_in": (100000, "smtp"), "smtp_order": (100000, "smtp"),
           "proxy": (100000, "smtp"), "guard": (40000, "smtp"),
           "trust_index": (40000, "pem"), "hello": (100000, "smtp"), "dns": (100000, "dns"),
           "wire": (40000, "wire")}


@pytest.fixture(scope="module")
def fuzz_targets():
    make("fuzz-targets")   # clang


@pytest.mark.parametrize("name", TARGETS)
def test_fuzz_target_smoke(name, fuzz_targets, tmp_path):
    runs, dictionary = TARGETS[name]
    work = tmp_path / "corpus"   # new inputs go here; the seeds stay as they are
    work.mkdir()
    # The fuzzer's own ASan must report on stderr, not where SANITIZE=1 sends reports.
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
    res = run([FUZZ / f"fuzz_{name}", f"-runs={runs}", f"-max_total_time={SECONDS}",
               f"-dict={REPO / 'tests' / 'fuzz' / f'{dictionary}.dict'}",
               f"-artifact_prefix={tmp_path}/", "-print_final_stats=1", work, CORPUS / name],
              env, timeout=SECONDS + 60)
    assert res.returncode == 0, describe(res)[-6000:]
    executed = int(re.search(r"stat::number_of_executed_units:\s*(\d+)", res.stderr).group(1))
    assert executed >= min(runs, 1000), describe(res)[-3000:]
