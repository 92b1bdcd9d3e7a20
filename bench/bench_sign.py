"""Benchmark: C2PA signing of a 10 s 4K output, against a stream-copy remux of the same file.

    .venv/bin/python bench/bench_sign.py [--seconds 10] [--runs 5]

Makes a 3840x2160 30 fps H.264 + AAC MP4 with ffmpeg (fast x264 settings: the size and
box layout matter, not the picture), then alternates two steps on it:
  sign   farm.provenance.sign.sign_output as finalize runs it (the input as parent
         ingredient, self-signed credentials already made, write to a temporary file,
         rename), then verify_file on the result
  remux  `ffmpeg -i in.mp4 -map 0 -c copy out.mp4`: the cheapest pass over the same bytes
and prints each step's median in ms and the ratio sign / remux. The goal is under 2 s per
job for signing; signing never re-encodes (the media data is checked to be unchanged).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace

from _util import alternate, header, median


def make_4k(path: Path, seconds: float) -> Path:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=3840x2160:rate=30:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "40M", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", str(path)], check=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    import imageio_ffmpeg

    from farm.provenance.check import verify_file
    from farm.provenance.keys import ROOT_FILE, ensure_self_signed
    from farm.provenance.sign import sign_output

    header("C2PA signing of a 4K output vs a stream-copy remux")
    with tempfile.TemporaryDirectory(prefix="bench-sign-") as tmp:
        folder = Path(tmp)
        src = make_4k(folder / "in.mp4", args.seconds)
        print(f"input:   {src.stat().st_size / 1e6:.1f} MB, 3840x2160 30 fps, {args.seconds:g} s")
        home = folder / "home"
        ensure_self_signed(home / "c2pa")   # made once per farm: not part of a job's cost
        settings = SimpleNamespace(home=home, c2pa_key=None, c2pa_cert=None)
        job = SimpleNamespace(id="bench", input_path=str(src), output_path=str(folder / "out.mp4"), consent="bench",
                              options={"faces": "all"}, models={"pack": "demo", "demo": True, "models": {}})
        out, copy = folder / "out.mp4", folder / "copy.mp4"

        def sign() -> None:
            shutil.copyfile(src, out)   # a fresh unsigned output each run (the copy is outside the timing below)
            sign_output(out, src, job, "mp4", settings)

        def remux() -> None:
            subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(src), "-map", "0",
                            "-c", "copy", str(copy)], check=True)

        copy_s, _ = alternate(lambda: shutil.copyfile(src, out), lambda: None, args.runs)
        sign_s, remux_s = alternate(sign, remux, args.runs)
        sign_ms = max(0.0, median(sign_s) - median(copy_s)) * 1000
        report = verify_file(out, (home / "c2pa" / ROOT_FILE).read_bytes())
        assert report.exit_code == 0, report.problems
        print(f"sign:    {sign_ms:.0f} ms (median of {args.runs}; the file copy before each run, "
              f"{median(copy_s) * 1000:.0f} ms, subtracted)")
        print(f"remux:   {median(remux_s) * 1000:.0f} ms (median of {args.runs})")
        print(f"ratio:   {sign_ms / (median(remux_s) * 1000):.2f} (sign / remux)")
        print(f"size:    +{out.stat().st_size - src.stat().st_size} bytes; verified: {report.status}")


if __name__ == "__main__":
    main()
