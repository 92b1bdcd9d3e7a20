"""Encode one chunk: decode its segment, run each frame through `process`, encode.

Frames keep their original pts in the source's time base (variable frame rate
survives), the bit depth, chroma format, colour description, sample aspect ratio and
HDR10 static metadata of the source are kept, and the chunk is written to a temporary
name and renamed once its frame count has been checked.

The encoder and its exact options are decided once per job, at submit (choose_encoder),
and stored with the job: every worker writes its chunks with that record, so they join.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
from av.video.frame import PictureType

from farm.errors import ChunkCancelled, FrameCountMismatch, InputError, MediaError, UnavailableError
from farm.media.colour import Colour
from farm.media.chunk_frames import FrameQueue, context_side, decode_plan
from farm.media.decode import BackgroundSink, iter_chunk_frames, prefetch
from farm.media.hwaccel import HARDWARE_POLICIES, NVENC_PRESETS, encoder_in_build, nvdec_hwaccel
from farm.media.intermediate import open_write, temp_path_for
from farm.media.media_info import VideoInfo
from farm.media.plan import ChunkPlan
from farm.pipeline.frame import PLANAR_FORMATS, Frame

#: Seconds between two on_progress calls.
PROGRESS_INTERVAL_S = 1.0

_X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                 "slower", "veryslow", "placebo")


_NVENC_PRESETS = ("p1", "p2", "p3", "p4", "p5", "p6", "p7")


@dataclass(frozen=True)
class EncoderSpec:
    """What one encoder accepts: presets, quality range, defaults, and its fixed options."""

    presets: tuple[str, ...]
    crf_range: tuple[float, float]
    default_preset: str
    default_crf: float
    params_option: str | None   # private option taking 'k=v:k=v' params
    quality_option: str = "crf"                                  # the option the crf value goes to
    fixed_options: dict[str, str] = field(default_factory=dict)  # always given to this encoder


#: NVENC as constant quality: variable bit rate with cq = crf and no bit rate cap.
_NVENC_FIXED = {"tune": "hq", "rc": "vbr", "b": "0"}

ENCODERS: dict[str, EncoderSpec] = {
    "libx264": EncoderSpec(_X26X_PRESETS, (0, 51), "veryfast", 18, "x264-params"),
    "libx265": EncoderSpec(_X26X_PRESETS, (0, 51), "fast", 20, "x265-params"),
    # NVENC only when asked for by name (--codec h264_nvenc): its chunks go to workers where it opens
    "h264_nvenc": EncoderSpec(_NVENC_PRESETS, (0, 51), "p4", 19, None, "cq", _NVENC_FIXED),
    "hevc_nvenc": EncoderSpec(_NVENC_PRESETS, (0, 51), "p4", 21, None, "cq", _NVENC_FIXED),
}

#: Short codec names accepted by --codec (and spec files), and the encoder each means.
ENCODER_ALIASES: dict[str, str] = {
    "h264": "libx264", "avc": "libx264", "x264": "libx264",
    "hevc": "libx265", "h265": "libx265", "x265": "libx265",
}


def encoder_name(codec: str) -> str:
    """The encoder for a --codec value: 'hevc'/'h265' -> 'libx265', 'h264' -> 'libx264'.

    Encoder names (libx264, libx265, h264_nvenc, hevc_nvenc) pass through; any other name
    is returned as given (lower case) for choose_encoder to refuse.
    """
    name = codec.strip().lower()
    return ENCODER_ALIASES.get(name, name)


@dataclass(frozen=True)
class EncoderSettings:
    """How every chunk of a job is encoded: decided at submit, stored with the job, used
    as is by every worker. crf: constant-quality factor (lower is better; NVENC's cq)."""

    codec: str
    preset: str
    crf: float
    pix_fmt: str
    options: dict[str, str] = field(default_factory=dict)   # extra encoder options
    colour: Colour = field(default_factory=Colour)
    fps: Fraction = Fraction(30)                              # average, for rate control
    sar: Fraction | None = None   # sample aspect ratio the stream declares; None: none (the source's)
    hardware: str = "auto"     # "auto": NVDEC decode where usable (hwaccel.py); "software": never

    def encoder_options(self) -> dict[str, str]:
        """Options handed to the encoder: preset, crf (NVENC: cq), then `options`."""
        crf = int(self.crf) if float(self.crf).is_integer() else self.crf
        spec = ENCODERS.get(self.codec)
        return {"preset": self.preset, spec.quality_option if spec else "crf": str(crf), **self.options}


def choose_encoder(video: VideoInfo, codec: str | None = None, preset: str | None = None,
                   crf: float | None = None, *, container: str | None = None,
                   hardware: str = "auto") -> EncoderSettings:
    """Encoder settings for a source video; raise InputError for an unknown choice.

    codec: an encoder (libx264, libx265, h264_nvenc, hevc_nvenc) or a short name (h264,
    hevc, h265; see ENCODER_ALIASES). Default: the source's family (HEVC -> libx265,
    else libx264), in software, which every worker can produce. NVENC is used only when
    named; its presets are p1..p7 (x264 names are mapped). The pix_fmt (bit depth,
    chroma format), the colour description, the sample aspect ratio (pixels are encoded
    as stored, so the output must declare the source's shape of pixel to be shown at the
    source's shape) and HDR10 static metadata are kept (x264 and
    x265 write the mastering display and light level SEI; NVENC cannot, and is refused
    for such a source). container: the source's demuxer (default: video.container); AVI
    cannot store reordered frames, so B-frames are turned off for it. hardware: "auto"
    (NVDEC decode on workers where it works) or "software".
    """
    if hardware not in HARDWARE_POLICIES:
        raise InputError(f"unknown hardware policy {hardware!r}", hint="use " + " or ".join(HARDWARE_POLICIES))
    container = container or video.container
    name = encoder_name(codec) if codec else ("libx265" if video.codec == "hevc" else "libx264")
    spec = ENCODERS.get(name)
    if spec is None:
        raise InputError(f"unknown video encoder {codec!r}",
                         hint="choose one of " + ", ".join([*ENCODER_ALIASES, *ENCODERS]))
    preset = preset or spec.default_preset
    if spec.quality_option == "cq":
        preset = NVENC_PRESETS.get(preset, preset)
    if preset not in spec.presets:
        raise InputError(f"unknown {name} preset {preset!r}", hint="choose one of " + ", ".join(spec.presets))
    crf = spec.default_crf if crf is None else crf
    lo, hi = spec.crf_range
    if not lo <= float(crf) <= hi:
        raise InputError(f"{name} crf {crf} is out of range", hint=f"use a value from {lo} to {hi}")
    if video.pix_fmt not in PLANAR_FORMATS:
        raise InputError(
            f"pixel format {video.pix_fmt} cannot be processed",
            hint="convert the video to " + ", ".join(PLANAR_FORMATS),
        )
    if not encoder_in_build(name):
        raise InputError(f"video encoder {name} is not in this FFmpeg build",
                         hint="choose one of " + ", ".join(ENCODER_ALIASES))
    supported = {f.name for f in av.codec.Codec(name, "w").video_formats or ()}
    if video.pix_fmt not in supported:
        raise InputError(f"{name} cannot encode {video.pix_fmt}", hint="choose another encoder")
    if spec.params_option is None and (video.mastering_display or video.content_light):
        raise InputError(f"{name} cannot write the source's HDR10 metadata (mastering display, light level)",
                         hint="use --codec hevc or --codec h264 (software), which keep it")
    options = {**spec.fixed_options, **_x26x_params(name, video, spec, no_bframes=container == "avi")}
    if container == "avi":
        options["bf"] = "0"
    return EncoderSettings(
        codec=name, preset=preset, crf=crf, pix_fmt=video.pix_fmt,
        options=options, colour=video.colour, fps=video.fps, sar=video.sar, hardware=hardware,
    )


def _x26x_params(name: str, video: VideoInfo, spec: EncoderSpec, no_bframes: bool) -> dict[str, str]:
    """x264/x265 params: HDR10 static metadata (mastering display, light level) as SEI;
    x265 also a quiet log and no B-frames for AVI. (Both take the same G(x,y)...L(max,min)
    and 'MaxCLL,MaxFALL' strings.) x264, for a constant frame rate source: force-cfr, so
    its stream declares the frame rate (VUI timing 1001/48000 for 24000/1001) rather than
    its time base's tick (1/48000 for a 1/24000 time base, 1/2000 for Matroska's 1 ms:
    "24000 fps", which readers such as ffprobe 5.1 give up on for packet durations).
    x265 declares the frame rate it is given already."""
    if spec.params_option is None:
        return {}
    if name == "libx264":
        params = [] if video.is_vfr else ["force-cfr=1"]
        if video.mastering_display:
            params.append(f"mastering-display={video.mastering_display}")
        if video.content_light:
            params.append(f"cll={video.content_light}")
        return {spec.params_option: ":".join(params)} if params else {}
    params = ["log-level=error"]
    if video.mastering_display or video.content_light:
        params.append("hdr10=1")
    if video.mastering_display:
        params.append(f"master-display={video.mastering_display}")
    if video.content_light:
        params.append(f"max-cll={video.content_light}")
    if no_bframes:
        params.append("bframes=0")
    return {spec.params_option: ":".join(params)}


#: Frames the stage chain gets at once when it can batch (process_batch); faces are
#: batched across these frames where a model has a dynamic batch dimension.
BATCH_FRAMES = 4


def require_chunk_input(in_path: str | os.PathLike[str]) -> None:
    """UnavailableError (storage; another node may see it: the chunk may run again) when the
    chunk's input, written at submit, is not on this node's storage."""
    path = Path(in_path)
    if not path.is_file():
        raise UnavailableError(
            f"the chunk input {path} does not exist on this node's storage: either the job's files were "
            "deleted or moved, or this worker does not see the same storage as the node that split the job",
            hint="check that FARM_STORAGE is the same shared folder on every node; if the files are gone, "
                 "submit the video again")


def transcode_chunk(
    in_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    plan: ChunkPlan,
    settings: EncoderSettings,
    process: Callable[[Frame], Frame],
    on_progress: Callable[[int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    *,
    process_batch: Callable[[list[Frame]], list[Frame]] | None = None,
    batch_frames: int = BATCH_FRAMES,
    report_final: bool = True,
    flush: Callable[[], list[Frame]] | None = None,
) -> int:
    """Decode, process and encode one chunk; return the number of frames written.

    Three threads: decode (farm.media.decode.prefetch) -> `process` in this thread ->
    encode (a BackgroundSink), joined by bounded queues. `process_batch`, when given,
    replaces `process` and gets up to `batch_frames` frames at a time (in order; it
    returns them in the same order). The encoder is settings.codec with
    settings.encoder_options(), exactly as the job's record says (the caller checks that
    this worker can produce it: farm.workers.encoder_check).

    Context frames: a plan with warm_frames / tail_frames decodes that many frames before the
    chunk's first and after its last (farm.media.plan) and, with process_batch, hands them to
    it in order with negative indices (farm.media.chunk_frames; a chain drops them after its
    last stage that warms, StageChain); they are never encoded. Without process_batch they
    are decoded and dropped.
    `flush`, when given (StageChain.flush: a chain whose stages may hold frames), lets
    process_batch return fewer frames than it got: frames come back by their index, in
    order, each once, and flush() returns the rest after the last frame.

    Raises FrameCountMismatch if the frames written differ from plan.frame_count,
    ChunkCancelled if should_cancel() turns true (checked between frames); errors of the
    decode and encode threads are re-raised here. The output appears at out_path only
    when complete.

    on_progress(frames handed to the encoder) is called about once a second, also while
    the encoder drains its lookahead at the end, and (report_final) once when done.
    """
    if batch_frames < 1:
        raise ValueError(f"batch_frames must be >= 1, got {batch_frames}")
    require_chunk_input(in_path)
    out = Path(out_path)
    tmp = temp_path_for(out)
    frames = prefetch(iter_chunk_frames(in_path, decode_plan(plan), nvdec_hwaccel(settings.hardware)))
    encoder = _ChunkEncoder(tmp, settings)
    sink: BackgroundSink[av.VideoFrame] = BackgroundSink(encoder.encode, encoder.flush, name="farm-encode")
    queue = FrameQueue(sink, process, process_batch, holding=flush is not None)
    try:
        last_report = time.monotonic()
        pending: list[Frame] = []
        decoded = warm = tail = 0
        for av_frame in frames:
            if should_cancel is not None and should_cancel():
                raise ChunkCancelled(f"chunk {plan.index} cancelled after {queue.done} frames")
            side = context_side(av_frame, plan)
            if side and process_batch is None:
                continue   # context for stages that warm: only the batch path takes it
            if side < 0:
                warm += 1
                index = warm - 1 - plan.warm_frames
                if index >= 0:
                    raise MediaError(f"chunk {plan.index}: more than the {plan.warm_frames} warm frames planned")
            elif side > 0:
                tail += 1
                index = -plan.warm_frames - tail
            else:
                index = decoded
                decoded += 1
            pending.append(queue.hold(Frame.from_av(av_frame, index), av_frame))
            if process_batch is not None and len(pending) < batch_frames:
                continue
            queue.run(pending)
            pending = []
            if on_progress is not None and time.monotonic() - last_report >= PROGRESS_INTERVAL_S:
                on_progress(queue.done)
                last_report = time.monotonic()
        if pending or flush is not None:
            if should_cancel is not None and should_cancel():
                raise ChunkCancelled(f"chunk {plan.index} cancelled after {queue.done} frames")
            if pending:
                queue.run(pending)
            if flush is not None:
                queue.put(flush())
        done = queue.done
        if queue.times and flush is not None:
            raise MediaError(f"the stage chain returned {done} of the chunk's {decoded} frames")

        def tick() -> None:   # while the encoder flushes: keep the heartbeat going
            nonlocal last_report
            if on_progress is not None and time.monotonic() - last_report >= PROGRESS_INTERVAL_S:
                on_progress(done)
                last_report = time.monotonic()

        sink.finish(tick=tick)
        if done != plan.frame_count or encoder.packets != done:
            raise FrameCountMismatch(
                f"chunk {plan.index}: encoded {done} frames into {encoder.packets} packets, "
                f"planned {plan.frame_count}"
            )
        os.replace(tmp, out)
    except av.FFmpegError as exc:
        raise MediaError(f"chunk {plan.index}: encoding failed: {exc}") from None
    finally:
        frames.close()
        sink.abort()
        encoder.close_quietly()
        tmp.unlink(missing_ok=True)
    if on_progress is not None and report_final:
        on_progress(done)
    return done


class _ChunkEncoder:
    """The encode thread's state: the output container, opened on the first frame."""

    def __init__(self, tmp: Path, settings: EncoderSettings) -> None:
        self.tmp, self.settings = tmp, settings
        self.container: av.container.OutputContainer | None = None
        self.stream: av.video.stream.VideoStream | None = None
        self.packets = 0

    def encode(self, frame: av.VideoFrame) -> None:
        settings = self.settings
        if self.container is None:
            tb = Fraction(frame.time_base)
            self.container = open_write(self.tmp, _codec_family(settings.codec), tb.denominator,
                                        settings.colour.range)
            self.stream = _open_encoder(self.container, settings, tb, frame.width, frame.height)
        frame.pict_type = PictureType.NONE   # let the encoder choose frame types
        _check_format(frame, settings)
        packets = self.stream.encode(frame)  # type: ignore[union-attr]
        self.container.mux(packets)
        self.packets += len(packets)

    def flush(self) -> None:
        if self.container is None:
            return
        packets = self.stream.encode(None)  # type: ignore[union-attr]
        self.container.mux(packets)
        self.packets += len(packets)
        self.container.close()
        self.container = None

    def close_quietly(self) -> None:
        if self.container is not None:
            _close_quietly(self.container)
            self.container = None


def _codec_family(encoder: str) -> str:
    """The codec an encoder writes ('libx265' -> 'hevc')."""
    return av.codec.Codec(encoder, "w").canonical_name


def _close_quietly(container: av.container.OutputContainer) -> None:
    try:
        container.close()
    except av.FFmpegError:
        pass


def _open_encoder(sink: av.container.OutputContainer, settings: EncoderSettings, tb: Fraction,
                  width: int, height: int) -> av.video.stream.VideoStream:
    """Add the job's video encoder stream: size, time base (the source's), pix_fmt, colour,
    sample aspect ratio. The encoder writes the SAR into the bitstream (H.264/HEVC VUI) and
    the stream's parameters carry it to the muxer (MP4/MOV 'pasp'); the remux copies it
    into every output container from there."""
    stream = sink.add_stream(settings.codec, options=settings.encoder_options())
    ctx = stream.codec_context
    ctx.width, ctx.height = width, height
    stream.time_base = tb
    ctx.time_base = tb
    ctx.framerate = settings.fps
    ctx.pix_fmt = settings.pix_fmt
    ctx.color_primaries = settings.colour.primaries
    ctx.color_trc = settings.colour.transfer
    ctx.colorspace = settings.colour.matrix
    ctx.color_range = settings.colour.range
    if settings.sar:
        ctx.sample_aspect_ratio = settings.sar
    ctx.thread_type = "AUTO"
    return stream


def _check_format(frame: av.VideoFrame, settings: EncoderSettings) -> None:
    stream_fmt = frame.format.name
    if stream_fmt != settings.pix_fmt:
        raise MediaError(f"frame pixel format {stream_fmt} differs from the encoder's {settings.pix_fmt}")
