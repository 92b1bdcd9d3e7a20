"""Read and validate a file's C2PA manifest: `farm verify FILE` and the API's POST /verify.

Outcomes (exit codes): 0 the manifest is valid and nothing changed after signing; 1 it
is invalid or the file was changed after signing (a hash or signature mismatch); 2 the
file has no manifest (or is not a kind of file c2pa reads). A signer nobody trusts is
not a failure: the report says so ("integrity, not identity"). This farm's own
self-signed root counts as a trust anchor, so its outputs read as signed by this farm.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from farm.errors import EXIT_FAILED, EXIT_OK, EXIT_REFUSED
from farm.provenance.sign import FARM_ASSERTION, INTEGRITY_NOT_IDENTITY

UNTRUSTED_CODES = {"signingCredential.untrusted"}
"""Failure codes that say who signed cannot be vouched for, not that the file changed."""
_MIME_BY_SUFFIX = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".avi": "video/x-msvideo"}


@dataclass
class Report:
    """What a file's manifest says, and whether it holds."""

    path: str
    status: str                    # "valid" | "invalid" | "no manifest"
    exit_code: int
    signer: str | None = None      # the certificate's common name and issuer
    trusted: bool = False          # the signer chains to a trust anchor (c2pa's, or this farm's root)
    self_signed_farm: bool = False # ...and that anchor is this farm's self-signed root
    claim_generator: str | None = None
    job_id: str | None = None
    models: list[dict[str, Any]] = field(default_factory=list)
    model_pack: str | None = None
    passthrough: bool | None = None
    faces_altered: bool | None = None
    frames_changed: int | None = None   # frames where the job replaced a face (None: not counted)
    faces_changed: int | None = None
    consent: str | None = None
    actions: list[str] = field(default_factory=list)
    ingredients: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)   # why it is invalid (c2pa's explanations)
    caveat: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def mime_for(path: Path) -> str | None:
    """The MIME type c2pa reads `path` as, from its first bytes (and suffix within the MP4 family)."""
    from farm.media.formats import demuxer_for_head

    try:
        with open(path, "rb") as fh:
            head = fh.read(1024)
    except OSError:
        return None
    demuxer = demuxer_for_head(head)
    if demuxer == "mov":
        return _MIME_BY_SUFFIX.get(path.suffix.lower(), "video/mp4")
    if demuxer == "avi":
        return "video/x-msvideo"
    return None


def verify_file(path: Path, farm_root_pem: bytes | None = None) -> Report:
    """Validate the manifest of the file at `path`; `farm_root_pem`: this farm's self-signed root."""
    import c2pa

    mime = mime_for(path)
    if mime is None:
        return Report(str(path), "no manifest", EXIT_REFUSED,
                      problems=["not a file c2pa reads a manifest from (signed here: MP4, MOV, AVI)"])
    settings: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    if farm_root_pem:
        settings["trust"] = {"user_anchors": farm_root_pem.decode("ascii")}
    try:
        with open(path, "rb") as fh:
            reader = c2pa.Reader(mime, fh, context=c2pa.Context.from_dict(settings))
            store = json.loads(reader.json())
            results = reader.get_validation_results() or {}
    except c2pa.C2paError.ManifestNotFound:
        return Report(str(path), "no manifest", EXIT_REFUSED, problems=["the file carries no C2PA manifest"])
    except c2pa.C2paError as exc:
        return Report(str(path), "invalid", EXIT_FAILED, problems=[f"the manifest cannot be read: {exc}"])
    return _report(path, store, results, farm_root_pem)


def _report(path: Path, store: dict[str, Any], results: dict[str, Any], farm_root_pem: bytes | None) -> Report:
    active = (results.get("activeManifest") or {})
    failures = list(active.get("failure") or [])
    for ingredient in (results.get("ingredientDeltas") or []):
        failures += (ingredient.get("validationDeltas") or {}).get("failure") or []
    problems = [f"{f.get('code')}: {f.get('explanation')}" for f in failures if f.get("code") not in UNTRUSTED_CODES]
    success = {s.get("code"): s.get("explanation", "") for s in active.get("success") or []}
    trusted = "signingCredential.trusted" in success
    manifest = (store.get("manifests") or {}).get(store.get("active_manifest") or "", {})
    sig = manifest.get("signature_info") or {}
    report = Report(str(path), "invalid" if problems else "valid", EXIT_FAILED if problems else EXIT_OK,
                    signer=" / ".join(x for x in (sig.get("common_name"), sig.get("issuer")) if x) or None,
                    trusted=trusted, problems=problems)
    report.self_signed_farm = trusted and "user_anchors" in success.get("signingCredential.trusted", "") \
        and farm_root_pem is not None
    gen = manifest.get("claim_generator_info") or []
    report.claim_generator = " ".join(str(gen[0].get(k)) for k in ("name", "version") if gen[0].get(k)) if gen else None
    for assertion in manifest.get("assertions") or []:
        data = assertion.get("data") or {}
        if assertion.get("label", "").startswith("c2pa.actions"):
            report.actions += [a.get("action", "?") for a in data.get("actions") or []]
        elif assertion.get("label") == FARM_ASSERTION:
            report.job_id, report.consent = data.get("job_id"), data.get("consent")
            report.models, report.model_pack = list(data.get("models") or []), data.get("model_pack")
            report.passthrough, report.faces_altered = data.get("passthrough"), data.get("faces_altered")
            report.frames_changed, report.faces_changed = data.get("frames_changed"), data.get("faces_changed")
    report.ingredients = [str(i.get("title")) + (" (with its own manifest)" if i.get("active_manifest") else "")
                          for i in manifest.get("ingredients") or []]
    if report.self_signed_farm:
        report.caveat = INTEGRITY_NOT_IDENTITY
    elif not trusted:
        report.caveat = ("the signer is not on any trust list here: the signature proves the file is unchanged "
                         "since it was signed (integrity), not who signed it (identity)")
    return report


def report_lines(r: Report) -> list[str]:
    """The report as lines for a terminal: who made it, with what, from which job, what changed."""
    head = {"valid": "valid: nothing changed since it was signed", "no manifest": "no C2PA manifest",
            "invalid": "INVALID: the file was changed after signing, or its manifest is broken"}[r.status]
    lines = [f"{r.path}: {head}"]
    if r.signer:
        lines.append(f"signed by: {r.signer}" + (" (trusted)" if r.trusted and not r.self_signed_farm else ""))
    if r.claim_generator:
        lines.append(f"made by: {r.claim_generator}" + (f", job {r.job_id}" if r.job_id else ""))
    if r.actions:
        lines.append("actions: " + ", ".join(r.actions))
    if r.passthrough:
        lines.append("models: none (a pass-through re-encode: no faces were changed)")
    elif r.models or r.model_pack:
        lines.append(f"models ({r.model_pack or 'unknown pack'}): " +
                     "; ".join(f"{m.get('name')} sha256:{m.get('sha256') or 'unknown'}" for m in r.models))
    if not r.passthrough and r.faces_altered is False:
        lines.append("faces changed: none (no face found; unaltered)")
    elif r.faces_changed is not None:
        lines.append(f"faces changed: {r.faces_changed} in {r.frames_changed} frames")
    if r.consent:
        lines.append(f"consent: {r.consent}")
    if r.ingredients:
        lines.append("made from: " + ", ".join(r.ingredients))
    lines += [f"problem: {p}" for p in r.problems]
    if r.caveat:
        lines.append(f"note: {r.caveat}")
    return lines
