"""Kubernetes object shapes and API semantics for the API stand-in (``kube_standin.py``).

Pure functions, no I/O: the resource registry and discovery documents, ``Status`` errors, object builders
(Pods, Deployments, ReplicaSets, ...), pod states, label/field selectors, the three patch formats,
quantities, validation, and server-side ``Table`` rendering for ``kubectl get``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

Obj = dict[str, Any]

KUBE_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0",
    "gitCommit": "70d3cc986aa8221cd1dfb1121852688902d3bf53",
    "gitTreeState": "clean",
    "buildDate": "2024-12-11T17:59:15Z",
    "goVersion": "go1.23.3",
    "compiler": "gc",
    "platform": "linux/amd64",
}

# --------------------------------------------------------------------------------------------- errors

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_failure(code: int, message: str, reason: str | None = None, details: Obj | None = None) -> Obj:
    """A ``Status`` failure body as the API server writes it."""
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or REASONS.get(code, ""),
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


class ApiError(Exception):
    """Raised by request handling; turned into a ``Status`` response with ``code``."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        details: Obj | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "")
        self.details = details
        self.headers = headers or {}

    def body(self) -> Obj:
        return status_failure(self.code, self.message, self.reason, self.details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message, "BadRequest", {})


def not_found_path() -> ApiError:
    return ApiError(404, "the server could not find the requested resource", "NotFound", {})


# --------------------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Subresource:
    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str | None = None  # set when the subresource's kind lives in another group (Scale, Eviction)
    version: str | None = None


CRUD = ("create", "delete", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    generation: bool = False  # metadata.generation is maintained
    status_subresource: bool = True  # writes to the main resource leave .status alone
    fields: tuple[str, ...] = ()  # field selector labels beyond metadata.name / metadata.namespace
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``deployments.apps`` / ``pods``: how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def details(self, name: str, **extra: Any) -> Obj:
        details: Obj = {"name": name}
        if self.group:
            details["group"] = self.group
        details["kind"] = self.plural
        details.update(extra)
        return details

    def not_found(self, name: str) -> ApiError:
        return ApiError(404, f'{self.qualified} "{name}" not found', "NotFound", self.details(name))

    def conflict(self, name: str) -> ApiError:
        return ApiError(
            409,
            f'Operation cannot be fulfilled on {self.qualified} "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again",
            "Conflict",
            self.details(name),
        )

    def already_exists(self, name: str) -> ApiError:
        return ApiError(409, f'{self.qualified} "{name}" already exists', "AlreadyExists", self.details(name))

    def forbidden(self, name: str, why: str) -> ApiError:
        return ApiError(
            403, f'{self.qualified} "{name}" is forbidden: {why}', "Forbidden", self.details(name)
        )

    def invalid(self, name: str, causes: list[FieldError], kind: str | None = None) -> ApiError:
        return invalid_error(kind or self.qualified_kind, self.group, name, causes)


POD_FIELDS = (
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
)
EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)

RESOURCES: tuple[ResourceType, ...] = (
    ResourceType(
        "",
        "v1",
        "pods",
        "Pod",
        short_names=("po",),
        fields=POD_FIELDS,
        categories=("all",),
        subresources=(
            Subresource("eviction", "Eviction", ("create",), "policy", "v1"),
            Subresource("log", "Pod", ("get",)),
            Subresource("status", "Pod", ("get",)),
        ),
    ),
    ResourceType(
        "", "v1", "events", "Event", short_names=("ev",), status_subresource=False, fields=EVENT_FIELDS
    ),
    ResourceType(
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        short_names=("pvc",),
        subresources=(Subresource("status", "PersistentVolumeClaim", ("get",)),),
    ),
    ResourceType(
        "",
        "v1",
        "namespaces",
        "Namespace",
        namespaced=False,
        short_names=("ns",),
        fields=("status.phase",),
        subresources=(Subresource("status", "Namespace", ("get",)),),
    ),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        short_names=("deploy",),
        generation=True,
        categories=("all",),
        subresources=(
            Subresource("scale", "Scale", ("get", "patch", "update"), "autoscaling", "v1"),
            Subresource("status", "Deployment", ("get",)),
        ),
    ),
    ResourceType(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        short_names=("rs",),
        generation=True,
        categories=("all",),
        subresources=(Subresource("status", "ReplicaSet", ("get",)),),
    ),
    ResourceType(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        short_names=("hpa",),
        categories=("all",),
        subresources=(Subresource("status", "HorizontalPodAutoscaler", ("get",)),),
    ),
    ResourceType(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        short_names=("pdb",),
        generation=True,
        subresources=(Subresource("status", "PodDisruptionBudget", ("get",)),),
    ),
    ResourceType(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        short_names=("netpol",),
        generation=True,
        status_subresource=False,
    ),
    ResourceType(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "StorageClass",
        namespaced=False,
        short_names=("sc",),
        status_subresource=False,
    ),
)

GROUP_VERSIONS: tuple[tuple[str, str], ...] = tuple(dict.fromkeys((rt.group, rt.version) for rt in RESOURCES))


def resource_for(group: str, version: str, plural: str) -> ResourceType | None:
    for rt in RESOURCES:
        if (rt.group, rt.version, rt.plural) == (group, version, plural):
            return rt
    return None


def resource_by_name(kind: str) -> ResourceType:
    """Look a resource up by kind (``Deployment``), plural, singular or short name, case-insensitively."""
    wanted = kind.lower()
    for rt in RESOURCES:
        if wanted in {rt.kind.lower(), rt.plural, rt.singular, *rt.short_names}:
            return rt
    raise KeyError(f"unknown kind {kind!r}; known: {', '.join(rt.kind for rt in RESOURCES)}")


