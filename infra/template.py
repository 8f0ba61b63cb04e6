"""Load the SAM/CloudFormation template as plain Python data.

`template.yaml` uses CloudFormation's short-form tags (`!Ref`, `!Sub`, `!GetAtt`, ...), which a
plain YAML loader rejects. `load_template` turns each tag into its long form, the same shape a
JSON template would have:

    !Ref DataBucket              -> {"Ref": "DataBucket"}
    !GetAtt StateTable.Arn       -> {"Fn::GetAtt": ["StateTable", "Arn"]}
    !Sub "tailor-${Stage}"       -> {"Fn::Sub": "tailor-${Stage}"}
    !Condition IsProd            -> {"Condition": "IsProd"}

Tools that read the template (the local stack, `infra/size.py`, the template tests) share this
loader so they all see the same structure. The API is one function and is meant to stay stable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["load_template"]


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation short-form tags."""


# CloudFormation values are strings: `AWSTemplateFormatVersion: 2010-09-09` must not become a
# datetime.date. Drop the timestamp resolver (on this subclass only, not on yaml.SafeLoader).
_CloudFormationLoader.yaml_implicit_resolvers = {
    first_char: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first_char, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_node(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict:
    value = _construct_node(loader, node)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # Short form `Resource.Attribute`; the attribute itself may contain dots (Outputs.X).
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: str | Path = "template.yaml") -> dict:
    """Parse a SAM/CloudFormation YAML template into plain dicts, lists and strings.

    Raises FileNotFoundError if the file is missing and yaml.YAMLError if it is not valid YAML.
    """
    with open(path, encoding="utf-8") as handle:
        template = yaml.load(handle, Loader=_CloudFormationLoader)  # noqa: S506 - safe subclass
    if not isinstance(template, dict):
        raise ValueError(f"{path}: expected a YAML mapping at the top level, got {type(template).__name__}")
    return template
