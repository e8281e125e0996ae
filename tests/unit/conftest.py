# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures shared by the unit tests."""

import os
import sys

import pytest
from ansible.plugins.loader import init_plugin_loader
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".cache", "collections"))


@pytest.fixture(scope="module")
def collection_loader():
    """Ansible's plugin loader with this collection, for templates that call its filters (as in a play).

    Other tests may have imported the collection from sys.path; Ansible's plugin loader finds collection
    filters only through its own finder. Afterwards the finder and what it imported go, and the tests that
    follow import the collection from sys.path again, whatever their order.
    """
    def ours():
        return [name for name in sys.modules if name.startswith("ansible_collections")]
    saved = dict((name, sys.modules.pop(name)) for name in ours())
    init_plugin_loader([COLLECTIONS])
    yield
    _AnsibleCollectionFinder._remove()  # pylint: disable=protected-access
    for name in ours():
        del sys.modules[name]
    sys.modules.update(saved)