# --------------------------------------------------------------------------------------------- discovery


def api_versions(server_address: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _api_group(group: str) -> Obj:
    versions = [{"groupVersion": f"{g}/{v}", "version": v} for g, v in GROUP_VERSIONS if g == group]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def api_group_list() -> Obj:
    groups = [g for g in dict.fromkeys(g for g, _ in GROUP_VERSIONS) if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_api_group(g) for g in groups]}


def api_group(group: str) -> Obj | None:
    if not group or all(g != group for g, _ in GROUP_VERSIONS):
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_api_group(group)}


def api_resource_list(group: str, version: str) -> Obj | None:
    if (group, version) not in GROUP_VERSIONS:
        return None
    resources: list[Obj] = []
    for rt in RESOURCES:
        if (rt.group, rt.version) != (group, version):
            continue
        entry: Obj = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(CRUD),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        for sub in rt.subresources:
            sub_entry: Obj = {
                "name": f"{rt.plural}/{sub.name}",
                "singularName": "",
                "namespaced": rt.namespaced,
            }
            if sub.group is not None:
                sub_entry["group"] = sub.group
                sub_entry["version"] = sub.version
            sub_entry["kind"] = sub.kind
            sub_entry["verbs"] = list(sub.verbs)
            resources.append(sub_entry)
    body: Obj = {"kind": "APIResourceList"}
    if group:
        body["apiVersion"] = "v1"
    body["groupVersion"] = f"{group}/{version}" if group else version
    body["resources"] = resources
    return body


# --------------------------------------------------------------------------------------------- time, names


def now_ts() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand: no vowels, no 0/1/3


def safe_encode(data: bytes, length: int) -> str:
    number = int.from_bytes(data, "big")
    chars = []
    for _ in range(length):
        number, index = divmod(number, len(SAFE_ALPHABET))
        chars.append(SAFE_ALPHABET[index])
    return "".join(chars)


def _prune(value: Any) -> Any:
    """Drop None, empty maps and empty lists recursively (Go's omitempty makes them all equivalent)."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def template_hash(template: Obj) -> str:
    """The ``pod-template-hash`` of a pod template (stable across the pod-template-hash label itself)."""
    normalized = copy.deepcopy(template)
    metadata = normalized.get("metadata") or {}
    metadata.pop("creationTimestamp", None)
    (metadata.get("labels") or {}).pop("pod-template-hash", None)
    canonical = json.dumps(_prune(normalized), sort_keys=True, separators=(",", ":"))
    return safe_encode(hashlib.sha256(canonical.encode()).digest(), 10)


# --------------------------------------------------------------------------------------------- quantities

_QUANTITY = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?)$"
)
_SUFFIX = {
    None: Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}


def parse_quantity(value: str | int | float) -> Fraction:
    """``"10Gi"`` -> 10737418240; raises ``ValueError`` for what the API server would reject."""
    if isinstance(value, bool):
        raise ValueError(f"quantities must match the regular expression: {value!r}")
    if isinstance(value, int | float):
        return Fraction(value)
    match = _QUANTITY.match(str(value).strip())
    if match is None:
        raise ValueError(
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        )
    number, exponent, suffix = match.groups()
    result = Fraction(number) * _SUFFIX[suffix]
    if exponent:
        result *= Fraction(10) ** int(exponent[1:])
    return result


# --------------------------------------------------------------------------------------------- validation

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
    r"is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex "
    "used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


@dataclass(frozen=True)
class FieldError:
    field: str
    kind: str  # Invalid | Required | Forbidden | NotSupported
    detail: str = ""
    value: Any = None

    @property
    def reason(self) -> str:
        return {"Invalid": "FieldValueInvalid", "Required": "FieldValueRequired"}.get(
            self.kind, f"FieldValue{self.kind}"
        )

    @property
    def message(self) -> str:
        if self.kind == "Invalid":
            text = f"Invalid value: {go_repr(self.value)}"
        elif self.kind == "Required":
            text = "Required value"
        else:
            text = self.kind
        return f"{text}: {self.detail}" if self.detail else text


def go_repr(value: Any) -> str:
    """Roughly how Go's %#v / %v prints values in validation messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in value.items())
        return f"map[string]string{{{inner}}}"
    if value is None:
        return "null"
    return str(value)


def invalid_error(qualified_kind: str, group: str, name: str, causes: list[FieldError]) -> ApiError:
    parts = [f"{c.field}: {c.message}" for c in causes]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details: Obj = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = qualified_kind.split(".", 1)[0]
    details["causes"] = [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes]
    return ApiError(422, f'{qualified_kind} "{name}" is invalid: {summary}', "Invalid", details)


def validate_name(name: Any, *, label: bool = False) -> list[FieldError]:
    if not name:
        return [FieldError("metadata.name", "Required", "name or generateName is required")]
    pattern, limit, msg = (DNS1123_LABEL, 63, LABEL_MSG) if label else (DNS1123_SUBDOMAIN, 253, SUBDOMAIN_MSG)
    if not isinstance(name, str) or len(name) > limit or not pattern.match(name):
        return [FieldError("metadata.name", "Invalid", msg, name)]
    return []


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if labels is None:
        return errors
    if not isinstance(labels, dict):
        return [FieldError(path, "Invalid", "must be a map of strings", labels)]
    for key, value in labels.items():
        prefix, _, label_name = key.rpartition("/")
        if (prefix and not DNS1123_SUBDOMAIN.match(prefix)) or not label_name or len(label_name) > 63:
            errors.append(FieldError(path, "Invalid", "name part must be 63 characters or less", key))
        elif not LABEL_VALUE.match(label_name):
            errors.append(FieldError(path, "Invalid", "name part " + LABEL_VALUE_MSG[8:], key))
        if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
            errors.append(FieldError(path, "Invalid", LABEL_VALUE_MSG, value))
    return errors


