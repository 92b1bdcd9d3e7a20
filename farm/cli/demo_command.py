"""`farm demo`: make a sample clip with a real face, preview one frame and run it through
the farm, boosted and masked (DEMO_FACE_OPTIONS), with the demo models.

The face is the astronaut photograph that ships inside scikit-image; the clip is
encoded in-process with PyAV (H.264 + AAC), so the demo needs no download.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

SAMPLE_SIZE = (640, 360)    # pixels
SAMPLE_FPS = 30
SAMPLE_SECONDS = 4.0
AUDIO_RATE = 48_000         # Hz

DEMO_FACE_OPTIONS = {"pixel_boost": "256", "mask": "box,occlusion", "models": "demo"}
"""What the demo's preview and job both use: the swapper at twice its size (pixel boost),
the box mask combined with the occluder's, the demo stand-in models."""


def face_image() -> np.ndarray:
    """The astronaut's head and shoulders, BGR uint8."""
    from skimage import data

    rgb = data.astronaut()[0:260, 120:340]
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def write_face_image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), face_image())
    return path


def _background(w: int, h: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    bg = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) * 127 // (w + h)) + 64], axis=-1)
    return bg.astype(np.uint8)


def write_sample_video(path: Path, seconds: float = SAMPLE_SECONDS) -> Path:
    """A clip with the face moving over a gradient, and a 440 Hz tone (H.264/AAC, mp4)."""
    w, h = SAMPLE_SIZE
    face = cv2.resize(face_image(), (int(h * 0.55 * 220 / 260), int(h * 0.55)))
    fh, fw = face.shape[:2]
    bg = _background(w, h)
    frames = int(seconds * SAMPLE_FPS)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    with av.open(str(tmp), "w") as out:
        vs = out.add_stream("libx264", rate=SAMPLE_FPS, options={"preset": "veryfast", "crf": "20"})
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        aus = out.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        for i in range(frames):
            img = bg.copy()
            x = int((w - fw) * (0.5 + 0.4 * math.sin(2 * math.pi * i / frames)))
            y = (h - fh) // 2
            img[y:y + fh, x:x + fw] = face
            frame = av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, SAMPLE_FPS)
            out.mux(vs.encode(frame))
        out.mux(vs.encode())
        samples = int(seconds * AUDIO_RATE)
        t = np.arange(samples) / AUDIO_RATE
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for start in range(0, samples, 1024):
            block = tone[start:start + 1024].reshape(1, -1)
            af = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
            af.sample_rate, af.pts = AUDIO_RATE, start
            out.mux(aus.encode(af))
        out.mux(aus.encode())
    tmp.replace(path)
    return path


def write_preview(video: Path, face: Path, out: Path, settings: object) -> Path:
    """The preview PNG of the sample's first frame with the demo's options (what the job renders)."""
    from farm.jobs.preview import render_preview, write_png
    from farm.jobs.preview_sheet import render_sheet
    from farm.jobs.spec import check_options

    options = check_options({"source": [str(face)], **DEMO_FACE_OPTIONS}, "farm demo")
    _, data = render_sheet(render_preview(video, options, settings))
    write_png(out, data, overwrite=True)
    return out
