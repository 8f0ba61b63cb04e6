"""The README's examples run as written: a new user copies them, so a test does too.

- Every ```bash block that talks to a local stack (it sets ``TAILOR=http://127.0.0.1:3000``) runs,
  in README order, as one bash script against this session's stack (``TAILOR`` pointed at it,
  ``.venv/bin/python`` at this interpreter, in a scratch folder), with ``set -euo pipefail`` and
  every ``curl`` failing on an HTTP error status: one broken example fails the test, with the
  script's output.
- The website example (``$API_URL`` with an API key) runs against the same stack.
- Every ``make <target>`` the README names is a real target (``make -n``).
- Commands that need Docker or an AWS account (``sam``, ``aws``) are listed in the README as such
  and are checked by ``sam validate`` in ``make lint``, not here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import started_stack

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
LOCAL_MARK = "TAILOR=http://127.0.0.1:3000"
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)
# curl fails on a 4xx/5xx answer (and prints it); anything else is the README's own command.
PRELUDE = 'set -euo pipefail\ncurl() { command curl --fail-with-body --max-time 120 "$@"; }\n'


@pytest.fixture(scope="module")
def readme_stack(tmp_path_factory):
    """A stack of its own: the README's shop must not mix with the data of the other e2e tests."""
    with started_stack(tmp_path_factory.mktemp("readme-stack") / "stack.log") as stack:
        yield stack


def bash_blocks() -> list[str]:
    return BLOCK.findall(README)


def run_script(script: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", PRELUDE + script], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_the_local_examples_run_as_written(readme_stack, tmp_path):
    blocks = [b for b in bash_blocks() if LOCAL_MARK in b]
    assert blocks, f"README has no ```bash block with {LOCAL_MARK}: the getting-started examples are gone"
    script = "\n".join(blocks).replace(LOCAL_MARK, f"TAILOR={readme_stack.url}")
    script = script.replace(".venv/bin/python", sys.executable)
    done = run_script(script, tmp_path)
    assert done.returncode == 0, (f"a README example failed (exit {done.returncode}):\n--- stdout\n"
                                  f"{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}")
    assert '"strategy"' in done.stdout and '"results"' in done.stdout, done.stdout[-3000:]


def test_the_website_example_runs_against_the_stack(readme_stack, tmp_path):
    lines = [b for b in bash_blocks() if "$API_URL" in b and "curl" in b and "aws " not in b]
    assert lines, "README has no website curl example"
    done = run_script(f"API_URL={readme_stack.url}\nTAILOR_API_KEY=local\n" + "\n".join(lines), tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def test_every_make_target_the_readme_names_exists():
    # In code: `make x` inline, or a command line of a block (prose such as "make a version current" is not).
    targets = set(re.findall(r"(?:^|`)make ([a-z][a-z0-9-]*)", README, re.M))
    assert {"demo", "test", "local"} <= targets
    for target in sorted(targets):
        done = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"README names `make {target}`, which make does not know: {done.stderr}"
