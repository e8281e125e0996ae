# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes' rules for names and labels (DNS-1123 labels and subdomains, label keys and values), in one place."""

from __future__ import annotations

import re

LABEL_VALUE = re.compile(r'^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$')
LABEL_KEY = re.compile(r'^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$')
DNS_LABEL = re.compile(r'^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$')
DNS_SUBDOMAIN = re.compile(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')


def community_name(name):
    """A community of platform_groups in Kubernetes names (namespaces, queues, volumes): ``_`` becomes ``-``."""
    return str(name).replace('_', '-')


def mig_resource(profile):
    """The device plugin's extended resource of a MIG profile (strategy mixed): ``nvidia.com/mig-1g.10gb``.

    Profiles with ``+`` (``1g.10gb+me``) are refused: the device plugin's name for them is not known here.
    """
    profile = str(profile)
    if '+' in profile:
        raise ValueError("the MIG profile '%s' has no Kubernetes resource of the device plugin; use a profile without '+'" % profile)
    return 'nvidia.com/mig-' + profile