def validate_metadata(obj: Obj, *, namespace_name: bool = False) -> list[FieldError]:
    metadata = obj.get("metadata") or {}
    return validate_name(metadata.get("name"), label=namespace_name) + validate_labels(
        metadata.get("labels"), "metadata.labels"
    )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_replicas(value: Any, path: str = "spec.replicas") -> list[FieldError]:
    if not _is_count(value) or value < 0:
        return [FieldError(path, "Invalid", "must be greater than or equal to 0", value)]
    return []


def validate_pod_spec(spec: Any, path: str) -> list[FieldError]:
    if not isinstance(spec, dict):
        return [FieldError(path, "Required")]
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return [FieldError(f"{path}.containers", "Required")]
    errors: list[FieldError] = []
    seen: set[str] = set()
    for index, container in enumerate(containers):
        where = f"{path}.containers[{index}]"
        cname = container.get("name") if isinstance(container, dict) else None
        if not cname:
            errors.append(FieldError(f"{where}.name", "Required"))
        elif not isinstance(cname, str) or not DNS1123_LABEL.match(cname) or len(cname) > 63:
            errors.append(FieldError(f"{where}.name", "Invalid", LABEL_MSG, cname))
        elif cname in seen:
            errors.append(FieldError(f"{where}.name", "Duplicate", "", cname))
        else:
            seen.add(cname)
        if not isinstance(container, dict) or not container.get("image"):
            errors.append(FieldError(f"{where}.image", "Required"))
    return errors


def _go_selector(selector: Any) -> str:
    labels = (selector or {}).get("matchLabels") or {}
    expressions = "[]v1.LabelSelectorRequirement(nil)"
    return f"v1.LabelSelector{{MatchLabels:{go_repr(labels)}, MatchExpressions:{expressions}}}"


def validate_deployment(new: Obj, old: Obj | None) -> list[FieldError]:
    spec = new.get("spec")
    if not isinstance(spec, dict):
        return [FieldError("spec", "Required")]
    errors = validate_metadata(new) + validate_replicas(spec.get("replicas"))
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        errors.append(
            FieldError(
                "spec.selector", "Invalid", "empty selector is invalid for deployment", _go_selector(selector)
            )
        )
        selector = None
    elif old is not None and _prune(selector) != _prune(old["spec"].get("selector")):
        errors.append(FieldError("spec.selector", "Invalid", "field is immutable", _go_selector(selector)))
    template = spec.get("template")
    if not isinstance(template, dict):
        return [*errors, FieldError("spec.template", "Required")]
    template_labels = (template.get("metadata") or {}).get("labels") or {}
    errors += validate_labels(template_labels, "spec.template.metadata.labels")
    if selector is not None:
        try:
            matches = label_selector_from_object(selector).matches(template_labels)
        except ValueError as exc:
            errors.append(FieldError("spec.selector", "Invalid", str(exc), _go_selector(selector)))
        else:
            if not matches:
                errors.append(
                    FieldError(
                        "spec.template.metadata.labels",
                        "Invalid",
                        "`selector` does not match template `labels`",
                        template_labels,
                    )
                )
    errors += validate_pod_spec(template.get("spec"), "spec.template.spec")
    restart = (template.get("spec") or {}).get("restartPolicy", "Always")
    if restart != "Always":
        errors.append(
            FieldError(
                "spec.template.spec.restartPolicy", "NotSupported", 'supported values: "Always"', restart
            )
        )
    return errors


# --------------------------------------------------------------------------------------------- selectors

_KEY = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_./]*")
_VALUE = re.compile(r"[-A-Za-z0-9_.]*")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # = != in notin exists !exists gt lt
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "!=":
            return not present or value != self.values[0]
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        try:
            number, bound = int(value or ""), int(self.values[0])
        except ValueError:
            return False
        return number > bound if self.op == "gt" else number < bound

    def __str__(self) -> str:
        if self.op in {"=", "!="}:
            return f"{self.key}{self.op}{self.values[0]}"
        if self.op in {"in", "notin"}:
            return f"{self.key} {self.op} ({','.join(sorted(self.values))})"
        if self.op == "exists":
            return self.key
        if self.op == "!exists":
            return f"!{self.key}"
        return f"{self.key}{'>' if self.op == 'gt' else '<'}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in sorted(self.requirements, key=lambda r: r.key))


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def at_end(self) -> bool:
        self.skip_ws()
        return self.pos >= len(self.text)

    def peek(self, literal: str) -> bool:
        self.skip_ws()
        return self.text.startswith(literal, self.pos)

    def take(self, literal: str) -> bool:
        if self.peek(literal):
            self.pos += len(literal)
            return True
        return False

    def regex(self, pattern: re.Pattern[str], what: str) -> str:
        self.skip_ws()
        match = pattern.match(self.text, self.pos)
        if match is None or (what == "key" and not match.group()):
            found = self.text[self.pos : self.pos + 1] or "end of string"
            raise ValueError(f"found '{found}', expected: {what}")
        self.pos = match.end()
        return match.group()

    def keyword(self, word: str) -> bool:
        self.skip_ws()
        end = self.pos + len(word)
        if self.text.startswith(word, self.pos) and (end == len(self.text) or self.text[end] in " \t(("):
            self.pos = end
            return True
        return False


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse the ``labelSelector`` query syntax; raises ``ValueError`` like the server's 400."""
    if text is None or not text.strip():
        return LabelSelector()
    scan = _Scanner(text)
    requirements: list[Requirement] = []
    while True:
        try:
            requirements.append(_parse_requirement(scan))
        except ValueError as exc:
            raise ValueError(f"unable to parse requirement: {exc}") from None
        if scan.at_end():
            return LabelSelector(tuple(requirements))
        if not scan.take(","):
            raise ValueError(f"found '{scan.text[scan.pos]}', expected: ',' or 'end of string'")


