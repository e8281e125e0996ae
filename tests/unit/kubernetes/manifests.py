# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate the Kubernetes documents the collection renders, offline.

- core and other built-in kinds: kubernetes-validate's bundled schemas, strict, for
  the target minor (1.35) and the oldest supported one (1.32);
- Kueue kinds: the v1beta2 OpenAPI schema of the pinned CRDs (tests/unit/fixtures/k8s), strict;
- kubeadm and kubelet configuration: the field lists of kubeadm_v1beta4.py.

As a program (the Molecule scenario's verify runs it on what the role rendered on
the node): ``python manifests.py FILE_OR_DIR...`` prints a JSON summary and exits 1
when a document is invalid.
"""

import glob
import gzip
import json
import os
import sys

import jsonschema
import kubernetes_validate
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import kubeadm_v1beta4  # noqa: E402  pylint: disable=wrong-import-position

FIXTURES = os.path.join(HERE, "..", "fixtures", "k8s")
VERSIONS = ("1.35.0", "1.32.0")


def _strict(schema):
    """The CRD schema without x-kubernetes-* keys and with additionalProperties: false where it lists properties
    (the API server would prune a misspelt field silently: here it fails)."""
    if isinstance(schema, dict):
        out = dict((k, _strict(v)) for k, v in schema.items() if not k.startswith("x-kubernetes-"))
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def crd_validators():
    """{(apiVersion, kind): (validator, scope)} of the pinned Kueue CRDs, v1beta2, strict."""
    result = {}
    for path in sorted(glob.glob(os.path.join(FIXTURES, "kueue", "*", "crd", "*.yaml.gz"))):
        with gzip.open(path, "rt") as handle:
            crd = yaml.safe_load(handle)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version["name"] == "v1beta2":
                schema = _strict(version["schema"]["openAPIV3Schema"])
                schema["properties"]["metadata"] = {"type": "object"}
                result[(group + "/v1beta2", kind)] = (jsonschema.Draft7Validator(schema), crd["spec"]["scope"])
    return result


_CRDS = None


def problems(document, versions=VERSIONS):
    """Problems of one document (empty list: valid)."""
    global _CRDS  # pylint: disable=global-statement
    if not isinstance(document, dict) or "kind" not in document or "apiVersion" not in document:
        return ["not a Kubernetes object: %r" % (document,)]
    api, kind = document["apiVersion"], document["kind"]
    name = "%s %s" % (kind, (document.get("metadata") or {}).get("name", ""))
    if api in (kubeadm_v1beta4.KUBEADM_API, kubeadm_v1beta4.KUBELET_API):
        return ["%s: %s" % (name, p) for p in kubeadm_v1beta4.check(document)]
    if api.startswith("kueue.x-k8s.io/"):
        if _CRDS is None:
            _CRDS = crd_validators()
        if (api, kind) not in _CRDS:
            return ["%s: no pinned CRD schema for %s" % (name, api)]
        validator = _CRDS[(api, kind)][0]
        return ["%s: %s at %s" % (name, e.message, "/".join(str(p) for p in e.absolute_path))
                for e in validator.iter_errors(document)]
    found = []
    for version in versions:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            found.append("%s (Kubernetes %s): %s at %s" % (name, version, exc.message, "/".join(str(p) for p in exc.path)))
        except kubernetes_validate.SchemaNotFoundError:
            found.append("%s: kubernetes-validate has no schema for %s %s in Kubernetes %s" % (name, api, kind, version))
    return found


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as handle:
        return [d for d in yaml.safe_load_all(handle) if d is not None]


def check_paths(paths):
    summary = {"files": {}, "problems": []}
    files = []
    for path in paths:
        if os.path.isdir(path):
            files.extend(sorted(glob.glob(os.path.join(path, "*.yml")) + glob.glob(os.path.join(path, "*.yaml"))))
        else:
            files.append(path)
    for path in files:
        documents = load(path)
        summary["files"][os.path.basename(path)] = [d.get("kind") for d in documents if isinstance(d, dict)]
        for document in documents:
            summary["problems"].extend("%s: %s" % (os.path.basename(path), p) for p in problems(document))
    return summary


if __name__ == "__main__":
    result = check_paths(sys.argv[1:])
    print(json.dumps(result, indent=1, sort_keys=True))
    sys.exit(1 if result["problems"] or not result["files"] else 0)
