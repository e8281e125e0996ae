# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fedgpu.platform developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Field lists of kubeadm.k8s.io/v1beta4 and kubelet.config.k8s.io/v1beta1, for checking rendered documents.

Neither API publishes a JSON schema, so the field lists below were transcribed by hand
from the reference pages that the Kubernetes website generates from the Go types
(generated Markdown, ``auto_generated: true``), in the repository ``kubernetes/website``:

- ``content/en/docs/reference/config-api/kubeadm-config.v1beta4.md``
  at commit f9610cd94d4e76f10730ea4326ea7e709ca9901b (links to the v1.31 API reference);
- ``content/en/docs/reference/config-api/kubelet-config.v1beta1.md``
  at commit 037ed19f7a0151940df9de98ce66c8e79bac508e (links to the v1.35 API reference);
  only the top-level KubeletConfiguration fields and the nested types of a few of them.

The core/v1 types that the kubeadm page only links to (Taint, EnvVar, HostPathType,
PullPolicy) follow the Kubernetes API reference those links point at.

Kinds of values:
``'str'``, ``'int'``, ``'float'``, ``'bool'``, ``'list[str]'``, ``'map[str]str'``, ``'map[str]bool'``,
``'map[str]list[str]'``, ``'duration'`` (meta/v1.Duration: a Go duration string such as ``"5m0s"``),
``'time'`` (meta/v1.Time: an RFC 3339 string, or a timestamp YAML already parsed),
``('object', 'TypeName')``, ``('list', 'TypeName')``, or ``'any'`` (not modelled).

Required fields: the generated pages print ``[Required]`` for every Go field whose JSON tag
lacks ``omitempty``, which includes many fields that have defaults or are documented as optional
(e.g. ``InitConfiguration.dryRun``, ``NodeRegistrationOptions.taints``, ``LocalEtcd.dataDir``).
``REQUIRED`` therefore holds only the fields that are marked ``[Required]`` and whose description
gives no default and no optional wording; ``PAGE_MARKED_REQUIRED`` lists the others for reference.