def _parse_requirement(scan: _Scanner) -> Requirement:
    if scan.take("!"):
        return Requirement(scan.regex(_KEY, "key"), "!exists")
    key = scan.regex(_KEY, "key")
    if scan.at_end() or scan.peek(","):
        return Requirement(key, "exists")
    for literal, op in (("==", "="), ("!=", "!="), ("=", "="), (">", "gt"), ("<", "lt")):
        if scan.take(literal):
            return Requirement(key, op, (_label_value(scan.regex(_VALUE, "value")),))
    for word in ("notin", "in"):
        if scan.keyword(word):
            if not scan.take("("):
                raise ValueError("found '" + scan.text[scan.pos : scan.pos + 1] + "', expected: '('")
            values = [_label_value(scan.regex(_VALUE, "value"))]
            while scan.take(","):
                values.append(_label_value(scan.regex(_VALUE, "value")))
            if not scan.take(")"):
                raise ValueError("found '" + scan.text[scan.pos : scan.pos + 1] + "', expected: ')'")
            return Requirement(key, word, tuple(values))
    raise ValueError(f"found '{scan.text[scan.pos : scan.pos + 1]}', expected: in, notin, =, ==, !=, gt, lt")


def _label_value(value: str) -> str:
    if len(value) > 63 or not LABEL_VALUE.match(value):
        raise ValueError(f'values[0][value]: Invalid value: "{value}": {LABEL_VALUE_MSG}')
    return value


