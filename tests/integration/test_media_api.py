"""The media package's public surface is pinned (changing it is a contract change)."""

import farm.media


def test_public_names() -> None:
    assert farm.media.__all__ == [
        "ChunkPlan", "EncoderSettings", "MediaInfo", "PacketInfo", "ProbeLimits", "StreamInfo",
        "VideoInfo", "choose_encoder", "default_chunk_frames", "ffmpeg_exe", "join_chunks",
        "plan_chunks", "probe", "run_ffmpeg", "split_chunks", "transcode_chunk", "verify_output",
    ]
    assert all(hasattr(farm.media, name) for name in farm.media.__all__)
