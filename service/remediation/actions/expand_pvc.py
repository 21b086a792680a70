"""``kube.expand_pvc`` (approval-only): grow a PersistentVolumeClaim of the target's namespace.

Params: ``claim`` (a DNS-1123 name), ``size`` (a Kubernetes quantity such as ``100Gi``, validated when rules
load). Sends the patch ``kubectl patch pvc`` would: ``spec.resources.requests.storage`` set to ``size``; the
CSI resizer then grows the volume (and the filesystem, on the next mount or online).

Refuses: no such claim; a claim that is not Bound; a ``size`` not above the current capacity (volumes never
shrink) or not above a resize already requested; a claim without a StorageClass, or whose StorageClass does
not set ``allowVolumeExpansion: true``.
Result: ``claim``, ``from`` (capacity before), ``to``, ``storage_class``.
Never shrinks, never touches the PersistentVolume or the StorageClass, never recreates a claim.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Annotated, Any

from pydantic import AfterValidator

from service.clients import kube as kube_client
from service.clients import kube_fields
from service.matching import names
from service.remediation.actions import common
from service.remediation.base import ActionContext, Outcome, Params, Request, action

_SUFFIXES = {
    "": Fraction(1),
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
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?")
_API_QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]+)?)(?:[eE]([+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?)")


def bytes_of(quantity: str) -> Fraction | None:
    """A quantity as the API shows it (``10Gi``, ``10737418240``, ``1e9``) in bytes; None if unreadable."""
    match = _API_QUANTITY.fullmatch(quantity.strip())
    if match is None:
        return None
    number, exponent, suffix = match.groups()
    if exponent is not None:
        return Fraction(number) * Fraction(10) ** int(exponent)
    if suffix == "m":
        return Fraction(number) / 1000
    return Fraction(number) * _SUFFIXES[suffix or ""]


def _check_size(value: str) -> str:
    if _SIZE.fullmatch(value) is None or not bytes_of(value):
        raise ValueError(f"size {value!r} is not a storage quantity such as 100Gi, 500Mi or 2Ti")
    return value


#: A storage size: a positive decimal number and an optional binary (Ki…Ei) or decimal (k…E) suffix.
Size = Annotated[str, AfterValidator(_check_size)]


class ExpandPvcParams(Params):
    claim: names.Name
    size: Size


def expand_patch(size: str) -> dict[str, Any]:
    return {"spec": {"resources": {"requests": {"storage": size}}}}


async def check(ctx: ActionContext, params: ExpandPvcParams) -> tuple[str, str]:
    """``(current capacity, storage class)`` when growing the claim is possible; else refused."""
    kube = common.kube_of(ctx)
    namespace = ctx.target.namespace
    claims = await kube.list_pvcs(namespace, timeout=ctx.timeout_s)
    claim = next((c for c in claims if kube_fields.name(c) == params.claim), None)
    if claim is None:
        raise common.refuse(f"no PersistentVolumeClaim {params.claim} in namespace {namespace}")
    spec, status = claim.get("spec") or {}, claim.get("status") or {}
    if status.get("phase") != "Bound":
        raise common.refuse(
            f"claim {params.claim} is {status.get('phase') or 'not bound'}: only a bound claim grows"
        )
    requested = str(((spec.get("resources") or {}).get("requests") or {}).get("storage") or "")
    capacity = str((status.get("capacity") or {}).get("storage") or requested)
    wanted, have, asked = bytes_of(params.size), bytes_of(capacity), bytes_of(requested)
    if wanted is None or have is None:
        raise common.refuse(f"cannot read the size of claim {params.claim} ({capacity!r})")
    if wanted < have:
        raise common.refuse(
            f"claim {params.claim} has {capacity}: {params.size} would shrink it (volumes never shrink)"
        )
    if wanted == have:
        raise common.refuse(f"claim {params.claim} already has {capacity}")
    if asked is not None and wanted <= asked:
        raise common.refuse(f"claim {params.claim} already requests {requested} (a resize is pending)")
    storage_class = str(spec.get("storageClassName") or "")
    if not storage_class:
        raise common.refuse(f"claim {params.claim} has no StorageClass: it cannot be expanded")
    try:
        found = await kube.read_storage_class(storage_class, timeout=ctx.timeout_s)
    except kube_client.NotFound:
        raise common.refuse(f"StorageClass {storage_class} of claim {params.claim} does not exist") from None
    if found.get("allowVolumeExpansion") is not True:
        raise common.refuse(f"StorageClass {storage_class} does not allow volume expansion")
    return capacity, storage_class


async def preflight(ctx: ActionContext, params: ExpandPvcParams) -> str | None:
    return await common.refusal(check(ctx, params))


@action("kube.expand_pvc", ExpandPvcParams, safe_capable=False, preflight=preflight)
async def expand_pvc(ctx: ActionContext, params: ExpandPvcParams) -> Outcome:
    kube = common.kube_of(ctx)
    capacity, storage_class = await check(ctx, params)
    namespace = ctx.target.namespace
    body = expand_patch(params.size)
    request = Request("PATCH", common.pvc_path(namespace, params.claim), body, kube_client.STRATEGIC_MERGE)
    facts = {"claim": params.claim, "from": capacity, "to": params.size, "storage_class": storage_class}
    what = f"expand claim {namespace}/{params.claim} from {capacity} to {params.size}"
    if ctx.dry_run:
        return common.dry_run(what, [request], **facts)
    patched = await kube.patch_pvc(namespace, params.claim, body, timeout=ctx.timeout_s)
    facts["to"] = str(
        (((patched.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
    )
    summary = f"expanding claim {namespace}/{params.claim} from {capacity} to {facts['to']} ({storage_class})"
    return Outcome(ok=True, summary=summary, requests=[request], result=facts)


ACTIONS = (expand_pvc,)
