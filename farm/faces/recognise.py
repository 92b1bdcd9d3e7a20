"""Face embeddings with an ArcFace recogniser (w600k_r50: [N,3,112,112] x/127.5-1 RGB -> [N,512])."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from farm.faces.align import estimate_norm, warp_face
from farm.faces.paste import crop_from_frame
from farm.faces.session_io import SessionLike, fixed_batch, run, to_blob
from farm.faces.types import Face
from farm.pipeline.frame import Frame

RECOGNISER_SIZE = 112
RECOGNISER_TEMPLATE = "arcface_112_v2"
MAX_BATCH = 32
"""Most crops sent to a dynamic-batch recogniser in one run."""


def align_for_recognition(image_bgr: np.ndarray, kps: np.ndarray) -> np.ndarray:
    """The 112x112 BGR arcface_112_v2 crop of a face with landmarks kps (image pixels)."""
    return warp_face(image_bgr, estimate_norm(kps, RECOGNISER_TEMPLATE, RECOGNISER_SIZE), RECOGNISER_SIZE)


def embed(session: SessionLike, bgr_crops: Sequence[np.ndarray]) -> np.ndarray:
    """Raw embeddings (float32 N x D) of aligned 112x112 BGR crops, batched as the model allows."""
    if not len(bgr_crops):
        return np.zeros((0, 512), np.float32)
    name = session.get_inputs()[0].name
    batch = fixed_batch(session) or MAX_BATCH
    out = []
    for i in range(0, len(bgr_crops), batch):
        chunk = list(bgr_crops[i : i + batch])
        real = len(chunk)
        if fixed_batch(session) and real < batch:  # pad a fixed-batch model's last run
            chunk += [chunk[-1]] * (batch - real)
        out.append(run(session, {name: to_blob(chunk, 127.5, 127.5)})[0].reshape(len(chunk), -1)[:real])
    return np.concatenate(out).astype(np.float32)


def embed_image_faces(session: SessionLike, image_bgr: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """Raw embeddings of faces in a BGR still image (N x D); also stored on each Face."""
    vectors = embed(session, [align_for_recognition(image_bgr, f.kps) for f in faces])
    for face, vec in zip(faces, vectors):
        face.embedding = vec
    return vectors


def embed_frame_faces(session: SessionLike, frame: Frame, faces: Sequence[Face]) -> None:
    """Fill face.embedding for faces of a frame that lack one (reads only their regions)."""
    embed_faces_of_frames(session, [(frame, faces)])


def embed_faces_of_frames(session: SessionLike, items: Sequence[tuple[Frame, Sequence[Face]]]) -> None:
    """embed_frame_faces for several frames: all their crops go through `embed` together,
    so a dynamic-batch recogniser runs once per MAX_BATCH faces across frames."""
    crops, owners = [], []
    for frame, faces in items:
        for face in faces:
            if face.embedding is not None:
                continue
            m = estimate_norm(face.kps, RECOGNISER_TEMPLATE, RECOGNISER_SIZE)
            got = crop_from_frame(frame, m, RECOGNISER_SIZE)
            if got is not None:
                crops.append(got[0])
                owners.append(face)
    for face, vec in zip(owners, embed(session, crops)):
        face.embedding = vec


def normalise(v: np.ndarray) -> np.ndarray:
    """v / |v| along the last axis (zero vectors stay zero)."""
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings, in [-1, 1]."""
    return float(np.dot(normalise(np.ravel(a)), normalise(np.ravel(b))))
