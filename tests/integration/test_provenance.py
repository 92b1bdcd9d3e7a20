"""farm.provenance on real files with the real c2pa library: the self-signed pair (made once,
0600, a CA root and a non-CA signer), the manifest's contents, signing only adds a box,
tamper detection (a flipped media byte, a flipped manifest byte), and no-manifest files."""

from __future__ import annotations

import json
import multiprocessing
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509

from farm.errors import ConfigError
from farm.provenance import keys
from farm.provenance.check import verify_file
from farm.provenance.sign import TRAINED_ALGORITHMIC_MEDIA, manifest_definition, sign_output
from tests import clips
from tests.provenance_bytes import flip_media_byte, top_boxes

SHA = "ab" * 32


def demo_job(**changes):
    job = dict(id="job123", input_path="/in/talk.mp4", output_path="/out/talk.farm.mp4", consent="REL-7",
               options={"faces": "all"},
               models={"pack": "demo", "demo": True, "models": {"swapper": {"name": "demo-inswapper_128", "sha256": SHA}}})
    job.update(changes)
    return SimpleNamespace(**job)


def settings_for(home: Path, **extra):
    return SimpleNamespace(home=home, c2pa_key=extra.get("key"), c2pa_cert=extra.get("cert"))


def test_self_signed_pair_is_a_ca_root_and_a_signer_leaf_readable_by_the_owner_only(tmp_path):
    creds = keys.ensure_self_signed(tmp_path / "c2pa")
    assert creds.self_signed and b"PRIVATE KEY" in creds.key_pem and "PRIVATE" not in repr(creds)
    for name in (keys.KEY_FILE, keys.CHAIN_FILE, keys.ROOT_FILE):
        assert stat.S_IMODE((tmp_path / "c2pa" / name).stat().st_mode) == 0o600
    leaf, root = x509.load_pem_x509_certificates(creds.cert_chain_pem)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert leaf.issuer == root.subject
    assert keys.ensure_self_signed(tmp_path / "c2pa").key_pem == creds.key_pem   # made once, then reused


def _first_use(folder: str, queue) -> None:
    queue.put(keys.ensure_self_signed(Path(folder)).key_pem)


def test_concurrent_first_uses_make_one_pair(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_first_use, args=(str(tmp_path / "c2pa"), queue)) for _ in range(4)]
    for p in procs:
        p.start()
    got = {queue.get(timeout=60) for _ in procs}
    for p in procs:
        p.join(60)
    assert len(got) == 1


def test_only_one_of_key_and_cert_configured_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="FARM_C2PA_KEY is set but FARM_C2PA_CERT is not"):
        keys.load_credentials(settings_for(tmp_path, key=tmp_path / "k.pem"))


def test_manifest_says_edited_with_ai_job_models_and_consent():
    manifest = manifest_definition(demo_job(), "talk.farm.mp4")
    action = manifest["assertions"][0]["data"]["actions"][0]
    assert action["action"] == "c2pa.edited" and action["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    farm = manifest["assertions"][1]["data"]
    assert farm["job_id"] == "job123" and farm["consent"] == "REL-7" and not farm["passthrough"]
    assert farm["models"] == [{"role": "swapper", "name": "demo-inswapper_128", "sha256": SHA}]


def test_passthrough_manifest_says_no_faces_changed():
    manifest = manifest_definition(demo_job(models={}, options={"faces": "off"}), "x.mp4")
    action = manifest["assertions"][0]["data"]["actions"][0]
    assert "digitalSourceType" not in action and "no faces were changed" in action["description"]
    assert manifest["assertions"][1]["data"]["passthrough"] is True


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("signed")
    src = clips.make_clip(folder / "talk.mp4", seconds=1.0, audio_tracks=1)
    out = folder / "out.mp4"
    out.write_bytes(src.read_bytes())
    note = sign_output(out, src, demo_job(), "mp4", settings_for(folder / "home"))
    root = (folder / "home" / "c2pa" / keys.ROOT_FILE).read_bytes()
    return SimpleNamespace(src=src, out=out, note=note, root=root, folder=folder)


def test_signing_adds_one_box_and_keeps_every_frame(signed):
    assert "integrity" in signed.note
    before = [b[0] for b in top_boxes(signed.src.read_bytes())]
    after = [b[0] for b in top_boxes(signed.out.read_bytes())]
    assert [b for b in after if b != "uuid"] == before and after.count("uuid") == 1
    src_mdat = next(b for b in top_boxes(signed.src.read_bytes()) if b[0] == "mdat")
    out_mdat = next(b for b in top_boxes(signed.out.read_bytes()) if b[0] == "mdat")
    assert signed.src.read_bytes()[src_mdat[1]:src_mdat[1] + src_mdat[2]] == \
        signed.out.read_bytes()[out_mdat[1]:out_mdat[1] + out_mdat[2]]   # the media data, byte for byte


def test_signed_output_verifies_naming_job_models_consent_and_the_caveat(signed):
    report = verify_file(signed.out, signed.root)
    assert (report.status, report.exit_code) == ("valid", 0), report.problems
    assert report.job_id == "job123" and report.consent == "REL-7" and report.self_signed_farm
    assert report.models[0]["sha256"] == SHA and "c2pa.edited" in report.actions
    assert "integrity" in report.caveat and "identity" in report.caveat
    elsewhere = verify_file(signed.out)   # a machine without this farm's root: still valid, untrusted
    assert elsewhere.exit_code == 0 and not elsewhere.trusted and "identity" in elsewhere.caveat


def test_one_flipped_media_byte_is_rejected(signed):
    flip_media_byte(signed.out, signed.folder / "tampered.mp4")
    report = verify_file(signed.folder / "tampered.mp4", signed.root)
    assert (report.status, report.exit_code) == ("invalid", 1)
    assert any("mismatch" in p for p in report.problems)


def test_a_flipped_manifest_byte_is_rejected(signed):
    data = bytearray(signed.out.read_bytes())
    kind, at, size, header = next(b for b in top_boxes(bytes(data)) if b[0] == "uuid")
    data[at + size - 40] ^= 0x01   # inside the signature, at the end of the manifest store
    (signed.folder / "bad-sig.mp4").write_bytes(bytes(data))
    assert verify_file(signed.folder / "bad-sig.mp4", signed.root).exit_code == 1


def test_input_manifest_travels_as_an_ingredient(signed):
    again = signed.folder / "again.mp4"
    again.write_bytes(signed.out.read_bytes())
    sign_output(again, signed.out, demo_job(id="job456"), "mp4", settings_for(signed.folder / "home"))
    report = verify_file(again, signed.root)
    assert report.exit_code == 0 and report.job_id == "job456"
    assert report.ingredients == ["talk.mp4 (with its own manifest)"]


def test_no_manifest_and_unsupported_containers_exit_2(signed, tmp_path):
    assert verify_file(signed.src).exit_code == 2
    mkv = clips.make_clip(tmp_path / "c.mkv", seconds=0.5)
    assert verify_file(mkv).exit_code == 2
    assert sign_output(mkv, mkv, demo_job(), "matroska", settings_for(tmp_path)).startswith("not signed")


def test_the_key_never_appears_in_the_report_or_the_note(signed):
    key = (signed.folder / "home" / "c2pa" / keys.KEY_FILE).read_text()
    body = "".join(line for line in key.splitlines() if "-----" not in line)
    text = json.dumps(verify_file(signed.out, signed.root).as_json()) + signed.note
    assert body[:40] not in text and "PRIVATE KEY" not in text