ResetConfiguration and UpgradeConfiguration are not modelled.
"""

import datetime
import re

KUBEADM_API = "kubeadm.k8s.io/v1beta4"
KUBELET_API = "kubelet.config.k8s.io/v1beta1"

KINDS = {
    "InitConfiguration": (KUBEADM_API, "InitConfiguration"),
    "ClusterConfiguration": (KUBEADM_API, "ClusterConfiguration"),
    "JoinConfiguration": (KUBEADM_API, "JoinConfiguration"),
    "KubeletConfiguration": (KUBELET_API, "KubeletConfiguration"),
}

# Fields every top-level document carries (TypeMeta).
TYPE_META = {"apiVersion": "str", "kind": "str"}


def _obj(name):
    return ("object", name)


def _list(name):
    return ("list", name)


# ---------------------------------------------------------------------------
# kubeadm.k8s.io/v1beta4
# ---------------------------------------------------------------------------

IMAGE_META = {
    "imageRepository": "str",
    "imageTag": "str",
}

CONTROL_PLANE_COMPONENT = {
    # v1beta4: extraArgs is a list of {name, value}, no longer a map.
    "extraArgs": _list("Arg"),
    "extraVolumes": _list("HostPathMount"),
    "extraEnvs": _list("EnvVar"),
}

TYPES = {
    "InitConfiguration": {
        "bootstrapTokens": _list("BootstrapToken"),
        "dryRun": "bool",
        "nodeRegistration": _obj("NodeRegistrationOptions"),
        "localAPIEndpoint": _obj("APIEndpoint"),
        "certificateKey": "str",
        "skipPhases": "list[str]",
        "patches": _obj("Patches"),
        "timeouts": _obj("Timeouts"),
    },
    "ClusterConfiguration": {
        "etcd": _obj("Etcd"),
        "networking": _obj("Networking"),
        "kubernetesVersion": "str",
        "controlPlaneEndpoint": "str",
        "apiServer": _obj("APIServer"),
        "controllerManager": _obj("ControlPlaneComponent"),
        "scheduler": _obj("ControlPlaneComponent"),
        "dns": _obj("DNS"),
        "proxy": _obj("Proxy"),
        "certificatesDir": "str",
        "imageRepository": "str",
        "featureGates": "map[str]bool",
        "clusterName": "str",
        "encryptionAlgorithm": "str",
        "certificateValidityPeriod": "duration",
        "caCertificateValidityPeriod": "duration",
    },
    "JoinConfiguration": {
        "dryRun": "bool",
        "nodeRegistration": _obj("NodeRegistrationOptions"),
        "caCertPath": "str",
        "discovery": _obj("Discovery"),
        "controlPlane": _obj("JoinControlPlane"),
        "skipPhases": "list[str]",
        "patches": _obj("Patches"),
        "timeouts": _obj("Timeouts"),
    },
    "BootstrapToken": {
        "token": "str",  # BootstrapTokenString, serialised as "abcdef.0123456789abcdef"
        "description": "str",
        "ttl": "duration",
        "expires": "time",
        "usages": "list[str]",
        "groups": "list[str]",
    },
    "APIEndpoint": {
        "advertiseAddress": "str",
        "bindPort": "int",
    },
    "APIServer": dict(CONTROL_PLANE_COMPONENT, certSANs="list[str]"),  # embeds ControlPlaneComponent
    "Arg": {
        "name": "str",
        "value": "str",
    },
    "BootstrapTokenDiscovery": {
        "token": "str",
        "apiServerEndpoint": "str",
        "caCertHashes": "list[str]",
        "unsafeSkipCAVerification": "bool",
    },
    "ControlPlaneComponent": dict(CONTROL_PLANE_COMPONENT),
    "DNS": dict(IMAGE_META, disabled="bool"),  # embeds ImageMeta
    "Discovery": {
        "bootstrapToken": _obj("BootstrapTokenDiscovery"),
        "file": _obj("FileDiscovery"),
        "tlsBootstrapToken": "str",
    },
    "EnvVar": {  # embeds core/v1.EnvVar
        "name": "str",
        "value": "str",
        "valueFrom": "any",
    },
    "Etcd": {
        "local": _obj("LocalEtcd"),
        "external": _obj("ExternalEtcd"),
    },
    "ExternalEtcd": {
        "endpoints": "list[str]",
        "caFile": "str",
        "certFile": "str",
        "keyFile": "str",
    },
    "FileDiscovery": {
        "kubeConfigPath": "str",
    },
    "HostPathMount": {
        "name": "str",
        "hostPath": "str",
        "mountPath": "str",
        "readOnly": "bool",
        "pathType": "str",
    },
    "ImageMeta": dict(IMAGE_META),
    "JoinControlPlane": {
        "localAPIEndpoint": _obj("APIEndpoint"),
        "certificateKey": "str",
    },
    "LocalEtcd": dict(  # embeds ImageMeta
        IMAGE_META,
        dataDir="str",
        extraArgs=_list("Arg"),
        extraEnvs=_list("EnvVar"),
        serverCertSANs="list[str]",
        peerCertSANs="list[str]",
    ),
    "Networking": {
        "serviceSubnet": "str",
        "podSubnet": "str",
        "dnsDomain": "str",
    },
    "NodeRegistrationOptions": {
        "name": "str",
        "criSocket": "str",
        "taints": _list("Taint"),
        # v1beta4: kubeletExtraArgs is a list of {name, value}, no longer a map.
        "kubeletExtraArgs": _list("Arg"),
        "ignorePreflightErrors": "list[str]",
        "imagePullPolicy": "str",
        "imagePullSerial": "bool",
    },
    "Patches": {
        "directory": "str",
    },
    "Proxy": {
        "disabled": "bool",
    },
    "Timeouts": {
        "controlPlaneComponentHealthCheck": "duration",
        "kubeletHealthCheck": "duration",
        "kubernetesAPICall": "duration",
        "etcdAPICall": "duration",
        "tlsBootstrap": "duration",
        "discovery": "duration",
        "upgradeManifests": "duration",
    },
    "Taint": {  # core/v1.Taint
        "key": "str",
        "value": "str",
        "effect": "str",
        "timeAdded": "time",
    },
}

# ---------------------------------------------------------------------------
# kubelet.config.k8s.io/v1beta1
# ---------------------------------------------------------------------------

TYPES["KubeletConfiguration"] = {
    "enableServer": "bool",
    "staticPodPath": "str",
    "podLogsDir": "str",
    "syncFrequency": "duration",
    "fileCheckFrequency": "duration",
    "httpCheckFrequency": "duration",
    "staticPodURL": "str",
    "staticPodURLHeader": "map[str]list[str]",
    "address": "str",
    "port": "int",
    "readOnlyPort": "int",
    "tlsCertFile": "str",
    "tlsPrivateKeyFile": "str",
    "tlsCipherSuites": "list[str]",
    "tlsMinVersion": "str",
    "rotateCertificates": "bool",
    "serverTLSBootstrap": "bool",
    "authentication": _obj("KubeletAuthentication"),
    "authorization": _obj("KubeletAuthorization"),
    "registryPullQPS": "int",
    "registryBurst": "int",
    "imagePullCredentialsVerificationPolicy": "str",
    "preloadedImagesVerificationAllowlist": "list[str]",
    "eventRecordQPS": "int",
    "eventBurst": "int",
    "enableDebuggingHandlers": "bool",
    "enableContentionProfiling": "bool",
    "healthzPort": "int",
    "healthzBindAddress": "str",
    "oomScoreAdj": "int",
    "clusterDomain": "str",
    "clusterDNS": "list[str]",
    "streamingConnectionIdleTimeout": "duration",
    "nodeStatusUpdateFrequency": "duration",
    "nodeStatusReportFrequency": "duration",
    "nodeLeaseDurationSeconds": "int",
    "imageMinimumGCAge": "duration",
    "imageMaximumGCAge": "duration",
    "imageGCHighThresholdPercent": "int",
    "imageGCLowThresholdPercent": "int",
    "volumeStatsAggPeriod": "duration",
    "kubeletCgroups": "str",
    "systemCgroups": "str",
    "cgroupRoot": "str",
    "cgroupsPerQOS": "bool",
    "cgroupDriver": "str",
    "cpuManagerPolicy": "str",
    "singleProcessOOMKill": "bool",
    "cpuManagerPolicyOptions": "map[str]str",
    "cpuManagerReconcilePeriod": "duration",
    "memoryManagerPolicy": "str",
    "topologyManagerPolicy": "str",
    "topologyManagerScope": "str",
    "topologyManagerPolicyOptions": "map[str]str",
    "qosReserved": "map[str]str",
    "runtimeRequestTimeout": "duration",
    "hairpinMode": "str",
    "maxPods": "int",
    "podCIDR": "str",
    "podPidsLimit": "int",
    "resolvConf": "str",
    "runOnce": "bool",
    "cpuCFSQuota": "bool",
    "cpuCFSQuotaPeriod": "duration",
    "nodeStatusMaxImages": "int",
    "maxOpenFiles": "int",
    "contentType": "str",
    "kubeAPIQPS": "int",
    "kubeAPIBurst": "int",
    "serializeImagePulls": "bool",
    "maxParallelImagePulls": "int",
    "evictionHard": "map[str]str",
    "evictionSoft": "map[str]str",
    "evictionSoftGracePeriod": "map[str]str",
    "evictionPressureTransitionPeriod": "duration",
    "evictionMaxPodGracePeriod": "int",
    "evictionMinimumReclaim": "map[str]str",
    "mergeDefaultEvictionSettings": "bool",
    "podsPerCore": "int",
    "enableControllerAttachDetach": "bool",
    "protectKernelDefaults": "bool",
    "makeIPTablesUtilChains": "bool",
    "iptablesMasqueradeBit": "int",
    "iptablesDropBit": "int",
    "featureGates": "map[str]bool",
    "failSwapOn": "bool",
    "memorySwap": _obj("MemorySwapConfiguration"),
    "containerLogMaxSize": "str",
    "containerLogMaxFiles": "int",
    "containerLogMaxWorkers": "int",
    "containerLogMonitorInterval": "duration",
    "configMapAndSecretChangeDetectionStrategy": "str",
    "systemReserved": "map[str]str",
    "kubeReserved": "map[str]str",
    "reservedSystemCPUs": "str",
    "showHiddenMetricsForVersion": "str",
    "systemReservedCgroup": "str",
    "kubeReservedCgroup": "str",
    "enforceNodeAllocatable": "list[str]",
    "allowedUnsafeSysctls": "list[str]",
    "volumePluginDir": "str",
    "providerID": "str",
    "kernelMemcgNotification": "bool",
    "logging": "any",  # LoggingConfiguration (component-base), not modelled
    "enableSystemLogHandler": "bool",
    "enableSystemLogQuery": "bool",
    "shutdownGracePeriod": "duration",
    "shutdownGracePeriodCriticalPods": "duration",
    "shutdownGracePeriodByPodPriority": _list("ShutdownGracePeriodByPodPriority"),
    "crashLoopBackOff": _obj("CrashLoopBackOffConfig"),
    "reservedMemory": "any",  # []MemoryReservation, not modelled
    "enableProfilingHandler": "bool",
    "enableDebugFlagsHandler": "bool",
    "seccompDefault": "bool",
    "memoryThrottlingFactor": "float",
    "registerWithTaints": _list("Taint"),
    "registerNode": "bool",
    "tracing": _obj("TracingConfiguration"),
    "localStorageCapacityIsolation": "bool",
    "containerRuntimeEndpoint": "str",
    "imageServiceEndpoint": "str",
    "failCgroupV1": "bool",
    "userNamespaces": _obj("UserNamespaces"),
}

TYPES.update({
    "KubeletAuthentication": {
        "x509": _obj("KubeletX509Authentication"),
        "webhook": _obj("KubeletWebhookAuthentication"),
        "anonymous": _obj("KubeletAnonymousAuthentication"),
    },
    "KubeletX509Authentication": {
        "clientCAFile": "str",
    },
    "KubeletWebhookAuthentication": {
        "enabled": "bool",
        "cacheTTL": "duration",
    },
    "KubeletAnonymousAuthentication": {
        "enabled": "bool",
    },
    "KubeletAuthorization": {
        "mode": "str",
        "webhook": _obj("KubeletWebhookAuthorization"),
    },
    "KubeletWebhookAuthorization": {
        "cacheAuthorizedTTL": "duration",
        "cacheUnauthorizedTTL": "duration",
    },
    "MemorySwapConfiguration": {
        "swapBehavior": "str",
    },
    "ShutdownGracePeriodByPodPriority": {
        "priority": "int",
        "shutdownGracePeriodSeconds": "int",
    },
    "CrashLoopBackOffConfig": {
        "maxContainerRestartPeriod": "duration",
    },
    "TracingConfiguration": {
        "endpoint": "str",
        "samplingRatePerMillion": "int",
    },
    "UserNamespaces": {
        "idsPerPod": "int",
    },
})

# ---------------------------------------------------------------------------
# Required fields and enumerations
# ---------------------------------------------------------------------------

# Marked [Required] on the page, with no default and no optional wording
# (Taint and EnvVar: "Required" in the core/v1 API reference).
REQUIRED = {
    "JoinConfiguration": ("discovery",),
    "BootstrapToken": ("token",),
    "Arg": ("name", "value"),
    "BootstrapTokenDiscovery": ("token",),
    "ExternalEtcd": ("endpoints",),
    "FileDiscovery": ("kubeConfigPath",),
    "HostPathMount": ("name", "hostPath", "mountPath"),
    "Taint": ("key", "effect"),
    "EnvVar": ("name",),
    "ShutdownGracePeriodByPodPriority": ("priority", "shutdownGracePeriodSeconds"),
}

# Marked [Required] on the pages (no omitempty in the Go tag) but documented with a default,
# as optional, as conditional, or known to be filled in by defaulting; not enforced.
PAGE_MARKED_REQUIRED = {
    "InitConfiguration": ("dryRun",),
    "ClusterConfiguration": ("proxy",),
    "APIServer": ("ControlPlaneComponent (embedded)",),
    "DNS": ("ImageMeta (embedded)", "disabled"),
    "Proxy": ("disabled",),
    "EnvVar": ("EnvVar (embedded)",),
    "ExternalEtcd": ("caFile", "certFile", "keyFile"),  # "Required if using a TLS connection."
    "LocalEtcd": ("ImageMeta (embedded)", "dataDir", "extraArgs"),
    "NodeRegistrationOptions": ("taints",),  # unset means defaulted; [] means no taints
    "Timeouts": ("upgradeManifests",),  # "Default: 5m"
    "KubeletConfiguration": ("enableServer", "reservedSystemCPUs", "logging", "containerRuntimeEndpoint"),
}

ENUMS = {
    ("NodeRegistrationOptions", "imagePullPolicy"): ("Always", "IfNotPresent", "Never"),
    ("Taint", "effect"): ("NoSchedule", "PreferNoSchedule", "NoExecute"),
    # Overview of the kubeadm page; the field description itself still says "RSA" or "ECDSA".
    ("ClusterConfiguration", "encryptionAlgorithm"): ("RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256"),
    ("HostPathMount", "pathType"): ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"),
    ("KubeletConfiguration", "cgroupDriver"): ("systemd", "cgroupfs"),
    ("KubeletConfiguration", "configMapAndSecretChangeDetectionStrategy"): ("Get", "Cache", "Watch"),
    ("KubeletConfiguration", "imagePullCredentialsVerificationPolicy"): (
        "NeverVerify", "NeverVerifyPreloadedImages", "NeverVerifyAllowlistedImages", "AlwaysVerify"),
    ("KubeletAuthorization", "mode"): ("AlwaysAllow", "Webhook"),
    ("MemorySwapConfiguration", "swapBehavior"): ("", "NoSwap", "LimitedSwap"),
}

# ---------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------

# Go's time.ParseDuration: "0", or a sequence of decimal numbers with units.
_DURATION = re.compile(r"^[-+]?(0|((\d+(\.\d*)?|\.\d+)(ns|us|\u00b5s|ms|s|m|h))+)$")


def _describe(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "map"
    return type(value).__name__


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_scalar(kind, value, path, problems):
    what = _describe(value)
    if kind == "any":
        return
    if kind == "str":
        if not isinstance(value, str):
            problems.append("%s: expected str, got %s (%r)" % (path, what, value))
    elif kind == "int":
        if not _is_int(value):
            problems.append("%s: expected int, got %s (%r)" % (path, what, value))
    elif kind == "float":
        if not (_is_int(value) or isinstance(value, float)):
            problems.append("%s: expected number, got %s (%r)" % (path, what, value))
    elif kind == "bool":
        if not isinstance(value, bool):
            problems.append("%s: expected bool, got %s (%r)" % (path, what, value))
    elif kind == "duration":
        if not isinstance(value, str):
            problems.append("%s: expected duration string (e.g. \"5m0s\"), got %s (%r)" % (path, what, value))
        elif not _DURATION.match(value):
            problems.append("%s: %r is not a Go duration (e.g. \"5m0s\", \"24h\")" % (path, value))
    elif kind == "time":
        if not isinstance(value, (str, datetime.datetime, datetime.date)):
            problems.append("%s: expected RFC 3339 time, got %s (%r)" % (path, what, value))
    elif kind == "list[str]":
        if not isinstance(value, list):
            problems.append("%s: expected list of str, got %s" % (path, what))
        else:
            for i, item in enumerate(value):
                _check_scalar("str", item, "%s[%d]" % (path, i), problems)
    elif kind.startswith("map[str]"):
        inner = kind[len("map[str]"):]
        if not isinstance(value, dict):
            problems.append("%s: expected map, got %s" % (path, what))
        else:
            for key, item in value.items():
                if not isinstance(key, str):
                    problems.append("%s: map key %r is not a str" % (path, key))
                _check_scalar(inner, item, "%s.%s" % (path, key), problems)
    else:  # pragma: no cover - a mistake in the tables above
        raise ValueError("unknown kind %r at %s" % (kind, path))


def _check_value(kind, value, path, problems):
    if value is None:
        return  # null is the Go zero value; required-ness is checked by the owner
    if isinstance(kind, tuple):
        shape, type_name = kind
        if shape == "object":
            _check_object(type_name, value, path, problems)
        elif not isinstance(value, list):
            problems.append("%s: expected list of %s, got %s" % (path, type_name, _describe(value)))
        else:
            for i, item in enumerate(value):
                _check_object(type_name, item, "%s[%d]" % (path, i), problems)
    else:
        _check_scalar(kind, value, path, problems)


def _check_object(type_name, value, path, problems, top_level=False):
    if not isinstance(value, dict):
        problems.append("%s: expected %s object, got %s" % (path, type_name, _describe(value)))
        return
    fields = TYPES[type_name]
    for key, item in value.items():
        if top_level and key in TYPE_META:
            continue
        if key not in fields:
            problems.append("%s.%s: unknown field of %s" % (path, key, type_name))
            continue
        sub = "%s.%s" % (path, key)
        _check_value(fields[key], item, sub, problems)
        allowed = ENUMS.get((type_name, key))
        if allowed is not None and isinstance(item, str) and item not in allowed:
            problems.append("%s: %r is not one of %s" % (sub, item, ", ".join(repr(a) for a in allowed)))
    for key in REQUIRED.get(type_name, ()):
        if value.get(key) is None:
            problems.append("%s.%s: required field of %s is missing" % (path, key, type_name))


def check(document):
    """Return the problems found in one parsed kubeadm/kubelet document (empty list when fine)."""
    if not isinstance(document, dict):
        return ["document: expected a map, got %s" % _describe(document)]
    kind = document.get("kind")
    api_version = document.get("apiVersion")
    if kind not in KINDS:
        return ["document: unknown kind %r (known: %s)" % (kind, ", ".join(sorted(KINDS)))]
    expected_api, type_name = KINDS[kind]
    problems = []
    if api_version != expected_api:
        problems.append("%s: apiVersion %r, expected %r" % (kind, api_version, expected_api))
    _check_object(type_name, document, kind, problems, top_level=True)
    return problems
