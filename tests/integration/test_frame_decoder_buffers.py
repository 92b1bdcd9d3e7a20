"""A stage paints into a decoded frame's planes in place (Frame.from_av gives views). The
decoder may still hold that picture as the reference for the frames after it (H.264
P-frames), so painting it must never reach the decoder: from_av makes the frame writable
(a private copy when the decoder shares the buffer). Before, the next frames were decoded
from the painted picture, and a render differed from itself with the decode thread's
timing (tests/integration/test_worker_chunks.py failed under load). Real PyAV decode."""

from __future__ import annotations

import av
import numpy as np

from farm.pipeline.frame import Frame
from tests import clips


def _decoded(path, paint_first: bool) -> list[np.ndarray]:
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "NONE"   # one thread: the reference is reused at once, every run
        for i, av_frame in enumerate(container.decode(stream)):
            frame = Frame.from_av(av_frame, i)
            if paint_first and i == 0:
                for plane in frame.planes:
                    plane[...] = 0          # what a face stage does to a region, here to all of it
            out.append(frame.planes[0].copy())
    return out


def test_painting_a_decoded_frame_does_not_change_the_frames_decoded_after_it(tmp_path):
    clip = clips.make_clip(tmp_path / "p.mp4", width=160, height=96, seconds=0.3, gop=30, moving_face=True)
    clean = _decoded(clip, paint_first=False)
    painted = _decoded(clip, paint_first=True)
    assert len(clean) == len(painted) > 3
    assert not painted[0].any()
    for i in range(1, len(clean)):
        assert np.array_equal(clean[i], painted[i]), f"frame {i} was decoded from the painted picture"
