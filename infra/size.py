"""Measure the unzipped size of every zip Lambda function (code + layers) against the 250 MB limit.

Lambda refuses a zip function whose code and layers together exceed 250 MB unzipped. This script
rebuilds each layer the way `sam build` does for python3.12 on x86_64 — dependencies from the
layer's requirements.txt installed from manylinux wheels (no local compilation, no .pyc files),
plus the layer's own source files — and adds up the bytes per function. Which function takes
which layers is read from template.yaml, so the numbers follow the template.

    python -m infra.size            # table on stdout, bench/results/size.{md,json}
    python -m infra.size --refresh  # reinstall the layers' dependencies instead of reusing them

Installed dependencies are cached under .build/size/ per layer and reused while its
requirements.txt is unchanged. The exit status is 1 if any function is over the limit.

Sizes are the sum of file sizes in bytes, and "MB" in the output is MiB (1024 * 1024 bytes). The
limit is 250 MiB = 262,144,000 bytes: AWS's quota page says "250 MB", and Lambda's own rejection
reads "Unzipped size must be smaller than 262144000 bytes".
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as `python infra/size.py`: make `infra` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.template import load_template  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
LIMIT_BYTES = 250 * 1024 * 1024
MIB = 1024 * 1024

PYTHON_VERSION = "3.12"
# The wheels `sam build` accepts for python3.12 on x86_64: any manylinux tag up to glibc 2.34
# (Lambda's Amazon Linux 2023). pip expands manylinux2014 to the older legacy tags itself, but not
# the perennial manylinux_2_X tags, so each is listed (NumPy 2.4, for one, ships manylinux_2_27/2_28).
PLATFORMS = ("manylinux2014_x86_64", *(f"manylinux_2_{minor}_x86_64" for minor in range(17, 35)))

# What `sam build` leaves out when it copies a function's or layer's source folder
# (aws_lambda_builders PythonPipWorkflow.EXCLUDED_FILES, abridged to what can occur here).
SOURCE_EXCLUDES = (
    ".aws-sam", ".git", ".gitignore", "*.pyc", "__pycache__", "*.so", "*.egg-info", "*.egg",
    ".pytest_cache", ".mypy_cache", ".cache", ".coverage", "htmlcov", ".tox", ".nox",
    ".venv", "venv", ".env", "env", ".vscode", ".idea",
)

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
SERVERLESS_LAYER = "AWS::Serverless::LayerVersion"


@dataclass
class Bundle:
    """A folder that `sam build` turns into a zip: its source, plus its requirements if it has any."""

    name: str
    source_dir: Path
    source_bytes: int = 0
    dependency_bytes: int = 0
    largest_dependencies: list[tuple[str, int]] = field(default_factory=list)
    packages: dict[str, str] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return self.source_bytes + self.dependency_bytes


def _excluded(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in SOURCE_EXCLUDES)


def source_size(folder: Path) -> int:
    """Bytes of the files `sam build` would copy from a source folder."""
    total = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not _excluded(d)]
        total += sum(os.lstat(os.path.join(root, f)).st_size for f in files if not _excluded(f))
    return total


def tree_size(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        total += sum(os.lstat(os.path.join(root, f)).st_size for f in files)
    return total


def largest_entries(folder: Path, count: int = 6) -> list[tuple[str, int]]:
    """The biggest top-level packages in an install folder (distribution metadata left out)."""
    sizes = []
    for entry in folder.iterdir():
        if entry.name.endswith(".dist-info") or entry.name == ".complete":
            continue
        size = tree_size(entry) if entry.is_dir() else entry.stat().st_size
        sizes.append((entry.name, size))
    return sorted(sizes, key=lambda pair: -pair[1])[:count]


def installed_packages(folder: Path) -> dict[str, str]:
    """Name -> version of the distributions pip installed into a folder."""
    packages = {}
    for dist_info in folder.glob("*.dist-info"):
        name, _, version = dist_info.name[: -len(".dist-info")].partition("-")
        packages[name] = version
    return dict(sorted(packages.items(), key=lambda item: item[0].lower()))


def install_requirements(requirements: Path, cache_root: Path, refresh: bool) -> Path:
    """Install a requirements file for Lambda's platform into a cache folder and return it.

    The folder is keyed by a hash of the requirements and the platform arguments, so a changed
    requirements file gets a fresh install and an unchanged one is reused.
    """
    pip_args = [
        "--only-binary=:all:", "--implementation", "cp", "--python-version", PYTHON_VERSION,
        *[arg for platform in PLATFORMS for arg in ("--platform", platform)],
        "--no-compile",  # sam build unpacks wheels without compiling .pyc files
    ]
    key = hashlib.sha256((requirements.read_text() + " ".join(pip_args)).encode()).hexdigest()[:16]
    target = cache_root / key
    marker = target / ".complete"
    if marker.exists() and not refresh:
        return target
    for stale in cache_root.glob("*"):  # earlier requirements of this bundle
        shutil.rmtree(stale)
    target.mkdir(parents=True)
    print(f"  installing {requirements.relative_to(REPO_ROOT)} for python{PYTHON_VERSION} x86_64 ...", file=sys.stderr)
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--target", str(target), *pip_args, "-r", str(requirements),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        raise SystemExit(f"pip could not install {requirements} for Lambda:\n{result.stderr.strip()}")
    marker.touch()
    return target


def measure_bundle(name: str, source_dir: Path, cache_dir: Path, refresh: bool) -> Bundle:
    if not source_dir.is_dir():
        raise SystemExit(f"{name}: folder {source_dir.relative_to(REPO_ROOT)} does not exist")
    bundle = Bundle(name=name, source_dir=source_dir, source_bytes=source_size(source_dir))
    requirements = source_dir / "requirements.txt"
    if requirements.exists():
        installed = install_requirements(requirements, cache_dir / name, refresh)
        bundle.dependency_bytes = tree_size(installed)
        bundle.largest_dependencies = largest_entries(installed)
        bundle.packages = installed_packages(installed)
    return bundle


def _function_layer_ids(function_name: str, properties: dict, global_layers: list) -> list[str]:
    """Logical IDs of the template's layers a function uses (SAM puts Globals' layers first)."""
    layer_ids = []
    for layer in [*global_layers, *properties.get("Layers", [])]:
        if not (isinstance(layer, dict) and set(layer) == {"Ref"}):
            raise SystemExit(f"{function_name}: cannot measure layer {layer!r}; only !Ref to a layer in the template")
        layer_ids.append(layer["Ref"])
    return layer_ids


def measure_template(template_path: Path, cache_dir: Path, refresh: bool = False) -> dict:
    """Measure every zip function in the template; returns the report as plain data."""
    template = load_template(template_path)
    resources = template.get("Resources", {})
    function_globals = template.get("Globals", {}).get("Function", {})
    base = template_path.resolve().parent

    layers: dict[str, Bundle] = {}
    functions = []
    image_functions = []
    for logical_id, resource in resources.items():
        if resource.get("Type") != SERVERLESS_FUNCTION:
            continue
        properties = resource.get("Properties", {})
        if properties.get("PackageType", function_globals.get("PackageType")) == "Image":
            image_functions.append(logical_id)  # a container image has a 10 GB limit and no layers
            continue
        code_uri = properties.get("CodeUri", function_globals.get("CodeUri"))
        if not isinstance(code_uri, str):
            raise SystemExit(f"{logical_id}: CodeUri must be a local folder to be measured, got {code_uri!r}")
        layer_ids = _function_layer_ids(logical_id, properties, function_globals.get("Layers", []))
        for layer_id in layer_ids:
            if layer_id in layers:
                continue
            layer = resources.get(layer_id)
            if layer is None or layer.get("Type") != SERVERLESS_LAYER:
                raise SystemExit(f"{logical_id}: layer {layer_id} is not an {SERVERLESS_LAYER} in the template")
            content_uri = layer["Properties"]["ContentUri"]
            layers[layer_id] = measure_bundle(layer_id, base / content_uri, cache_dir, refresh)
        code = measure_bundle(logical_id, base / code_uri, cache_dir, refresh)
        total = code.total_bytes + sum(layers[layer_id].total_bytes for layer_id in layer_ids)
        functions.append({
            "function": logical_id,
            "layers": layer_ids,
            "code_bytes": code.total_bytes,
            "layer_bytes": {layer_id: layers[layer_id].total_bytes for layer_id in layer_ids},
            "total_bytes": total,
            "headroom_bytes": LIMIT_BYTES - total,
            "within_limit": total <= LIMIT_BYTES,
        })

    return {
        "limit_bytes": LIMIT_BYTES,
        "platform": {"python": PYTHON_VERSION, "architecture": "x86_64", "wheels": f"{PLATFORMS[0]} to {PLATFORMS[-1]}"},
        "functions": functions,
        "layers": {
            layer_id: {
                "content_uri": str(bundle.source_dir.relative_to(base)),
                "source_bytes": bundle.source_bytes,
                "dependency_bytes": bundle.dependency_bytes,
                "total_bytes": bundle.total_bytes,
                "largest_dependencies": [{"name": n, "bytes": b} for n, b in bundle.largest_dependencies],
                "packages": bundle.packages,
            }
            for layer_id, bundle in layers.items()
        },
        "image_functions": image_functions,
    }


def _mb(size: int) -> str:
    return f"{size / MIB:.1f}"


def render_markdown(report: dict) -> str:
    lines = [
        "# Lambda package sizes (unzipped)",
        "",
        f"Function code plus its layers, built as `sam build` does for python{report['platform']['python']} "
        f"x86_64, against the {_mb(report['limit_bytes'])} MB limit (MB = MiB). Generated by `python -m infra.size`.",
        "",
        "| function | layers | code MB | layers MB | total MB | headroom MB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in report["functions"]:
        flag = "" if row["within_limit"] else " **over the limit**"
        lines.append(
            f"| {row['function']} | {', '.join(row['layers']) or '-'} | {_mb(row['code_bytes'])} | "
            f"{_mb(sum(row['layer_bytes'].values()))} | {_mb(row['total_bytes'])}{flag} | {_mb(row['headroom_bytes'])} |"
        )
    lines += ["", "| layer | folder | MB | largest parts (MB) |", "|---|---|---:|---|"]
    for layer_id, layer in report["layers"].items():
        largest = ", ".join(f"{d['name']} {_mb(d['bytes'])}" for d in layer["largest_dependencies"])
        lines.append(f"| {layer_id} | `{layer['content_uri']}` | {_mb(layer['total_bytes'])} | {largest} |")
    if report["image_functions"]:
        lines += ["", "Container-image functions (10 GB image limit, not measured here): "
                  + ", ".join(report["image_functions"]) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", type=Path, default=REPO_ROOT / "template.yaml")
    parser.add_argument("--out-dir", type=Path, default=REPO_ROOT / "bench" / "results")
    parser.add_argument("--cache-dir", type=Path, default=REPO_ROOT / ".build" / "size")
    parser.add_argument("--refresh", action="store_true", help="reinstall dependencies even if cached")
    args = parser.parse_args(argv)

    report = measure_template(args.template, args.cache_dir, refresh=args.refresh)
    markdown = render_markdown(report)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "size.md").write_text(markdown)
    (args.out_dir / "size.json").write_text(json.dumps(report, indent=2) + "\n")
    print(markdown)

    over = [row["function"] for row in report["functions"] if not row["within_limit"]]
    if over:
        print(f"Over the {_mb(LIMIT_BYTES)} MB unzipped limit: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
