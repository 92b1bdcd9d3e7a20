"""Media layer: probe, plan, split, per-chunk transcode, join and verify.

The usual path of one job (see docs/interfaces.md):
probe -> plan_chunks -> split_chunks -> transcode_chunk (per chunk, on a worker) ->
join_chunks -> verify_output. The names below are the public surface.
"""

from farm.media.chunk_codec import EncoderSettings, choose_encoder, transcode_chunk
from farm.media.ffmpeg import ffmpeg_exe, run_ffmpeg
from farm.media.join import join_chunks
from farm.media.media_info import MediaInfo, PacketInfo, ProbeLimits, StreamInfo, VideoInfo
from farm.media.plan import ChunkPlan, default_chunk_frames, plan_chunks
from farm.media.probe import probe
from farm.media.split import split_chunks
from farm.media.verify import verify_output

__all__ = [
    "ChunkPlan",
    "EncoderSettings",
    "MediaInfo",
    "PacketInfo",
    "ProbeLimits",
    "StreamInfo",
    "VideoInfo",
    "choose_encoder",
    "default_chunk_frames",
    "ffmpeg_exe",
    "join_chunks",
    "plan_chunks",
    "probe",
    "run_ffmpeg",
    "split_chunks",
    "transcode_chunk",
    "verify_output",
]
