"""Pure maths of the detectors: letterbox, SCRFD and YuNet output decoding, NMS.

Coordinates are pixels of the detector's input image unless said otherwise; boxes
are float32 N x 4 (x0, y0, x1, y1), scores float32 N, landmarks float32 N x 5 x 2.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from farm.faces.align import TEMPLATES

SCRFD_STRIDES = (8, 16, 32)
YUNET_STRIDES = (8, 16, 32)

Detections = tuple[np.ndarray, np.ndarray, np.ndarray]


def empty_detections() -> Detections:
    return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32)


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Resize keeping the aspect ratio into size=(w, h), top-left, zero padding.

    Returns (padded image, det_scale): input pixels = image pixels * det_scale.
    """
    w, h = size
    resized, det_scale = _fit(image, size)
    nh, nw = resized.shape[:2]
    out = np.zeros((h, w) + image.shape[2:], dtype=image.dtype)
    out[:nh, :nw] = resized
    return out, det_scale


def _fit(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """The image resized (aspect kept) to fit size=(w, h), and det_scale (letterbox's)."""
    w, h = size
    ih, iw = image.shape[:2]
    det_scale = min(w / iw, h / ih)
    nw, nh = max(1, int(round(iw * det_scale))), max(1, int(round(ih * det_scale)))
    resized = image if (nw, nh) == (iw, ih) else cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return resized, det_scale


def letterbox_blob(images: Sequence[np.ndarray], size: tuple[int, int], mean: float, std: float,
                   rgb: bool = True) -> tuple[np.ndarray, list[float]]:
    """(session_io.to_blob of each image's letterbox(image, size), their det_scales), bit for bit,
    without making the padded images: the padding's value is (0 - mean) / std, computed once;
    only the picture's part of each plane is converted (a 16:9 frame fills 56% of a square input)."""
    w, h = size
    mean32, std32 = np.float32(mean), np.float32(std)
    out = np.empty((len(images), 3, h, w), np.float32)
    out[...] = np.divide(np.subtract(np.zeros((), np.uint8), mean32, dtype=np.float32), std32)
    scales = []
    for i, image in enumerate(images):
        resized, det_scale = _fit(image, size)
        nh, nw = resized.shape[:2]
        channels = cv2.split(np.ascontiguousarray(resized))         # B, G, R
        for c in range(3):
            dst = out[i, c, :nh, :nw]
            np.subtract(channels[2 - c if rgb else c], mean32, out=dst, dtype=np.float32)
            np.divide(dst, std32, out=dst)
        scales.append(det_scale)
    return out, scales


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, highest score first."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx0 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy0 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx1 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy1 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx1 - xx0, 0, None) * np.clip(yy1 - yy0, 0, None)
        union = areas[i] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
        order = rest[iou <= iou_threshold]
    return np.array(keep, dtype=np.int64)


def _grid(width: int, height: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Column and row index of each cell, row-major, as float32 arrays."""
    rows, cols = np.mgrid[: height // stride, : width // stride]
    return cols.reshape(-1).astype(np.float32), rows.reshape(-1).astype(np.float32)


def decode_scrfd(
    scores: Sequence[np.ndarray],
    bboxes: Sequence[np.ndarray],
    kps: Sequence[np.ndarray] | None,
    input_size: tuple[int, int],
    score_threshold: float = 0.5,
    strides: Sequence[int] = SCRFD_STRIDES,
) -> Detections:
    """Decode SCRFD heads (one array per stride): distances * stride from anchor centres.

    Anchors per cell are inferred from the row counts (2 for det_10g); input_size=(w, h).
    """
    w, h = input_size
    out_b, out_s, out_k = [], [], []
    for i, stride in enumerate(strides):
        s = np.asarray(scores[i], np.float32).reshape(-1)
        d = np.asarray(bboxes[i], np.float32).reshape(-1, 4) * stride
        cx, cy = _grid(w, h, stride)
        anchors = s.size // cx.size
        if anchors * cx.size != s.size:
            raise ValueError(f"stride {stride}: {s.size} scores for a {w}x{h} input")
        cx, cy = np.repeat(cx * stride, anchors), np.repeat(cy * stride, anchors)
        keep = s >= score_threshold
        if not keep.any():
            continue
        cx, cy, d = cx[keep], cy[keep], d[keep]
        out_b.append(np.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]], axis=1))
        out_s.append(s[keep])
        if kps is not None:
            k = np.asarray(kps[i], np.float32).reshape(-1, 5, 2)[keep] * stride
            out_k.append(k + np.stack([cx, cy], axis=1)[:, None, :])
    if not out_s:
        return empty_detections()
    boxes, sc = np.concatenate(out_b), np.concatenate(out_s)
    points = np.concatenate(out_k) if out_k else landmarks_from_boxes(boxes)
    return boxes.astype(np.float32), sc.astype(np.float32), points.astype(np.float32)


def decode_yunet(
    cls: Sequence[np.ndarray],
    obj: Sequence[np.ndarray],
    bbox: Sequence[np.ndarray],
    kps: Sequence[np.ndarray],
    input_size: tuple[int, int],
    score_threshold: float = 0.5,
    strides: Sequence[int] = YUNET_STRIDES,
) -> Detections:
    """Decode YuNet heads (one array per stride), as OpenCV's FaceDetectorYN does.

    score = sqrt(clip(cls) * clip(obj)); centre = (cell + pred) * stride;
    size = exp(pred) * stride; landmark = (cell + pred) * stride. input_size=(w, h).
    """
    w, h = input_size
    out_b, out_s, out_k = [], [], []
    for i, stride in enumerate(strides):
        c = np.clip(np.asarray(cls[i], np.float32).reshape(-1), 0, 1)
        o = np.clip(np.asarray(obj[i], np.float32).reshape(-1), 0, 1)
        score = np.sqrt(c * o)
        col, row = _grid(w, h, stride)
        if col.size != score.size:
            raise ValueError(f"stride {stride}: {score.size} scores for a {w}x{h} input")
        keep = score >= score_threshold
        if not keep.any():
            continue
        b = np.asarray(bbox[i], np.float32).reshape(-1, 4)[keep]
        k = np.asarray(kps[i], np.float32).reshape(-1, 5, 2)[keep]
        col, row = col[keep], row[keep]
        cx, cy = (col + b[:, 0]) * stride, (row + b[:, 1]) * stride
        bw, bh = np.exp(b[:, 2]) * stride, np.exp(b[:, 3]) * stride
        out_b.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1))
        out_s.append(score[keep])
        out_k.append((k + np.stack([col, row], axis=1)[:, None, :]) * stride)
    if not out_s:
        return empty_detections()
    return (np.concatenate(out_b).astype(np.float32), np.concatenate(out_s).astype(np.float32),
            np.concatenate(out_k).astype(np.float32))


def _box_layout(template: np.ndarray, x_gain: float = 1.4, y_gain: float = 1.19,
                eye_y: float = 0.38) -> np.ndarray:
    """The arcface template stretched about its eye line to sit in a frontal face box."""
    t = np.array(template, dtype=np.float64)
    eyes_y = t[:2, 1].mean()
    x = 0.5 + (t[:, 0] - 0.5) * x_gain
    y = eye_y + (t[:, 1] - eyes_y) * y_gain
    return np.stack([x, y], axis=1).astype(np.float32)


BOX_LANDMARKS = _box_layout(TEMPLATES["arcface_112_v2"])
"""Where the 5 landmarks sit in a frontal face box (fractions of its width/height):
eyes ~(0.28|0.72, 0.38), nose ~(0.5, 0.6), mouth ~(0.32|0.68, 0.81); fitted by eye
on Haar/SCRFD-style boxes of skimage's astronaut."""


def landmarks_from_boxes(boxes: np.ndarray, layout: np.ndarray = BOX_LANDMARKS) -> np.ndarray:
    """Estimated 5 landmarks (N x 5 x 2) for boxes (N x 4) from fixed proportions."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    origin = boxes[:, None, :2]
    size = (boxes[:, 2:] - boxes[:, :2])[:, None, :]
    return origin + layout[None] * size


def suppress(dets: Detections, iou_threshold: float, max_faces: int | None = None) -> Detections:
    """Apply NMS to decoded detections (highest score first)."""
    boxes, scores, points = dets
    if not len(scores):
        return dets
    keep = nms(boxes, scores, iou_threshold)
    if max_faces is not None:
        keep = keep[:max_faces]
    return boxes[keep], scores[keep], points[keep]
