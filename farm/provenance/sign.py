"""Sign a finalized output with a C2PA manifest that says what the farm did to it.

The manifest (an edit of the input, which is its parent ingredient: the input's own
manifest, if it has one, travels inside it) holds the action c2pa.edited with the IPTC
digital source type for trained algorithmic media (or, for a pass-through job or one
where no face was found, a re-encode with no faces changed), the farm's version, the job
id, the models with their sha256, the frames and faces changed, and the consent reference. Signing only inserts the manifest box (MP4/MOV: a
`uuid` box, chunk offsets moved; AVI: a RIFF chunk); no sample is re-encoded.
Containers c2pa does not support (Matroska/WebM, MPEG-TS, NUT, 3GP) are published
unsigned, and the job says so.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from farm import __version__
from farm.errors import FarmError
from farm.provenance.keys import Credentials, load_credentials, signing_alg

log = logging.getLogger("farm.provenance")

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
"""IPTC digital source type: media created or altered by a trained model."""
FARM_ASSERTION = "org.farm.job"
"""Label of the manifest assertion that names the job, models and consent."""
SIGNED_MIME_BY_MUXER = {"mp4": "video/mp4", "ipod": "video/mp4", "mov": "video/quicktime", "avi": "video/x-msvideo"}
"""The output muxers whose files are signed, with the MIME type c2pa reads them as."""
INTEGRITY_NOT_IDENTITY = ("self-signed by this farm: the signature proves the file is unchanged since it was "
                          "signed (integrity), not who signed it (identity)")


class ProvenanceError(FarmError):
    """A manifest could not be made or signed (the job fails; nothing is published)."""


def manifest_definition(job: Any, title: str) -> dict[str, Any]:
    """The C2PA manifest definition for `job`'s output (a pure function of the job row)."""
    from farm.workers.finalize import changed_counts, face_job, faces_altered, output_label

    models = job.models or {}
    entries = [{"role": role, "name": m.get("name"), "sha256": m.get("sha256")}
               for role, m in (models.get("models") or {}).items()]
    altered, ran = faces_altered(job), face_job(job)
    counted = changed_counts(job)
    action: dict[str, Any] = {"action": "c2pa.edited",
                              "softwareAgent": {"name": "farm", "version": __version__},
                              "description": output_label(job)}
    if altered:
        action["digitalSourceType"] = TRAINED_ALGORITHMIC_MEDIA
    return {
        "claim_generator_info": [{"name": "farm", "version": __version__}],
        "title": title,
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": [action]}},
            {"label": FARM_ASSERTION, "data": {
                "farm_version": __version__, "job_id": job.id, "faces_altered": altered,
                "passthrough": not ran, "model_pack": models.get("pack") if ran else None,
                "demo_models": bool(models.get("demo")), "models": entries if ran else [],
                "frames_changed": counted[0] if counted else None,
                "faces_changed": counted[1] if counted else None,
                "consent": getattr(job, "consent", None)}},
        ],
    }


def sign_output(path: Path, source: Path, job: Any, muxer: str, settings: Any) -> str:
    """Sign the file at `path` in place (through a temporary file and a rename).

    `source` is the farm's copy of the input (the parent ingredient). Returns one line for
    the job's record: what was signed, with which credentials, or why the container was
    not. Raises ProvenanceError when signing fails.
    """
    mime = SIGNED_MIME_BY_MUXER.get(muxer)
    if mime is None:
        return f"not signed: c2pa cannot embed a manifest in a {muxer} file (signed: MP4, MOV, AVI)"
    import c2pa

    creds = load_credentials(settings)
    signed = path.with_name(f".{path.name}.c2pa.{os.getpid()}.tmp")
    try:
        builder = c2pa.Builder(manifest_definition(job, Path(job.output_path).name), context=_context())
        builder.set_intent(c2pa.C2paBuilderIntent.EDIT)
        with open(source, "rb") as src:
            builder.add_ingredient({"title": Path(job.input_path).name, "relationship": "parentOf"}, mime, src)
        with _signer(creds) as signer, open(path, "rb") as src, open(signed, "w+b") as dst:
            builder.sign(signer, mime, src, dst)
        signed.replace(path)
    except c2pa.C2paError as exc:
        raise ProvenanceError(f"cannot sign the output of job {job.id} with its C2PA manifest: {exc}",
                              hint="check FARM_C2PA_KEY/FARM_C2PA_CERT (or remove them to use a self-signed pair)") from None
    finally:
        signed.unlink(missing_ok=True)
    who = INTEGRITY_NOT_IDENTITY if creds.self_signed else f"signed with the certificate {creds.where}"
    return f"signed C2PA manifest ({who})"


def _context() -> Any:
    import c2pa

    return c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}},
                                   "verify": {"verify_after_sign": False, "remote_manifest_fetch": False,
                                              "ocsp_fetch": False}})


def _signer(creds: Credentials) -> Any:
    import c2pa

    info = c2pa.C2paSignerInfo(signing_alg(creds.key_pem), creds.cert_chain_pem, creds.key_pem, None)
    return c2pa.Signer.from_info(info)


def record_provenance(db: Any, job_id: str, note: str) -> None:
    """Keep what was signed (or why not) with the job: `farm status`, --json and the API show it."""
    from farm.state.db import Job

    with db.transaction() as s:
        job = s.get(Job, job_id)
        if job is not None:
            job.provenance = note