def label_selector_from_object(selector: Obj | None) -> LabelSelector:
    """A ``metav1.LabelSelector`` (``matchLabels`` / ``matchExpressions``) as a ``LabelSelector``."""
    selector = selector or {}
    requirements = [Requirement(k, "=", (v,)) for k, v in (selector.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
    for expr in selector.get("matchExpressions") or []:
        op = ops.get(expr.get("operator"))
        if op is None:
            raise ValueError(f"{expr.get('operator')!r} is not a valid label selector operator")
        requirements.append(Requirement(expr["key"], op, tuple(expr.get("values") or ())))
    return LabelSelector(tuple(requirements))


@dataclass(frozen=True)
class FieldSelector:
    terms: tuple[tuple[str, str, str], ...] = ()  # (field, "=" | "!=", value)

    def matches(self, obj: Obj) -> bool:
        for field, op, value in self.terms:
            actual = field_value(obj, field)
            if (actual == value) != (op == "="):
                return False
        return True


def parse_field_selector(text: str | None, allowed: Iterable[str]) -> FieldSelector:
    """Parse ``fieldSelector``; raises ``ValueError`` for bad syntax or an unsupported field label."""
    if text is None or not text.strip():
        return FieldSelector()
    allowed = {"metadata.name", "metadata.namespace", *allowed}
    terms = []
    for part in re.split(r"(?<!\\),", text):
        match = re.match(r"^\s*([^=!\s]+)\s*(==|!=|=)(.*)$", part)
        if match is None:
            raise ValueError(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = match.groups()
        if field not in allowed:
            raise ValueError(f"field label not supported: {field}")
        terms.append((field, "!=" if op == "!=" else "=", value.strip().replace("\\,", ",")))
    return FieldSelector(tuple(terms))


def field_value(obj: Obj, field: str) -> str:
    if field == "source":
        value: Any = (obj.get("source") or {}).get("component", "")
    else:
        value = obj
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


# --------------------------------------------------------------------------------------------- patches


class PatchError(ValueError):
    """A patch that decodes but cannot be applied (422), or one that does not decode (400)."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.code = code


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: maps merge, ``null`` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# patchMergeKey of the lists kubectl and controllers patch (by field name; good enough for these kinds)
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "conditions": "type",
    "hostAliases": "ip",
    "resourceClaims": "name",
    "topologySpreadConstraints": "topologyKey",
}
PRIMITIVE_MERGE_LISTS = {"finalizers"}


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Strategic merge patch (the subset used by kubectl and client libraries).

    Maps merge recursively, ``null`` deletes a key, lists with a known merge key (``containers`` by
    ``name``, ``env`` by ``name``, ...) merge element-wise, other lists replace.  Directives: ``$patch:
    replace|delete`` (maps and list elements), ``$retainKeys``, ``$setElementOrder/<list>``,
    ``$deleteFromPrimitiveList/<list>``.
    """
    if not isinstance(patch, dict):
        return _strip_directives(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    if directive == "delete":
        return None
    if directive is not None:
        raise PatchError(f"Unknown patch type: {directive}", 400)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        current = result.get(key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(current if isinstance(current, dict) else {}, value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list) and key in MERGE_KEYS:
            result[key] = _merge_keyed_list(
                current if isinstance(current, list) else [], value, MERGE_KEYS[key]
            )
        elif isinstance(value, list) and key in PRIMITIVE_MERGE_LISTS and isinstance(current, list):
            result[key] = current + [v for v in value if v not in current]
        else:
            result[key] = _strip_directives(value)
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [v for v in result.get(name) or [] if v not in value]
        elif key.startswith("$setElementOrder/"):
            _reorder(result, key.split("/", 1)[1], value)
    if "$retainKeys" in patch:
        keep = set(patch["$retainKeys"])
        result = {k: v for k, v in result.items() if k in keep}
    return result


def _merge_keyed_list(current: list[Any], patch: list[Any], merge_key: str) -> list[Any]:
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [_strip_directives(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    result = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict):
            if item not in result:
                result.append(item)
            continue
        index = next(
            (
                i
                for i, e in enumerate(result)
                if isinstance(e, dict) and e.get(merge_key) == item.get(merge_key)
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(_strip_directives(item))
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


def _reorder(result: Obj, name: str, order: list[Any]) -> None:
    items = result.get(name)
    if not isinstance(items, list):
        return
    merge_key = MERGE_KEYS.get(name)

    def rank(item: Any) -> int:
        ident = {merge_key: item.get(merge_key)} if merge_key and isinstance(item, dict) else item
        for index, wanted in enumerate(order):
            if wanted == ident or (merge_key and isinstance(wanted, dict) and wanted.get(merge_key) == ident):
                return index
        return len(order)

    result[name] = sorted(items, key=rank)


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], op: str, path: str) -> tuple[Any, str]:
    """The container holding the last part of ``path``, and that last part."""
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise PatchError(f"{op} operation does not apply: doc is missing path: {path}: missing value")
    return node, parts[-1]


def _get_at(doc: Any, path: str, op: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    node, last = _walk(doc, parts, op, path)
    if isinstance(node, dict) and last in node:
        return node[last]
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        return node[int(last)]
    raise PatchError(f"{op} operation does not apply: doc is missing path: {path}: missing value")


def _remove_at(doc: Any, path: str, op: str) -> Any:
    parts = _pointer(path)
    node, last = _walk(doc, parts, op, path)
    if isinstance(node, dict) and last in node:
        return node.pop(last)
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        return node.pop(int(last))
    raise PatchError(f"{op} operation does not apply: doc is missing path: {path}: missing value")


def _add_at(doc: Any, path: str, value: Any, op: str, *, replace: bool = False) -> Any:
    parts = _pointer(path)
    if not parts:
        return copy.deepcopy(value)
    node, last = _walk(doc, parts, op, path)
    if isinstance(node, dict):
        if replace and last not in node:
            raise PatchError(f"replace operation does not apply: doc is missing key: {path}: missing value")
        node[last] = copy.deepcopy(value)
    elif isinstance(node, list):
        if last == "-" and not replace:
            node.append(copy.deepcopy(value))
        elif last.isdigit() and int(last) <= len(node) - (1 if replace else 0):
            if replace:
                node[int(last)] = copy.deepcopy(value)
            else:
                node.insert(int(last), copy.deepcopy(value))
        else:
            raise PatchError(f"{op} operation does not apply: index out of range: {path}")
    else:
        raise PatchError(f"{op} operation does not apply: doc is missing path: {path}: missing value")
    return doc


def json_patch(document: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(operations, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch", 400)
    doc = copy.deepcopy(document)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise PatchError(f"invalid JSON patch operation: {json.dumps(operation)}", 400)
        op, path = operation["op"], operation["path"]
        if op in {"add", "replace", "test"} and "value" not in operation:
            raise PatchError(f"{op} operation does not apply: missing value", 400)
        if op == "add":
            doc = _add_at(doc, path, operation["value"], op)
        elif op == "replace":
            doc = _add_at(doc, path, operation["value"], op, replace=True)
        elif op == "remove":
            _remove_at(doc, path, op)
        elif op == "move":
            value = _remove_at(doc, operation.get("from", ""), op)
            doc = _add_at(doc, path, value, op)
        elif op == "copy":
            doc = _add_at(doc, path, _get_at(doc, operation.get("from", ""), op), op)
        elif op == "test":
            if _get_at(doc, path, op) != operation["value"]:
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {op}", 400)
    return doc


PATCH_TYPES: dict[str, Callable[[Any, Any], Any]] = {
    "application/strategic-merge-patch+json": strategic_merge_patch,
    "application/merge-patch+json": merge_patch,
    "application/json-patch+json": json_patch,
}
UNSUPPORTED_MEDIA = (
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json"
)


# --------------------------------------------------------------------------------------------- builders


def owner_reference(owner: Obj) -> Obj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_of(obj: Obj) -> Obj | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def default_pod_spec(spec: Obj) -> Obj:
    for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        if not isinstance(container, dict):
            continue
        image = str(container.get("image", ""))
        tag = image.rsplit("/", 1)[-1]
        container.setdefault("resources", {})
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        pull = "Always" if (":" not in tag or tag.endswith(":latest")) and "@" not in tag else "IfNotPresent"
        container.setdefault("imagePullPolicy", pull)
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    return spec


def default_deployment(dep: Obj) -> Obj:
    spec = dep.setdefault("spec", {})
    if not isinstance(spec, dict):
        return dep
    spec.setdefault("replicas", 1)
    spec.setdefault(
        "strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    )
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    if spec.get("paused") is False:
        del spec["paused"]
    template = spec.setdefault("template", {})
    if isinstance(template, dict):
        if isinstance(template.setdefault("metadata", {}), dict):
            template["metadata"].setdefault("creationTimestamp", None)
        if isinstance(template.setdefault("spec", {}), dict):
            default_pod_spec(template["spec"])
    return dep


def new_metadata(namespace: str | None, name: str, uid: str, now: str, **extra: Any) -> Obj:
    metadata: Obj = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    metadata.update({"uid": uid, "resourceVersion": "", "creationTimestamp": now})
    metadata.update({k: v for k, v in extra.items() if v is not None})
    return metadata


def make_deployment(
    namespace: str,
    name: str,
    *,
    uid: str,
    now: str,
    replicas: int,
    labels: dict[str, str],
    containers: list[Obj],
    paused: bool,
) -> Obj:
    spec: Obj = {
        "replicas": replicas,
        "selector": {"matchLabels": dict(labels)},
        "template": {
            "metadata": {"creationTimestamp": None, "labels": dict(labels)},
            "spec": {"containers": copy.deepcopy(containers)},
        },
    }
    if paused:
        spec["paused"] = True
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": new_metadata(namespace, name, uid, now, generation=1, labels=dict(labels)),
        "spec": spec,
        "status": {},
    }
    return default_deployment(dep)


def percent_or_int(value: Any, total: int, *, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        scaled = Fraction(int(value[:-1]) * total, 100)
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(value or 0)


def make_replica_set(dep: Obj, *, pod_hash: str, revision: int, uid: str, now: str) -> Obj:
    template = copy.deepcopy(dep["spec"]["template"])
    template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = pod_hash
    selector = copy.deepcopy(dep["spec"]["selector"])
    selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
    metadata = dep["metadata"]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": new_metadata(
            metadata["namespace"],
            f"{metadata['name']}-{pod_hash}",
            uid,
            now,
            generation=1,
            labels=dict(template["metadata"]["labels"]),
            annotations={"deployment.kubernetes.io/revision": str(revision)},
            ownerReferences=[owner_reference(dep)],
        ),
        "spec": {"replicas": 0, "selector": selector, "template": template},
        "status": {"replicas": 0},
    }


def make_pod(rs: Obj, *, name: str, uid: str, now: str, node: str) -> Obj:
    template = rs["spec"]["template"]
    template_meta = template.get("metadata") or {}
    spec = copy.deepcopy(template.get("spec") or {})
    spec.update(
        {
            "serviceAccountName": spec.get("serviceAccountName", "default"),
            "serviceAccount": spec.get("serviceAccountName", "default"),
            "nodeName": node,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "tolerations": [
                {
                    "key": f"node.kubernetes.io/{t}",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                }
                for t in ("not-ready", "unreachable")
            ],
        }
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": new_metadata(
            rs["metadata"]["namespace"],
            name,
            uid,
            now,
            generateName=f"{rs['metadata']['name']}-",
            labels=dict(template_meta.get("labels") or {}),
            annotations=dict(template_meta["annotations"]) if template_meta.get("annotations") else None,
            ownerReferences=[owner_reference(rs)],
        ),
        "spec": spec,
        "status": {},
    }


def make_namespace(name: str, *, uid: str, now: str, labels: dict[str, str] | None = None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": new_metadata(
            None, name, uid, now, labels={"kubernetes.io/metadata.name": name, **(labels or {})}
        ),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def make_scale(dep: Obj) -> Obj:
    metadata = dep["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata["uid"],
            "resourceVersion": metadata["resourceVersion"],
            "creationTimestamp": metadata["creationTimestamp"],
        },
        "spec": {"replicas": dep["spec"].get("replicas", 0)},
        "status": {
            "replicas": dep.get("status", {}).get("replicas", 0),
            "selector": str(label_selector_from_object(dep["spec"].get("selector"))),
        },
    }


# --------------------------------------------------------------------------------------------- pod states

POD_STATES = ("running", "unready", "crashloop", "oomkilled", "imagepull", "pending")
UNSCHEDULABLE_MSG = (
    "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
    "3 No preemption victims found for incoming pod."
)


def _condition(
    conditions: list[Obj], type_: str, status: str, now: str, reason: str = "", message: str = ""
) -> Obj:
    previous = next((c for c in conditions if c.get("type") == type_), None)
    changed = previous is None or previous.get("status") != status
    condition: Obj = {
        "type": type_,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": now if changed else previous["lastTransitionTime"],  # type: ignore[index]
    }
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def container_id(seed: str) -> str:
    return "containerd://" + hashlib.sha256(seed.encode()).hexdigest()


def _container_status(
    pod: Obj, container: Obj, previous: Obj | None, state: str, now: str, restarts: int | None
) -> Obj:
    name, image = container["name"], container["image"]
    previous = previous or {}
    count = previous.get("restartCount", 0)
    started_at = (previous.get("state") or {}).get("running", {}).get("startedAt", now)
    status: Obj = {"name": name, "state": {}, "lastState": copy.deepcopy(previous.get("lastState") or {})}
    ident = f"{pod['metadata']['uid']}/{name}/{count}"
    image_id = "docker.io/" + image.split(":")[0] + "@sha256:" + hashlib.sha256(image.encode()).hexdigest()
    if state in {"running", "unready"}:
        status["state"] = {"running": {"startedAt": started_at}}
        status.update(ready=state == "running", restartCount=count, image=image, imageID=image_id)
        status.update(containerID=container_id(ident), started=True)
    elif state in {"crashloop", "oomkilled"}:
        count = restarts if restarts is not None else count + 1
        exit_code, reason = (137, "OOMKilled") if state == "oomkilled" else (1, "Error")
        status["state"] = {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off 5m0s restarting failed container={name} pod={pod['metadata']['name']}"
                f"_{pod['metadata'].get('namespace', '')}({pod['metadata']['uid']})",
            }
        }
        status["lastState"] = {
            "terminated": {
                "exitCode": exit_code,
                "reason": reason,
                "startedAt": now,
                "finishedAt": now,
                "containerID": container_id(ident),
            }
        }
        status.update(ready=False, restartCount=count, image=image, imageID=image_id)
        status.update(containerID=container_id(f"{ident}/{count}"), started=False)
    elif state == "imagepull":
        status["state"] = {
            "waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}
        }
        status.update(ready=False, restartCount=count, image=image, imageID="", started=False)
    if restarts is not None and state not in {"crashloop", "oomkilled"}:
        status["restartCount"] = restarts
    return status


def set_pod_status(
    pod: Obj,
    state: str,
    *,
    now: str,
    node: str,
    containers: set[str] | None = None,
    restarts: int | None = None,
) -> None:
    """Shape ``pod['status']`` (and ``spec.nodeName``) like the kubelet reports ``state``.

    ``containers`` limits a container-level state to those containers (others keep their status).
    """
    if state not in POD_STATES:
        raise ValueError(f"unknown pod state {state!r}; choose one of {', '.join(POD_STATES)}")
    spec = pod["spec"]
    status = pod.setdefault("status", {})
    conditions = status.get("conditions") or []
    qos = {"qosClass": status.get("qosClass", "BestEffort")}
    if state == "pending":
        spec.pop("nodeName", None)
        pod["status"] = {
            "phase": "Pending",
            "conditions": [
                _condition(conditions, "PodScheduled", "False", now, "Unschedulable", UNSCHEDULABLE_MSG)
            ],
            **qos,
        }
        return
    spec["nodeName"] = spec.get("nodeName") or node
    previous = {cs["name"]: cs for cs in status.get("containerStatuses") or []}
    statuses = []
    for container in spec["containers"]:
        name = container["name"]
        if containers is not None and name not in containers and name in previous:
            statuses.append(previous[name])
            continue
        old = previous.get(name)
        wanted = state
        if containers is not None and name not in containers:
            wanted = "running"
        statuses.append(_container_status(pod, container, old, wanted, now, restarts))
    not_ready = [cs["name"] for cs in statuses if not cs.get("ready")]
    ever_started = any(cs.get("started") or cs["lastState"] or cs["restartCount"] for cs in statuses)
    ready = "False" if not_ready else "True"
    why = (
        ("ContainersNotReady", f"containers with unready status: [{' '.join(not_ready)}]")
        if not_ready
        else ("", "")
    )
    digest = hashlib.sha256(pod["metadata"]["uid"].encode()).digest()
    host_ip = f"10.0.0.{10 + int(hashlib.sha256(spec['nodeName'].encode()).digest()[0]) % 200}"
    pod_ip = status.get("podIP") or f"10.244.{digest[0] % 250}.{digest[1] % 250 + 2}"
    pod["status"] = {
        "phase": "Running" if ever_started else "Pending",
        "conditions": [
            _condition(conditions, "PodReadyToStartContainers", "True", now),
            _condition(conditions, "Initialized", "True", now),
            _condition(conditions, "Ready", ready, now, *why),
            _condition(conditions, "ContainersReady", ready, now, *why),
            _condition(conditions, "PodScheduled", "True", now),
        ],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": status.get("startTime", now),
        "containerStatuses": statuses,
        **qos,
    }


def pod_is_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_display_status(pod: Obj) -> str:
    """The STATUS column of ``kubectl get pods``."""
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state:
            reason = state["terminated"].get("reason") or "Error"
    return reason


# --------------------------------------------------------------------------------------------- tables


def age(timestamp: str | None, now: datetime | None = None) -> str:
    if not timestamp:
        return "<unknown>"
    seconds = int(((now or datetime.now(UTC)) - parse_ts(timestamp)).total_seconds())
    seconds = max(seconds, 0)
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h{minutes % 60}m" if hours < 8 and minutes % 60 else f"{hours}h"
    return f"{hours // 24}d"


def _column(name: str, type_: str = "string", priority: int = 0, fmt: str = "") -> Obj:
    return {"name": name, "type": type_, "format": fmt, "description": name, "priority": priority}


def _pod_row(pod: Obj) -> list[Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    ready = sum(1 for cs in statuses if cs.get("ready"))
    restarts = sum(cs.get("restartCount", 0) for cs in statuses)
    return [
        pod["metadata"]["name"],
        f"{ready}/{len(pod['spec'].get('containers') or [])}",
        pod_display_status(pod),
        str(restarts),
        age(pod["metadata"].get("creationTimestamp")),
        (pod.get("status") or {}).get("podIP") or "<none>",
        pod["spec"].get("nodeName") or "<none>",
    ]


def _deployment_row(dep: Obj) -> list[Any]:
    status = dep.get("status") or {}
    containers = dep["spec"]["template"]["spec"].get("containers") or []
    return [
        dep["metadata"]["name"],
        f"{status.get('readyReplicas', 0)}/{dep['spec'].get('replicas', 0)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        age(dep["metadata"].get("creationTimestamp")),
        ",".join(c["name"] for c in containers),
        ",".join(c["image"] for c in containers),
        str(label_selector_from_object(dep["spec"].get("selector"))),
    ]


def _replica_set_row(rs: Obj) -> list[Any]:
    status = rs.get("status") or {}
    return [
        rs["metadata"]["name"],
        rs["spec"].get("replicas", 0),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        age(rs["metadata"].get("creationTimestamp")),
    ]


def _event_row(event: Obj) -> list[Any]:
    involved = event.get("involvedObject") or {}
    return [
        age(event.get("lastTimestamp") or event["metadata"].get("creationTimestamp")),
        event.get("type", ""),
        event.get("reason", ""),
        f"{(involved.get('kind') or '').lower()}/{involved.get('name', '')}",
        event.get("message", ""),
    ]


def _pvc_row(pvc: Obj) -> list[Any]:
    spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
    return [
        pvc["metadata"]["name"],
        status.get("phase", ""),
        spec.get("volumeName", ""),
        (status.get("capacity") or {}).get("storage", ""),
        ",".join(
            {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX"}.get(m, m)
            for m in status.get("accessModes") or []
        ),
        spec.get("storageClassName", ""),
        age(pvc["metadata"].get("creationTimestamp")),
    ]


def _hpa_row(hpa: Obj) -> list[Any]:
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    return [
        hpa["metadata"]["name"],
        f"{ref.get('kind')}/{ref.get('name')}",
        "<unknown>",
        spec.get("minReplicas", 1),
        spec.get("maxReplicas", 0),
        status.get("currentReplicas", 0),
        age(hpa["metadata"].get("creationTimestamp")),
    ]


def _pdb_row(pdb: Obj) -> list[Any]:
    spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
    return [
        pdb["metadata"]["name"],
        str(spec.get("minAvailable", "N/A")),
        str(spec.get("maxUnavailable", "N/A")),
        status.get("disruptionsAllowed", 0),
        age(pdb["metadata"].get("creationTimestamp")),
    ]


def _namespace_row(namespace: Obj) -> list[Any]:
    return [
        namespace["metadata"]["name"],
        (namespace.get("status") or {}).get("phase", ""),
        age(namespace["metadata"].get("creationTimestamp")),
    ]


def _storage_class_row(sc: Obj) -> list[Any]:
    return [
        sc["metadata"]["name"],
        sc.get("provisioner", ""),
        sc.get("reclaimPolicy", ""),
        sc.get("volumeBindingMode", ""),
        "true" if sc.get("allowVolumeExpansion") else "false",
        age(sc["metadata"].get("creationTimestamp")),
    ]


_TABLES: dict[str, tuple[list[Obj], Callable[[Obj], list[Any]]]] = {
    "events": (
        [_column("Last Seen"), _column("Type"), _column("Reason"), _column("Object"), _column("Message")],
        _event_row,
    ),
    "persistentvolumeclaims": (
        [
            _column("Name", fmt="name"),
            _column("Status"),
            _column("Volume"),
            _column("Capacity"),
            _column("Access Modes"),
            _column("StorageClass"),
            _column("Age"),
        ],
        _pvc_row,
    ),
    "horizontalpodautoscalers": (
        [
            _column("Name", fmt="name"),
            _column("Reference"),
            _column("Targets"),
            _column("MinPods", "integer"),
            _column("MaxPods", "integer"),
            _column("Replicas", "integer"),
            _column("Age"),
        ],
        _hpa_row,
    ),
    "poddisruptionbudgets": (
        [
            _column("Name", fmt="name"),
            _column("Min Available"),
            _column("Max Unavailable"),
            _column("Allowed Disruptions", "integer"),
            _column("Age"),
        ],
        _pdb_row,
    ),
    "namespaces": ([_column("Name", fmt="name"), _column("Status"), _column("Age")], _namespace_row),
    "storageclasses": (
        [
            _column("Name", fmt="name"),
            _column("Provisioner"),
            _column("ReclaimPolicy"),
            _column("VolumeBindingMode"),
            _column("AllowVolumeExpansion"),
            _column("Age"),
        ],
        _storage_class_row,
    ),
    "pods": (
        [
            _column("Name", fmt="name"),
            _column("Ready"),
            _column("Status"),
            _column("Restarts"),
            _column("Age"),
            _column("IP", priority=1),
            _column("Node", priority=1),
        ],
        _pod_row,
    ),
    "deployments": (
        [
            _column("Name", fmt="name"),
            _column("Ready"),
            _column("Up-to-date", "integer"),
            _column("Available", "integer"),
            _column("Age"),
            _column("Containers", priority=1),
            _column("Images", priority=1),
            _column("Selector", priority=1),
        ],
        _deployment_row,
    ),
    "replicasets": (
        [
            _column("Name", fmt="name"),
            _column("Desired", "integer"),
            _column("Current", "integer"),
            _column("Ready", "integer"),
            _column("Age"),
        ],
        _replica_set_row,
    ),
}


def to_table(rt: ResourceType, objects: list[Obj], resource_version: str, *, include_object: str) -> Obj:
    """A ``meta.k8s.io/v1`` ``Table`` as the server renders it for ``kubectl get`` (human output)."""
    columns, row = _TABLES.get(
        rt.plural,
        (
            [_column("Name", fmt="name"), _column("Age")],
            lambda o: [o["metadata"]["name"], age(o["metadata"].get("creationTimestamp"))],
        ),
    )
    rows = []
    for obj in objects:
        if include_object == "Object":
            embedded: Obj | None = obj
        elif include_object == "None":
            embedded = None
        else:
            embedded = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append({"cells": row(obj), "object": embedded})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    }
