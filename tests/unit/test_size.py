"""infra/size.py adds up each zip function's code and layers as the template wires them (no pip here:
the layers in these templates have no requirements.txt)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra import size

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Layers: [!Ref BaseLayer]
Resources:
  BaseLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: base/}
  BigLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: big/}
  SmallFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: small/, Handler: app.lambda_handler, Runtime: python3.12}
  LargeFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: large/
      Handler: app.lambda_handler
      Runtime: python3.12
      Layers: [!Ref BigLayer]
  ImageFunction:
    Type: AWS::Serverless::Function
    Properties: {PackageType: Image}
"""


def _write(path: Path, size_bytes: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size_bytes)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    _write(tmp_path / "base" / "pkg" / "__init__.py", 1000)
    _write(tmp_path / "base" / "pkg" / "__pycache__" / "__init__.cpython-312.pyc", 5000)  # sam build skips it
    _write(tmp_path / "big" / "blob.bin", 20_000)
    _write(tmp_path / "small" / "app.py", 10)
    _write(tmp_path / "large" / "app.py", 30)
    return tmp_path


def test_each_function_counts_its_code_and_every_layer_it_takes(project):
    report = size.measure_template(project / "template.yaml", project / ".cache")
    rows = {row["function"]: row for row in report["functions"]}

    assert rows["SmallFunction"]["layers"] == ["BaseLayer"]
    assert rows["SmallFunction"]["total_bytes"] == 10 + 1000
    assert rows["LargeFunction"]["layers"] == ["BaseLayer", "BigLayer"]  # Globals' layers come first
    assert rows["LargeFunction"]["total_bytes"] == 30 + 1000 + 20_000
    assert report["image_functions"] == ["ImageFunction"]


def test_exit_status_is_1_when_a_function_is_over_the_limit(project, monkeypatch, capsys):
    out_dir = project / "results"
    argv = ["--template", str(project / "template.yaml"), "--out-dir", str(out_dir),
            "--cache-dir", str(project / ".cache")]
    assert size.main(argv) == 0

    monkeypatch.setattr(size, "LIMIT_BYTES", 5_000)
    assert size.main(argv) == 1
    assert "LargeFunction" in capsys.readouterr().err
    written = json.loads((out_dir / "size.json").read_text())
    assert [r["within_limit"] for r in written["functions"]] == [True, False]
    assert "**over the limit**" in (out_dir / "size.md").read_text()


def test_a_layer_that_is_not_in_the_template_is_an_error(project):
    template = project / "template.yaml"
    template.write_text(TEMPLATE.replace("[!Ref BigLayer]", "[!Ref MissingLayer]"))
    with pytest.raises(SystemExit, match="MissingLayer"):
        size.measure_template(template, project / ".cache")
