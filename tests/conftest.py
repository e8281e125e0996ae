"""Make the repository importable as ``ansible_collections.fedgpu.platform``.

The repository root *is* the collection.  Python (and Ansible) find a
collection as ``<path>/ansible_collections/<namespace>/<name>``, so a symlink
under ``.cache/collections`` points back at the root; ``pyproject.toml`` puts
``.cache/collections`` on ``sys.path``.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "fedgpu", "platform")

if not os.path.exists(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink(ROOT, LINK)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
